//! The edge hub's side of the MQTT server: module authentication, subscription policy, and
//! what an inbound PUBLISH means (spec §4.2): telemetry and outputs are routed; twin requests
//! and method answers go to the module's cloud connection (`cloud.rs`). A module may only use
//! its own topics; anything else closes its connection, as IoT Hub does.

use std::sync::{Arc, OnceLock, Weak};
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{Value, json};
use spoke_core::ids::{Identity, ModuleId};
use spoke_core::message::Message;
use spoke_core::route::MessageSource;
use spoke_core::topic::{self, DeviceTopic, Subscription};
use spoke_mqtt::codec::{ConnectReturnCode, Publish, QoS};
use spoke_mqtt::order::{ArrivalOrder, Turn};
use spoke_mqtt::server::{
    Authenticated, ConnectInfo, DisconnectReason, Hooks, PeerInfo, PublishError,
};

use super::Shared;
use super::auth;
use super::cloud::CloudError;
use super::local;
use super::sessions::FileSessionStore;

/// An authenticated module connection.
#[derive(Debug, Clone)]
pub struct ModuleClient {
    /// `{device}/{module}`.
    pub identity: Identity,
    /// The module.
    pub module: ModuleId,
    /// The order its messages arrive in.
    order: ArrivalOrder,
}

/// See the module documentation.
pub struct EdgeHooks {
    shared: OnceLock<Weak<Shared>>,
    sessions: FileSessionStore,
}

impl EdgeHooks {
    /// Hooks with their session store; [`EdgeHooks::bind`] them before serving.
    pub fn new(sessions: FileSessionStore) -> Self {
        Self {
            shared: OnceLock::new(),
            sessions,
        }
    }

    /// Binds the edge hub (held weakly: it owns the server).
    pub fn bind(&self, shared: &Arc<Shared>) {
        let _ = self.shared.set(Arc::downgrade(shared));
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.get().and_then(Weak::upgrade)
    }
}

fn unavailable() -> PublishError {
    PublishError::Unavailable("edge hub shutting down".into())
}

impl Hooks for EdgeHooks {
    type Client = ModuleClient;
    type Store = FileSessionStore;

    fn session_store(&self) -> &FileSessionStore {
        &self.sessions
    }

    async fn authenticate(
        &self,
        connect: &ConnectInfo,
        _peer: &PeerInfo,
    ) -> Result<Authenticated<ModuleClient>, ConnectReturnCode> {
        let shared = self.shared().ok_or(ConnectReturnCode::ServerUnavailable)?;
        let login = auth::authenticate(
            connect,
            &shared.device,
            &shared.hub_hostname,
            shared.keys.as_ref(),
            SystemTime::now(),
        )
        .inspect_err(|code| {
            tracing::info!(
                client_id = connect.client_id,
                ?code,
                "edge hub connection refused"
            );
        })?;
        let module = login
            .identity
            .module
            .clone()
            .ok_or(ConnectReturnCode::IdentifierRejected)?;
        let client = ModuleClient {
            identity: login.identity,
            module,
            order: ArrivalOrder::default(),
        };
        if !local::may_connect(&shared, &client) {
            tracing::info!(identity = %client.identity, "edge hub connection refused by the mqttBroker policy");
            return Err(ConnectReturnCode::NotAuthorized);
        }
        Ok(Authenticated {
            client_id: client.identity.client_id(),
            expires_at: Some(login.expires_at),
            client,
        })
    }

    fn authorize_subscribe(&self, client: &ModuleClient, filter: &str, _qos: QoS) -> Option<QoS> {
        let custom = || {
            local::is_custom(filter)
                && self
                    .shared()
                    .is_some_and(|shared| local::may_subscribe(&shared, client, filter))
        };
        let granted = (Subscription::classify(&client.identity, filter).is_some() || custom())
            .then_some(QoS::AtLeastOnce);
        if granted.is_none() {
            tracing::info!(identity = %client.identity, filter, "subscription refused");
        }
        granted
    }

    fn subscribed(&self, client: &ModuleClient, filter: &str) {
        let Some(shared) = self.shared() else {
            return;
        };
        if Subscription::classify(&client.identity, filter) == Some(Subscription::ModuleInputs) {
            shared.router.wake(&client.identity.client_id());
        }
    }

