//! Module twins and direct methods through the edge hub: a cloud connection per module.
//!
//! The first time a module needs the cloud (it subscribes to desired patches or methods, or
//! sends a twin request), the edge hub opens an MQTT connection to the hub *as that module*
//! (its key is in the daemon, which made the identity) and relays: twin GET and reported
//! PATCH go up and their answers come back on `$iothub/twin/res/...`; desired patches and
//! method requests come down on the module's own topics; its method answers go up. This is
//! how Azure's edgeHub works with an MQTT upstream (one cloud connection per client).
//!
//! Twins go through [`TwinStore`], as in Azure's edgeHub: a reported patch is checked and saved
//! there and acknowledged at once (also offline); the module's connection sends the pending
//! patches in order whenever it is up. A twin GET reads the hub's twin (pending patches applied)
//! and, once the connection has gone down or when the hub does not answer within
//! [`CLOUD_TIMEOUT`], the last one read, also after a restart, or an empty one. The connection reconnects on its own
//! forever.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use spoke_sdk::{Client, ClientConfig, Credentials, Event, Events};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::EdgeServer;
use super::twins::{AcceptError, TwinStore};
use crate::workload::KeyStore;

/// How long a module's twin request waits for the hub.
pub const CLOUD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long pending reported patches wait before another try when the hub did not take them
/// over a working connection.
const SYNC_RETRY: Duration = Duration::from_secs(10);
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

/// What a module's connection task and the requests share.
#[derive(Default)]
struct Link {
    /// The connection is up (between `Connected` and `Disconnected`).
    online: AtomicBool,
    /// The connection was up once: when it is not now, the hub is out of reach (before,
    /// it may just be coming up, and a twin cached before a restart may be stale).
    was_online: AtomicBool,
    /// Pending reported patches to send, or the connection came up.
    wake: Notify,
}

struct CloudModule {
    client: watch::Receiver<Option<Client>>,
    link: Arc<Link>,
    task: JoinHandle<()>,
}

/// The cloud connections of the modules (see the module documentation).
pub struct Clouds {
    config: CloudConfig,
    keys: Arc<dyn KeyStore>,
    server: EdgeServer,
    twins: Arc<TwinStore>,
    modules: Mutex<HashMap<ModuleId, Arc<CloudModule>>>,
}

impl Clouds {
    /// Opens the twin cache at `twins_file`, and connects the modules that have reported
    /// patches to send.
    pub fn new(
        config: CloudConfig,
        keys: Arc<dyn KeyStore>,
        server: EdgeServer,
        twins_file: PathBuf,
    ) -> Self {
        let clouds = Self {
            config,
            keys,
            server,
            twins: Arc::new(TwinStore::open(twins_file)),
            modules: Mutex::new(HashMap::new()),
        };
        for module in clouds.twins.modules_with_pending() {
            clouds.ensure(&module);
        }
        clouds
    }

