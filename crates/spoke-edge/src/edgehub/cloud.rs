//! Module twins and direct methods through the edge hub: a cloud connection per module.
//!
//! The first time a module needs the cloud (it subscribes to desired patches or methods, or
//! sends a twin request), the edge hub opens an MQTT connection to the hub *as that module*
//! (its key is in the daemon, which made the identity) and relays: twin GET and reported
//! PATCH go up and their answers come back on `$iothub/twin/res/...`; desired patches and
//! method requests come down on the module's own topics; its method answers go up. This is
//! how Azure's edgeHub works with an MQTT upstream (one cloud connection per client).
//!
//! Offline: a twin GET answers from the last twin read for the module (in memory) when the hub
//! does not answer within [`CLOUD_TIMEOUT`]; without one, and for reported patches, the module
//! gets status 504 and retries as the SDK does. The connection reconnects on its own forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use spoke_sdk::{Client, ClientConfig, Credentials, Event, Events};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::EdgeServer;
use crate::workload::KeyStore;

/// How long a module's twin request waits for the hub.
pub const CLOUD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two connection attempts (short: the hub's return after an outage
/// should drain the queues soon).
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where the hub is.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// The hub's host name (connection target, SAS `sr`).
    pub hub_hostname: String,
    /// The hub's MQTT/TLS port.
    pub port: u16,
    /// PEM of the CAs the hub's certificate chains to.
    pub ca_pem: String,
    /// This edge device.
    pub device: DeviceId,
}

/// A failed cloud request: the status and message for the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudError {
    /// HTTP-like status (IoT Hub's).
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl CloudError {
    fn timeout() -> Self {
        Self {
            status: 504,
            message: "the hub did not answer in time".into(),
        }
    }
}

struct CloudModule {
    client: watch::Receiver<Option<Client>>,
    twin: Mutex<Option<Value>>,
    task: JoinHandle<()>,
}

/// The cloud connections of the modules (see the module documentation).
pub struct Clouds {
    config: CloudConfig,
    keys: Arc<dyn KeyStore>,
    server: EdgeServer,
    modules: Mutex<HashMap<ModuleId, Arc<CloudModule>>>,
}

impl Clouds {
    /// No connections yet.
    pub fn new(config: CloudConfig, keys: Arc<dyn KeyStore>, server: EdgeServer) -> Self {
        Self {
            config,
            keys,
            server,
            modules: Mutex::new(HashMap::new()),
        }
    }

    /// The module's cloud connection, started on first use.
    fn module(&self, module: &ModuleId) -> Arc<CloudModule> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        modules
            .entry(module.clone())
            .or_insert_with(|| {
                let (tx, rx) = watch::channel(None);
                let identity = Identity::module(self.config.device.clone(), module.clone());
                let task = tokio::spawn(run(
                    self.config.clone(),
                    self.keys.clone(),
                    self.server.clone(),
                    identity,
                    tx,
                ));
                Arc::new(CloudModule {
                    client: rx,
                    twin: Mutex::new(None),
                    task,
                })
            })
            .clone()
    }

    /// Makes sure the module's cloud connection exists (it subscribed to desired patches or
    /// methods).
    pub fn ensure(&self, module: &ModuleId) {
        self.module(module);
    }

    async fn client(&self, module: &ModuleId) -> Result<Client, CloudError> {
        let mut rx = self.module(module).client.clone();
        let client = tokio::time::timeout(CLOUD_TIMEOUT, rx.wait_for(Option::is_some))
            .await
            .map_err(|_| CloudError::timeout())?
            .map_err(|_| CloudError::timeout())?;
        client.clone().ok_or_else(CloudError::timeout)
    }

    /// The module's twin (`{"desired":..,"reported":..}`), from the hub or, offline, from the
    /// last one read.
    pub async fn twin(&self, module: &ModuleId) -> Result<Value, CloudError> {
        let entry = self.module(module);
        let read = async {
            let client = self.client(module).await?;
            tokio::time::timeout(CLOUD_TIMEOUT, client.get_twin())
                .await
                .map_err(|_| CloudError::timeout())?
                .map_err(|e| CloudError {
                    status: 502,
                    message: e.to_string(),
                })
        };
        match read.await {
            Ok(twin) => {
                *entry.twin.lock().unwrap_or_else(PoisonError::into_inner) = Some(twin.clone());
                Ok(twin)
            }
            Err(e) => entry
                .twin
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or(e),
        }
    }

    /// Sends a reported-properties patch; the new reported version.
    pub async fn patch_reported(
        &self,
        module: &ModuleId,
        patch: &Value,
    ) -> Result<u64, CloudError> {
        let client = self.client(module).await?;
        tokio::time::timeout(CLOUD_TIMEOUT, client.patch_reported(patch))
            .await
            .map_err(|_| CloudError::timeout())?
            .map_err(|e| CloudError {
                status: 400,
                message: e.to_string(),
            })
    }

    /// Passes a module's method answer to the hub.
    pub async fn respond(&self, module: &ModuleId, rid: &str, status: i32, payload: &[u8]) {
        let payload = serde_json::from_slice(payload).unwrap_or(Value::Null);
        match self.client(module).await {
            Ok(client) => {
                if let Err(e) = client.respond_method(rid, status, &payload).await {
                    tracing::warn!(%module, rid, error = %e, "method answer not sent to the hub");
                }
            }
            Err(e) => {
                tracing::warn!(%module, rid, error = e.message, "method answer not sent to the hub");
            }
        }
    }

    /// Closes every cloud connection.
    pub async fn close(&self) {
        let modules: Vec<_> = self
            .modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, m)| m)
            .collect();
        for module in modules {
            let client = module.client.borrow().clone();
            if let Some(client) = client {
                let _ = client.close().await;
            }
            module.task.abort();
        }
    }
}

