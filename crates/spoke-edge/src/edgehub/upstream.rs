//! The upstream link: one MQTT connection to the hub as the edge device, carrying the traffic
//! of all its modules (`docs/protocol.md`):
//! - telemetry routed to `$upstream`, each message on the events topic of the module that
//!   sent it (`devices/{d}/modules/{m}/messages/events/`), stamped by the hub as that module's;
//! - module twins and direct methods on module-scoped topics (`$iothub/modules/{m}/...`): the
//!   link subscribes to their twin responses and desired patches, and to the method calls of
//!   each module while it is connected to the edge hub, and passes what the hub sends them
//!   on as [`LinkEvent`]s; requests and answers go through [`UpstreamLink::client`].
//!
//! The connection is made in the background with back-off, forever; messages wait in their
//! queue meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::message::Message;
use spoke_sdk::{Client, ClientConfig, Credentials, Event, Events};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::pump::{self, Delivery, Refused};

/// Longest wait between two connection attempts (short: the hub's return after an outage
/// should drain the queues soon).
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Capacity of the channel of [`LinkEvent`]s.
const EVENT_CAPACITY: usize = 64;

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

/// What the link hears from the hub for the modules, in order.
#[derive(Debug)]
pub enum LinkEvent {
    /// The connection is up (first or again).
    Connected,
    /// A desired-properties patch of `module`'s twin.
    DesiredPatch {
        /// The module.
        module: ModuleId,
        /// The patch, with `$version`.
        patch: Value,
    },
    /// A direct method call to `module`; answer with `Client::respond_module_method`.
    Method {
        /// The module called.
        module: ModuleId,
        /// The method name.
        name: String,
        /// The request ID.
        rid: String,
        /// The JSON payload.
        payload: Value,
    },
}

/// The connection's state, as the edge hub sees it.
#[derive(Default)]
struct LinkState {
    /// Up (between `Connected` and `Disconnected`).
    online: AtomicBool,
    /// Up once: when it is not now, the hub is out of reach (before, it may just be coming
    /// up).
    was_online: AtomicBool,
}

/// Handle to the link (cheap to clone).
#[derive(Clone)]
pub struct UpstreamLink {
    device: DeviceId,
    client: watch::Receiver<Option<Client>>,
    state: Arc<LinkState>,
    task: Arc<JoinHandle<()>>,
}

impl UpstreamLink {
    /// Starts connecting as the edge device with its key (base64); the hub's messages for the
    /// modules come out of the returned receiver, which must be read continuously.
    pub fn start(config: CloudConfig, device_key: String) -> (Self, mpsc::Receiver<LinkEvent>) {
        let (tx, rx) = watch::channel(None);
        let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let state = Arc::new(LinkState::default());
        let device = config.device.clone();
        let task = tokio::spawn(run(config, device_key, tx, state.clone(), events));
        let link = Self {
            device,
            client: rx,
            state,
            task: Arc::new(task),
        };
        (link, events_rx)
    }

    /// This edge device.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// Whether the link is connected now.
    pub fn connected(&self) -> bool {
        self.state.online.load(Ordering::Acquire)
    }

    /// Whether the link was connected once and is not now: the hub is out of reach.
    pub fn lost(&self) -> bool {
        self.state.was_online.load(Ordering::Acquire) && !self.connected()
    }

    /// The link's client, waiting up to `timeout` for the first connection. Requests made
    /// while it is disconnected wait for the next connection.
    pub async fn client(&self, timeout: Duration) -> Option<Client> {
        tokio::time::timeout(timeout, self.first_client())
            .await
            .ok()?
    }

    /// The link's client, once the first connection is made (`None` if the link stopped).
    pub async fn first_client(&self) -> Option<Client> {
        let mut rx = self.client.clone();
        let client = rx.wait_for(Option::is_some).await.ok()?;
        client.clone()
    }