    /// The module's cloud connection, started on first use.
    fn module(&self, module: &ModuleId) -> Arc<CloudModule> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        modules
            .entry(module.clone())
            .or_insert_with(|| {
                let (tx, rx) = watch::channel(None);
                let link = Arc::new(Link::default());
                let task = tokio::spawn(run(
                    Connection {
                        config: self.config.clone(),
                        keys: self.keys.clone(),
                        server: self.server.clone(),
                        twins: self.twins.clone(),
                        link: link.clone(),
                        module: module.clone(),
                    },
                    tx,
                ));
                Arc::new(CloudModule {
                    client: rx,
                    link,
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

    /// The module's twin (`{"desired":..,"reported":..}`) with its pending reported patches
    /// applied: from the hub or, offline, the last one read (or an empty one).
    pub async fn twin(&self, module: &ModuleId) -> Value {
        let entry = self.module(module);
        if entry.link.was_online.load(Ordering::Acquire)
            && !entry.link.online.load(Ordering::Acquire)
            && let Some(cached) = self.twins.cached(module)
        {
            return cached;
        }
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
            Ok(twin) => self.twins.read(module, twin),
            Err(e) => {
                tracing::debug!(%module, status = e.status, error = e.message, "twin read from the edge hub's cache");
                self.twins.view(module)
            }
        }
    }

    /// Accepts a reported-properties patch (checked and saved here, sent to the hub in the
    /// background); the reported version the module sees.
    pub fn patch_reported(&self, module: &ModuleId, patch: &Value) -> Result<u64, CloudError> {
        let version = self.twins.accept(module, patch).map_err(|e| CloudError {
            status: match e {
                AcceptError::Invalid(ref invalid) => invalid.status(),
                AcceptError::Io(_) => 500,
            },
            message: e.to_string(),
        })?;
        self.module(module).link.wake.notify_one();
        Ok(version)
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

/// A module's connection to the hub and what it works with.
struct Connection {
    config: CloudConfig,
    keys: Arc<dyn KeyStore>,
    server: EdgeServer,
    twins: Arc<TwinStore>,
    link: Arc<Link>,
    module: ModuleId,
}

/// Connects as the module, then relays the hub's desired patches and method requests to the
/// module and sends its pending reported patches.
async fn run(connection: Connection, slot: watch::Sender<Option<Client>>) {
    let identity = Identity::module(connection.config.device.clone(), connection.module.clone());
    let key = || {
        connection
            .keys
            .module_key(&connection.module)
            .map(|key| base64::engine::general_purpose::STANDARD.encode(key))
            .ok_or_else(|| format!("no identity for module {}", connection.module))
    };
    let (client, events) = connect_forever(&connection.config, &identity, key).await;
    slot.send_replace(Some(client.clone()));
    tokio::join!(
        relay(&connection, &client, &identity, events),
        sync_reported(&connection, &client),
    );
}

/// Sends the module's pending reported patches, oldest first, whenever there are some and the
/// connection is up; a patch the hub refuses is logged and dropped.
async fn sync_reported(connection: &Connection, client: &Client) {
    let module = &connection.module;
    loop {
        let mut stalled = false;
        while connection.link.online.load(Ordering::Acquire)
            && let Some(patch) = connection.twins.oldest_pending(module)
        {
            let body = Value::Object(patch.clone());
            match tokio::time::timeout(CLOUD_TIMEOUT, client.patch_reported(&body)).await {
                Ok(Ok(version)) => connection.twins.sent(module, &patch, Some(version)),
                Ok(Err(spoke_sdk::Error::TwinStatus { status, body }))
                    if (400..500).contains(&status) && status != 408 && status != 429 =>
                {
                    tracing::warn!(%module, status, body, "the hub refused reported properties the edge hub had accepted; dropped");
                    connection.twins.sent(module, &patch, None);
                }
                Ok(Err(e)) => {
                    tracing::debug!(%module, error = %e, "reported properties not synced yet");
                    stalled = true;
                    break;
                }
                Err(_) => {
                    stalled = true;
                    break;
                }
            }
        }
        if stalled {
            tokio::select! {
                () = connection.link.wake.notified() => {}
                () = tokio::time::sleep(SYNC_RETRY) => {}
            }
        } else {
            connection.link.wake.notified().await;
        }
    }
}

async fn relay(connection: &Connection, client: &Client, identity: &Identity, mut events: Events) {
    let server = &connection.server;
    let client_id = identity.client_id();
    while let Some(event) = events.recv().await {
        match event {
            Event::DesiredPatch(patch) => {
                connection.twins.desired_patch(&connection.module, &patch);
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
            Event::Connected => {
                connection.link.online.store(true, Ordering::Release);
                connection.link.was_online.store(true, Ordering::Release);
                connection.link.wake.notify_one();
            }
            Event::Disconnected { .. } => {
                connection.link.online.store(false, Ordering::Release);
            }
            Event::Message { .. } => {}
        }
    }
}