/// Connects to the hub as `identity`, with the key `key` gives (base64) at each attempt,
/// retrying with back-off (1 s, doubling up to [`MAX_BACKOFF`]) until it works.
pub async fn connect_forever(
    config: &CloudConfig,
    identity: &Identity,
    key: impl Fn() -> Result<String, String>,
) -> (Client, Events) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let attempt = match key() {
            Ok(key) => {
                let mut client_config = ClientConfig::new(
                    config.hub_hostname.clone(),
                    identity.clone(),
                    Credentials::SymmetricKey(key),
                    config.ca_pem.clone(),
                );
                client_config.port = config.port;
                Client::connect(client_config)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        match attempt {
            Ok(pair) => return pair,
            Err(reason) => {
                tracing::info!(%identity, reason, retry_in = ?backoff, "connection to the hub not up");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Connects as `identity`, then relays the hub's desired patches and method requests to the
/// module.
async fn run(
    config: CloudConfig,
    keys: Arc<dyn KeyStore>,
    server: EdgeServer,
    identity: Identity,
    slot: watch::Sender<Option<Client>>,
) {
    let key = || {
        let module = identity.module.as_ref().ok_or("not a module")?;
        keys.module_key(module)
            .map(|key| base64::engine::general_purpose::STANDARD.encode(key))
            .ok_or_else(|| format!("no identity for module {module}"))
    };
    let (client, events) = connect_forever(&config, &identity, key).await;
    slot.send_replace(Some(client.clone()));
    relay(&server, &client, &identity, events).await;
}

async fn relay(server: &EdgeServer, client: &Client, identity: &Identity, mut events: Events) {
    let client_id = identity.client_id();
    while let Some(event) = events.recv().await {
        match event {
            Event::DesiredPatch(patch) => {
                let version = patch.get("$version").and_then(Value::as_u64).unwrap_or(0);
                let body = Bytes::from(patch.to_string());
                let sent = server.publish(
                    &client_id,
                    topic::desired_patch(version),
                    body,
                    QoS::AtMostOnce,
                );
                if let Err(e) = sent {
                    tracing::debug!(%identity, error = %e, "desired patch not relayed");
                }
            }
            Event::Method { name, rid, payload } => {
                let body = Bytes::from(payload.to_string());
                let sent = server.publish(
                    &client_id,
                    topic::method_request(&name, &rid),
                    body,
                    QoS::AtMostOnce,
                );
                if let Err(e) = sent {
                    tracing::debug!(%identity, method = name, error = %e, "method request not relayed");
                    let answer = json!({"message": format!("module {identity} is not connected to the edge hub")});
                    if let Err(e) = client.respond_method(&rid, 404, &answer).await {
                        tracing::warn!(%identity, error = %e, "method answer not sent");
                    }
                }
            }
            Event::Connected | Event::Disconnected { .. } | Event::Message { .. } => {}
        }
    }
}
