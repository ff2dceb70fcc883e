//! The device-facing MQTT side of the hub: the [`spoke_mqtt`] server with IoT Hub's hooks.
//!
//! - `auth`: CONNECT authentication and the identity a client id names.
//! - `dispatch`: what an inbound PUBLISH means (telemetry, twin, method answers).
//! - `sessions`: persistent subscriptions in the SQL store.
//! - `link`: the server as seen by the registry (effects) and the C2D queue (transport).
//! - `route`: which connection reaches a device or module (its own, or its edge device's).
//! - `websocket`: MQTT over WebSocket at `/$iothub/websocket`.
//! - `listener`: the HTTPS accept loop (REST and WebSocket).

mod auth;
mod dispatch;
pub mod link;
pub mod listener;
pub mod route;
mod sessions;
pub mod websocket;

use std::sync::{Arc, Weak};

use spoke_core::ids::Identity;
use spoke_core::topic::Subscription;
use spoke_mqtt::codec::{ConnectReturnCode, Publish, QoS, Will};
use spoke_mqtt::order::ArrivalOrder;
use spoke_mqtt::server::{
    Authenticated, ConnectInfo, DisconnectReason, Hooks, PeerInfo, PublishError,
};

pub use self::sessions::SqlSessionStore;
use crate::hub::Hub;

/// The hub's MQTT server.
pub type MqttServer = spoke_mqtt::server::Server<HubHooks>;

/// An authenticated device or module connection.
#[derive(Debug, Clone)]
pub struct Client {
    /// Who it is.
    pub identity: Identity,
    /// Its generation id (stamped on telemetry).
    pub generation_id: String,
    /// `sas` or `x509`.
    pub auth_type: &'static str,
    /// Whether it is an IoT Edge device (which may send its modules' telemetry).
    pub iot_edge: bool,
    /// Its Will message, stored as telemetry if the connection is lost.
    pub will: Option<Will>,
    /// The order its messages arrive in (telemetry is stored in that order).
    pub order: ArrivalOrder,
}

/// IoT Hub's behaviour plugged into the MQTT server.
pub struct HubHooks {
    hub: Weak<Hub>,
    sessions: SqlSessionStore,
}

impl HubHooks {
    /// Hooks for `hub` (held weakly: the hub owns the server).
    pub fn new(hub: &Arc<Hub>) -> Self {
        Self {
            hub: Arc::downgrade(hub),
            sessions: SqlSessionStore::new(hub.store.clone()),
        }
    }
}

impl Hooks for HubHooks {
    type Client = Client;
    type Store = SqlSessionStore;

    fn session_store(&self) -> &Self::Store {
        &self.sessions
    }

    async fn authenticate(
        &self,
        connect: &ConnectInfo,
        peer: &PeerInfo,
    ) -> Result<Authenticated<Client>, ConnectReturnCode> {
        let hub = self
            .hub
            .upgrade()
            .ok_or(ConnectReturnCode::ServerUnavailable)?;
        let identity = auth::claimed_identity(connect)?;
        let credentials = hub.registry.credentials(&identity).await;
        let (generation_id, iot_edge) = credentials
            .as_ref()
            .map(|c| (c.generation_id.clone(), c.iot_edge))
            .unwrap_or_default();
        let result = auth::verify(
            connect,
            peer,
            identity,
            credentials,
            &hub.policies,
            &hub.config.hostname,
        );
        match result {
            Ok(ok) => Ok(Authenticated {
                client_id: ok.identity.client_id(),
                expires_at: ok.expires_at,
                client: Client {
                    identity: ok.identity,
                    generation_id,
                    auth_type: ok.auth_type,
                    iot_edge,
                    will: connect.will.clone(),
                    order: ArrivalOrder::default(),
                },
            }),
            Err(code) => {
                tracing::info!(
                    client_id = connect.client_id,
                    ?code,
                    "MQTT connection refused"
                );
                Err(code)
            }
        }
    }

    fn authorize_subscribe(&self, client: &Client, filter: &str, _qos: QoS) -> Option<QoS> {
        let granted = match Subscription::classify(&client.identity, filter) {
            Some(Subscription::EdgeModules) => client.iot_edge.then_some(QoS::AtLeastOnce),
            Some(_) => Some(QoS::AtLeastOnce),
            None => None,
        };
        if granted.is_none() {
            tracing::info!(identity = %client.identity, filter, "subscription refused");
        }
        granted
    }

    fn subscribed(&self, client: &Client, filter: &str) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        match Subscription::classify(&client.identity, filter) {
            Some(Subscription::C2d) => hub.c2d.deliver(client.identity.device.clone()),
            Some(Subscription::Methods | Subscription::EdgeModules) => hub.methods.on_subscribed(),
            _ => {}
        }
    }

    fn publish(
        &self,
        client: &Client,
        publish: Publish,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        // Taken as the PUBLISH arrives: its telemetry is stored in arrival order.
        let turn = client.order.take();
        async move {
            let hub = self
                .hub
                .upgrade()
                .ok_or_else(|| PublishError::Unavailable("hub shutting down".into()))?;
            dispatch::publish(&hub, client, publish, turn).await
        }
    }

    fn connected(&self, client: &Client, _session_present: bool) {
        if let Some(hub) = self.hub.upgrade() {
            if client.identity.module.is_none() {
                hub.c2d.deliver(client.identity.device.clone());
            }
            hub.methods.on_subscribed();
        }
    }

    fn disconnected(&self, client: &Client, reason: DisconnectReason) {
        let lost = !matches!(
            reason,
            DisconnectReason::ClientDisconnect
                | DisconnectReason::Takeover
                | DisconnectReason::ServerDisconnect
        );
        if let (true, Some(will), Some(hub)) = (lost, client.will.clone(), self.hub.upgrade()) {
            let client = client.clone();
            tokio::spawn(async move { dispatch::store_will(&hub, &client, will).await });
        }
        tracing::debug!(identity = %client.identity, ?reason, "MQTT connection closed");
    }
}
