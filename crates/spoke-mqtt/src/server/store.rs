//! Durable storage of persistent sessions' subscriptions.
//!
//! Only subscriptions are stored: Azure IoT clients never re-subscribe after a reconnect
//! (CleanSession = 0 always), so a hub restart must not lose them. QoS 1 messages in flight
//! survive reconnects in memory only; durability across restarts is the application's own
//! queues' job (for example the hub's C2D queue, which re-delivers what was not completed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::codec::QoS;

/// A session store failed.
#[derive(Debug, thiserror::Error)]
#[error("session store failed")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps the backend's error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

/// Where persistent sessions' subscriptions live across process restarts (implemented by the
/// application; see [`MemorySessionStore`] for tests).
///
/// The server calls `load` when a CleanSession = 0 client connects and its session is not in
/// memory, `save` with the whole new list before acknowledging a SUBSCRIBE or UNSUBSCRIBE of a
/// persistent session, and `remove` when a CleanSession = 1 connect or
/// `Server::remove_session` discards a session.
pub trait SessionStore: Send + Sync + 'static {
    /// The stored subscriptions of `client_id`, or `None` when no session is stored.
    fn load(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<(String, QoS)>>, StoreError>> + Send;

    /// Stores the complete subscription list of `client_id`, replacing the previous one.
    fn save(
        &self,
        client_id: &str,
        subscriptions: &[(String, QoS)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets the session of `client_id` (no error if there is none).
    fn remove(&self, client_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Client id → subscriptions.
type StoredSessions = HashMap<String, Vec<(String, QoS)>>;

/// An in-memory [`SessionStore`]; clones share the same map, so a test can hand one to a
/// second server to simulate a restart.
#[derive(Debug, Clone, Default)]
pub struct MemorySessionStore {
    sessions: Arc<Mutex<StoredSessions>>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored subscriptions of `client_id` (for assertions).
    pub fn get(&self, client_id: &str) -> Option<Vec<(String, QoS)>> {
        self.map().get(client_id).cloned()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, StoredSessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionStore for MemorySessionStore {
    async fn load(&self, client_id: &str) -> Result<Option<Vec<(String, QoS)>>, StoreError> {
        Ok(self.get(client_id))
    }

    async fn save(
        &self,
        client_id: &str,
        subscriptions: &[(String, QoS)],
    ) -> Result<(), StoreError> {
        self.map()
            .insert(client_id.to_owned(), subscriptions.to_vec());
        Ok(())
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        self.map().remove(client_id);
        Ok(())
    }
}
