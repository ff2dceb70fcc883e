//! Persistent MQTT subscriptions in the SQL store (`mqtt_sessions`), so that a device that never
//! re-subscribes (spec pitfall 4) keeps its subscriptions across hub restarts.

use std::sync::Arc;

use spoke_mqtt::codec::QoS;
use spoke_mqtt::server::{SessionStore, StoreError};
use spoke_store::sql::HubStore;

/// [`SessionStore`] over the hub's [`HubStore`]; the document is a JSON list of
/// `[filter, qos]` pairs.
#[derive(Clone)]
pub struct SqlSessionStore {
    store: Arc<dyn HubStore>,
}

impl SqlSessionStore {
    /// Sessions stored in `store`.
    pub fn new(store: Arc<dyn HubStore>) -> Self {
        Self { store }
    }
}

fn qos_from(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

impl SessionStore for SqlSessionStore {
    async fn load(&self, client_id: &str) -> Result<Option<Vec<(String, QoS)>>, StoreError> {
        let Some(doc) = self
            .store
            .load_session(client_id)
            .await
            .map_err(StoreError::new)?
        else {
            return Ok(None);
        };
        let pairs: Vec<(String, u8)> = serde_json::from_str(&doc).map_err(StoreError::new)?;
        Ok(Some(
            pairs.into_iter().map(|(f, q)| (f, qos_from(q))).collect(),
        ))
    }

    async fn save(
        &self,
        client_id: &str,
        subscriptions: &[(String, QoS)],
    ) -> Result<(), StoreError> {
        let pairs: Vec<(&str, u8)> = subscriptions
            .iter()
            .map(|(f, q)| (f.as_str(), *q as u8))
            .collect();
        let doc = serde_json::to_string(&pairs).map_err(StoreError::new)?;
        self.store
            .save_session(client_id, &doc)
            .await
            .map_err(StoreError::new)
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        self.store
            .remove_session(client_id)
            .await
            .map_err(StoreError::new)
    }
}
