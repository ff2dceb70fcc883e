//! Persistent MQTT sessions of the edge hub's clients, in one JSON file of the data
//! directory: Azure IoT clients subscribe once (`CleanSession` = 0) and never again, so a
//! `spoke-edge` restart must keep their subscriptions.
//!
//! The file maps client ids to `[[filter, qos], ...]`. It is rewritten whole (temporary file,
//! `fsync`, rename) on every change: edge hubs have a handful of clients, which subscribe
//! once per session. An unreadable file is logged and treated as empty (the clients'
//! subscriptions are then lost, never the messages: those are in the queues).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use spoke_mqtt::codec::QoS;
use spoke_mqtt::server::{SessionStore, StoreError};

type Sessions = BTreeMap<String, Vec<(String, u8)>>;

/// See the module documentation. Clones share the file.
#[derive(Debug, Clone)]
pub struct FileSessionStore {
    path: Arc<PathBuf>,
    sessions: Arc<Mutex<Sessions>>,
}

impl FileSessionStore {
    /// Opens (or starts) the store at `path`.
    pub fn open(path: PathBuf) -> Self {
        let sessions = crate::state_file::load(&path, "no MQTT sessions");
        Self {
            path: Arc::new(path),
            sessions: Arc::new(Mutex::new(sessions)),
        }
    }

    /// The client ids with a stored session.
    pub fn client_ids(&self) -> Vec<String> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.keys().cloned().collect()
    }

    fn update(&self, change: impl FnOnce(&mut Sessions)) -> Result<(), StoreError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut sessions);
        let bytes = serde_json::to_vec(&*sessions).map_err(StoreError::new)?;
        crate::state_file::write(&self.path, &bytes).map_err(StoreError::new)
    }
}

fn qos(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

impl SessionStore for FileSessionStore {
    async fn load(&self, client_id: &str) -> Result<Option<Vec<(String, QoS)>>, StoreError> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(sessions.get(client_id).map(|subs| {
            subs.iter()
                .map(|(filter, level)| (filter.clone(), qos(*level)))
                .collect()
        }))
    }

    async fn save(
        &self,
        client_id: &str,
        subscriptions: &[(String, QoS)],
    ) -> Result<(), StoreError> {
        let subs = subscriptions
            .iter()
            .map(|(filter, q)| (filter.clone(), u8::from(*q != QoS::AtMostOnce)))
            .collect();
        self.update(|s| {
            s.insert(client_id.to_owned(), subs);
        })
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        self.update(|s| {
            s.remove(client_id);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_survive_reopening_and_a_corrupt_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let store = FileSessionStore::open(path.clone());
        let subs = vec![
            ("devices/e/modules/m/inputs/#".to_owned(), QoS::AtLeastOnce),
            ("$iothub/methods/POST/#".to_owned(), QoS::AtMostOnce),
        ];
        store.save("e/m", &subs).await.unwrap();
        store.save("e/n", &subs).await.unwrap();
        store.remove("e/n").await.unwrap();
        let reopened = FileSessionStore::open(path.clone());
        assert_eq!(reopened.load("e/m").await.unwrap(), Some(subs));
        assert_eq!(reopened.load("e/n").await.unwrap(), None);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(
            FileSessionStore::open(path).load("e/m").await.unwrap(),
            None
        );
    }
}
