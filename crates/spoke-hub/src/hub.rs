//! [`Hub`]: the components of a running hub, shared by the REST handlers and the MQTT hooks.
//! Each component owns its own state; the hub only holds their handles.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use serde_json::Value;
use spoke_core::ids::{DeviceId, Identity};
use spoke_store::log::LogHandle;
use spoke_store::sql::HubStore;

use crate::c2d::C2d;
use crate::config::HubConfig;
use crate::feedback::Feedback;
use crate::methods::Methods;
use crate::mqtt::link::MqttLink;
use crate::mqtt::{MqttServer, route};
use crate::policies::{Policy, Right};
use crate::registry::Registry;
use crate::registry::model::Presence;
use crate::registry::model::Status;
use crate::rest::{ApiError, authorize, authorize_device};

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The running hub's components.
pub struct Hub {
    /// Start-up configuration.
    pub config: HubConfig,
    /// Shared access policies.
    pub policies: Vec<Policy>,
    /// Durable state.
    pub store: Arc<dyn HubStore>,
    /// Identities and twins.
    pub registry: Registry,
    /// The built-in events (telemetry) log.
    pub events: LogHandle,
    /// Direct-method calls in flight.
    pub methods: Methods,
    /// C2D queues.
    pub c2d: C2d,
    /// C2D feedback records.
    pub feedback: Feedback,
    /// The MQTT server.
    pub link: Arc<MqttLink>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("hostname", &self.config.hostname)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// The MQTT server (bound during start-up, before any listener runs).
    pub fn mqtt(&self) -> &MqttServer {
        self.link
            .get()
            .expect("the MQTT server is bound before the listeners start")
    }

    /// Checks a service request's SAS token for `right`.
    pub fn authorize(&self, headers: &HeaderMap, right: Right) -> Result<(), ApiError> {
        authorize(
            headers,
            &self.policies,
            &self.config.hostname,
            right,
            now_unix(),
        )
    }

    /// Checks a service token for `right`, or else a token of the edge device `device` itself
    /// (which may manage its own modules and read their twins).
    pub async fn authorize_or_edge_device(
        &self,
        headers: &HeaderMap,
        right: Right,
        device: &DeviceId,
    ) -> Result<(), ApiError> {
        let service = self.authorize(headers, right);
        if service.is_ok() {
            return service;
        }
        let Ok(entry) = self.registry.get_device(device).await else {
            return service;
        };
        if !entry.iot_edge || entry.status != Status::Enabled {
            return service;
        }
        let keys: Vec<&str> = entry.authentication.keys().collect();
        authorize_device(
            headers,
            &self.config.hostname,
            device.as_str(),
            &keys,
            now_unix(),
        )
        .or(service)
    }

    /// Live connection facts about an identity, for registry and twin JSON.
    pub async fn presence(&self, identity: &Identity) -> Presence {
        let c2d_count = if identity.module.is_none() {
            self.c2d.count(identity.device.clone()).await
        } else {
            0
        };
        Presence {
            connected: route::connected(self.mqtt(), identity),
            last_activity: None,
            c2d_count,
        }
    }

    /// Devices with a live connection.
    pub fn connected_device_count(&self) -> usize {
        self.mqtt().connected_count()
    }

    /// Service JSON of every device (or module) twin, for queries.
    pub async fn twin_documents(&self, modules: bool) -> Vec<Value> {
        let server = self.mqtt();
        let presence = |identity: &Identity| Presence {
            connected: route::connected(server, identity),
            ..Presence::default()
        };
        self.registry.twin_documents(modules, &presence).await
    }
}
