//! The session registry: client id → session cell.
//!
//! Design choice: a sharded map rather than an actor. The registry is a fixed array of shards,
//! each a `std::sync::Mutex<HashMap<String, Arc<SessionCell>>>`, and every cell has its own
//! `Mutex<CellState>` (the sans-I/O [`Session`] plus the attached connection, if any). Every
//! operation is a short synchronous critical section, which is what `Server::publish` (a
//! synchronous call) needs; the hot paths (outbound publish, PUBACK, draining outbound
//! messages) touch a single cell's lock, so different connections never contend, and no lock is
//! ever held across an `.await`.
//!
//! Lock order: a shard, then a cell; never a cell then a shard.
//!
//! Invariants: `CellState::conn` names the one connection allowed to act on the session; a
//! connection that was taken over or kicked finds a different (or no) connection there and
//! leaves the session alone. A non-persistent (CleanSession = 1) cell is in the map only while
//! its connection is attached. `connected` counts cells with an attached connection.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, oneshot};

use super::DisconnectReason;
use crate::session::{Session, SessionLimits, Subscriptions};

/// What the server keeps with an in-flight QoS 1 message: resolves its `Delivery`.
pub(crate) type Completion = oneshot::Sender<()>;

const SHARDS: usize = 64;

/// One shard of the registry.
type Shard = HashMap<String, Arc<SessionCell>>;

/// Locks a mutex, ignoring poisoning: every critical section leaves the state consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a connection was told to stop, stored in [`ConnHandle::kicked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kick {
    Takeover = 1,
    Server = 2,
}

/// The registry's handle on one connection task: a wake-up for outbound messages and a kick.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) id: u64,
    notify: Notify,
    kicked: AtomicU8,
}

impl ConnHandle {
    /// Wakes the connection task (outbound messages are waiting, or it was kicked).
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Resolves after a `wake` (a wake before the call is not lost).
    pub(crate) async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Why the connection must end, if it must.
    pub(crate) fn kicked(&self) -> Option<DisconnectReason> {
        match self.kicked.load(Ordering::Acquire) {
            0 => None,
            1 => Some(DisconnectReason::Takeover),
            _ => Some(DisconnectReason::ServerDisconnect),
        }
    }

    fn kick(&self, why: Kick) {
        self.kicked.store(why as u8, Ordering::Release);
        self.wake();
    }
}

/// One client id's session and its attached connection.
#[derive(Debug)]
pub(crate) struct CellState {
    pub(crate) session: Session<Completion>,
    /// CleanSession = 0.
    pub(crate) persistent: bool,
    pub(crate) conn: Option<Arc<ConnHandle>>,
}

impl CellState {
    /// Whether `conn` is the connection attached to this session.
    pub(crate) fn is_attached(&self, conn: &ConnHandle) -> bool {
        self.conn.as_ref().is_some_and(|c| c.id == conn.id)
    }
}

/// A session cell; see the module documentation.
#[derive(Debug)]
pub(crate) struct SessionCell {
    state: Mutex<CellState>,
}

impl SessionCell {
    pub(crate) fn lock(&self) -> MutexGuard<'_, CellState> {
        lock(&self.state)
    }
}