    /// The delivery side of the `$upstream` endpoint.
    pub fn sink(&self) -> UpstreamSink {
        UpstreamSink {
            device: self.device.clone(),
            client: self.client.clone(),
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let client = self.client.borrow().clone();
        if let Some(client) = client {
            let _ = client.close().await;
        }
        self.task.abort();
    }
}

/// Connects as the edge device, retrying with back-off (1 s, doubling up to
/// [`MAX_BACKOFF`]) until it works.
async fn connect_forever(config: &CloudConfig, key: &str) -> (Client, Events) {
    let identity = Identity::device(config.device.clone());
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut client_config = ClientConfig::new(
            config.hub_hostname.clone(),
            identity.clone(),
            Credentials::SymmetricKey(key.to_owned()),
            config.ca_pem.clone(),
        );
        client_config.port = config.port;
        client_config.edge_modules = true;
        match Client::connect(client_config).await {
            Ok(pair) => return pair,
            Err(e) => {
                tracing::info!(reason = %e, retry_in = ?backoff, "upstream link not up");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn run(
    config: CloudConfig,
    key: String,
    slot: watch::Sender<Option<Client>>,
    state: Arc<LinkState>,
    out: mpsc::Sender<LinkEvent>,
) {
    let (client, mut events) = connect_forever(&config, &key).await;
    tracing::info!("upstream link connected");
    slot.send_replace(Some(client));
    while let Some(event) = events.recv().await {
        let passed = match event {
            Event::Connected => {
                state.online.store(true, Ordering::Release);
                state.was_online.store(true, Ordering::Release);
                Some(LinkEvent::Connected)
            }
            Event::Disconnected { reason } => {
                tracing::info!(?reason, "upstream link lost; reconnecting");
                state.online.store(false, Ordering::Release);
                None
            }
            Event::ModuleDesiredPatch { module, patch } => {
                Some(LinkEvent::DesiredPatch { module, patch })
            }
            Event::ModuleMethod {
                module,
                name,
                rid,
                payload,
            } => Some(LinkEvent::Method {
                module,
                name,
                rid,
                payload,
            }),
            Event::DesiredPatch(_) | Event::Method { .. } | Event::Message { .. } => None,
        };
        if let Some(event) = passed
            && out.send(event).await.is_err()
        {
            break;
        }
    }
    state.online.store(false, Ordering::Release);
}

/// Sends `$upstream` messages over the link.
pub struct UpstreamSink {
    device: DeviceId,
    client: watch::Receiver<Option<Client>>,
}

impl UpstreamSink {
    /// The identity whose events topic carries `message`: the sending module.
    fn sender(&self, message: &Message) -> Identity {
        match message
            .system
            .connection_module_id
            .as_deref()
            .and_then(|m| ModuleId::parse(m).ok())
        {
            Some(module) => Identity::module(self.device.clone(), module),
            None => Identity::device(self.device.clone()),
        }
    }
}

impl pump::Sink for UpstreamSink {
    async fn send(&mut self, mut message: Message) -> Result<Delivery, Refused> {
        if message.body.len() > spoke_sdk::MAX_MESSAGE_SIZE {
            return Err(Refused::Undeliverable(format!(
                "{} bytes is over the hub's message size limit",
                message.body.len()
            )));
        }
        let Some(client) = self.client.borrow().clone() else {
            return Err(Refused::NotReady);
        };
        let sender = self.sender(&message);
        message.system.connection_device_id = None;
        message.system.connection_module_id = None;
        match client.submit_event_for(&sender, message).await {
            Ok(acked) => Ok(Box::pin(async move {
                acked
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "upstream send failed"))
                    .is_ok()
            })),
            Err(e) => {
                tracing::warn!(error = %e, "upstream link unusable");
                Err(Refused::NotReady)
            }
        }
    }

    async fn ready(&mut self) {
        let _ = self.client.wait_for(Option::is_some).await;
    }
}