    fn publish(
        &self,
        client: &ModuleClient,
        publish: Publish,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        // Taken now, as the PUBLISH arrives; the returned future runs concurrently with the
        // connection's other PUBLISHes.
        let turn = client.order.take();
        self.handle_publish(client, publish, turn)
    }

    fn connected(&self, client: &ModuleClient, _session_present: bool) {
        if let Some(shared) = self.shared() {
            shared.router.wake(&client.identity.client_id());
            shared.cloud.follow(&client.module, true);
        }
    }

    fn disconnected(&self, client: &ModuleClient, reason: DisconnectReason) {
        tracing::debug!(identity = %client.identity, ?reason, "edge hub connection closed");
        // A takeover's new connection is the module, still connected.
        if !reason.is_takeover()
            && let Some(shared) = self.shared()
        {
            shared.cloud.follow(&client.module, false);
        }
    }
}

impl EdgeHooks {
    /// What an inbound PUBLISH means; `turn` is its place in the connection's order.
    async fn handle_publish(
        &self,
        client: &ModuleClient,
        publish: Publish,
        turn: Turn,
    ) -> Result<(), PublishError> {
        let shared = self.shared().ok_or_else(unavailable)?;
        if local::is_custom(&publish.topic) {
            return local::publish(&shared, client, &publish);
        }
        let parsed = DeviceTopic::parse(&publish.topic)
            .map_err(|e| PublishError::Forbidden(format!("topic {:?}: {e}", publish.topic)))?;
        if let Some(owner) = parsed.identity().filter(|owner| *owner != client.identity) {
            return Err(PublishError::Forbidden(format!(
                "{} may not publish on {owner}'s topic",
                client.identity
            )));
        }
        match parsed {
            DeviceTopic::Events { bag, .. } => {
                let mut message = Message::from_property_bag(publish.payload.to_vec(), &bag)
                    .map_err(|e| PublishError::Forbidden(format!("property bag: {e}")))?;
                message.system.connection_device_id = Some(shared.device.to_string());
                message.system.connection_module_id = Some(client.module.to_string());
                let source = match &message.system.output_name {
                    Some(output) => MessageSource::ModuleOutput {
                        module: client.module.to_string(),
                        output: output.clone(),
                    },
                    None => MessageSource::Module {
                        module: client.module.to_string(),
                    },
                };
                shared.router.route(&source, &message, turn).await
            }
            DeviceTopic::TwinGet { rid } => {
                let client = client.clone();
                tokio::spawn(async move {
                    let twin = shared.cloud.twin(&client.module).await;
                    respond(
                        &shared,
                        &client,
                        topic::twin_response(200, &rid, None),
                        Bytes::from(twin.to_string()),
                    );
                });
                Ok(())
            }
            DeviceTopic::TwinPatchReported { rid } => {
                // Accepted here, in the connection's order, and synced to the hub in the
                // background.
                let mut turn = turn;
                turn.wait().await;
                let result = match serde_json::from_slice::<Value>(&publish.payload) {
                    Ok(patch) => shared.cloud.patch_reported(&client.module, &patch),
                    Err(e) => Err(CloudError {
                        status: 400,
                        message: format!("reported properties are not JSON: {e}"),
                    }),
                };
                let (t, body) = match result {
                    Ok(version) => (topic::twin_response(204, &rid, Some(version)), Bytes::new()),
                    Err(e) => (topic::twin_response(e.status, &rid, None), error_body(&e)),
                };
                turn.release();
                respond(&shared, client, t, body);
                Ok(())
            }
            DeviceTopic::MethodResponse { status, rid } => {
                let client_id = client.identity.client_id();
                if !shared
                    .methods
                    .complete(&client_id, &rid, status, publish.payload.clone())
                {
                    let module = client.module.clone();
                    tokio::spawn(async move {
                        shared
                            .cloud
                            .respond(&module, &rid, status, &publish.payload)
                            .await;
                    });
                }
                Ok(())
            }
        }
    }
}

fn error_body(e: &CloudError) -> Bytes {
    Bytes::from(json!({"Message": e.message}).to_string())
}

/// Sends a twin response; a client not subscribed to `$iothub/twin/res/#` gets none.
fn respond(shared: &Shared, client: &ModuleClient, topic: String, body: Bytes) {
    let sent = shared
        .server
        .publish(&client.identity.client_id(), topic, body, QoS::AtMostOnce);
    if let Err(e) = sent {
        tracing::debug!(identity = %client.identity, error = %e, "twin response not sent");
    }
}