/// The result of attaching a connection.
pub(crate) struct Attached {
    pub(crate) cell: Arc<SessionCell>,
    /// Session Present for the CONNACK (MQTT 3.1.1 §3.2.2.2).
    pub(crate) session_present: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Registry {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    limits: SessionLimits,
    connected: AtomicUsize,
    next_conn: AtomicU64,
}

impl Registry {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            limits,
            connected: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
        }
    }

    fn shard(&self, client_id: &str) -> MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one(client_id) as usize % self.shards.len();
        lock(&self.shards[index])
    }

    /// A handle for a new connection.
    pub(crate) fn new_connection(&self) -> Arc<ConnHandle> {
        Arc::new(ConnHandle {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            notify: Notify::new(),
            kicked: AtomicU8::new(0),
        })
    }

    /// Runs `f` on the state of `client_id`'s session, if there is one.
    pub(crate) fn with_cell<R>(
        &self,
        client_id: &str,
        f: impl FnOnce(&mut CellState) -> R,
    ) -> Option<R> {
        let cell = self.shard(client_id).get(client_id).cloned()?;
        let mut state = cell.lock();
        Some(f(&mut state))
    }

    /// Whether a persistent session for `client_id` is in memory (else it must be loaded).
    pub(crate) fn has_persistent(&self, client_id: &str) -> bool {
        self.with_cell(client_id, |s| s.persistent).unwrap_or(false)
    }

    /// Number of attached connections.
    pub(crate) fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Attaches `conn` to `client_id`'s session (MQTT 3.1.1 §3.1.2.4, §3.1.4): an attached
    /// connection is taken over; a persistent session is resumed when the new connection is
    /// persistent too, otherwise discarded. `stored` seeds a session that is not in memory.
    pub(crate) fn attach(
        &self,
        client_id: &str,
        persistent: bool,
        stored: Option<Subscriptions>,
        conn: &Arc<ConnHandle>,
    ) -> Attached {
        let mut shard = self.shard(client_id);
        if let Some(cell) = shard.get(client_id).cloned() {
            let mut state = cell.lock();
            if let Some(old) = state.conn.take() {
                old.kick(Kick::Takeover);
                self.connected.fetch_sub(1, Ordering::Relaxed);
            }
            if persistent && state.persistent {
                state.conn = Some(Arc::clone(conn));
                state.session.go_online();
                self.connected.fetch_add(1, Ordering::Relaxed);
                drop(state);
                return Attached {
                    cell,
                    session_present: true,
                };
            }
            self.discard(&mut state);
        }
        let session_present = persistent && stored.is_some();
        let mut session = Session::new(self.limits, stored.unwrap_or_default());
        session.go_online();
        let cell = Arc::new(SessionCell {
            state: Mutex::new(CellState {
                session,
                persistent,
                conn: Some(Arc::clone(conn)),
            }),
        });
        shard.insert(client_id.to_owned(), Arc::clone(&cell));
        self.connected.fetch_add(1, Ordering::Relaxed);
        Attached {
            cell,
            session_present,
        }
    }

    /// The connection task of `conn` ended. Returns whether it was still attached (false after
    /// a takeover or a kick).
    pub(crate) fn detach(
        &self,
        client_id: &str,
        cell: &Arc<SessionCell>,
        conn: &ConnHandle,
    ) -> bool {
        let mut shard = self.shard(client_id);
        let mut state = cell.lock();
        if !state.is_attached(conn) {
            return false;
        }
        state.conn = None;
        self.connected.fetch_sub(1, Ordering::Relaxed);
        if state.persistent {
            state.session.go_offline();
        } else {
            // §3.1.2.4: a CleanSession = 1 session lasts as long as its connection.
            self.discard(&mut state);
            if shard.get(client_id).is_some_and(|c| Arc::ptr_eq(c, cell)) {
                shard.remove(client_id);
            }
        }
        true
    }

    /// Closes `client_id`'s connection; the session stays (unless it is non-persistent).
    /// Returns whether a connection was attached.
    pub(crate) fn kick(&self, client_id: &str) -> bool {
        let mut shard = self.shard(client_id);
        let Some(cell) = shard.get(client_id).cloned() else {
            return false;
        };
        let mut state = cell.lock();
        let Some(conn) = state.conn.take() else {
            return false;
        };
        conn.kick(Kick::Server);
        self.connected.fetch_sub(1, Ordering::Relaxed);
        if state.persistent {
            state.session.go_offline();
        } else {
            self.discard(&mut state);
            shard.remove(client_id);
        }
        true
    }

    /// Closes every connection (server shutdown); persistent sessions stay. Returns how many
    /// connections were closed.
    pub(crate) fn kick_all(&self) -> usize {
        self.client_ids().iter().filter(|id| self.kick(id)).count()
    }

    /// The client ids of every session in memory.
    pub(crate) fn client_ids(&self) -> Vec<String> {
        self.shards
            .iter()
            .flat_map(|shard| lock(shard).keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Forgets `client_id`'s session, closing its connection. Returns whether one existed.
    pub(crate) fn remove(&self, client_id: &str) -> bool {
        let Some(cell) = self.shard(client_id).remove(client_id) else {
            return false;
        };
        let mut state = cell.lock();
        if let Some(conn) = state.conn.take() {
            conn.kick(Kick::Server);
            self.connected.fetch_sub(1, Ordering::Relaxed);
        }
        self.discard(&mut state);
        true
    }

    /// Drops the session's messages now (their deliveries resolve as gone) and leaves an
    /// empty, offline, non-persistent session for any task still holding the cell.
    fn discard(&self, state: &mut CellState) {
        state.session = Session::new(self.limits, Subscriptions::default());
        state.persistent = false;
    }
}
