//! The upstream link: one MQTT connection to the hub as the edge device, carrying the
//! telemetry of all its modules (`$upstream`). Each message goes out on the events topic of
//! the module that sent it (`devices/{d}/modules/{m}/messages/events/`), which the hub allows
//! an IoT Edge device's own connection and stamps as coming from that module
//! (`docs/protocol.md`). The connection is made in the background with back-off, forever;
//! messages wait in their queue meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::message::Message;
use spoke_sdk::{Client, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cloud::{CloudConfig, connect_forever};
use super::pump::{self, Delivery, Refused};

/// Handle to the link (cheap to clone).
#[derive(Clone)]
pub struct UpstreamLink {
    device: DeviceId,
    client: watch::Receiver<Option<Client>>,
    connected: Arc<AtomicBool>,
    task: Arc<JoinHandle<()>>,
}

impl UpstreamLink {
    /// Starts connecting as the edge device with its key (base64).
    pub fn start(config: CloudConfig, device_key: String) -> Self {
        let (tx, rx) = watch::channel(None);
        let connected = Arc::new(AtomicBool::new(false));
        let device = config.device.clone();
        let task = tokio::spawn(run(config, device_key, tx, connected.clone()));
        Self {
            device,
            client: rx,
            connected,
            task: Arc::new(task),
        }
    }

    /// Whether the link is connected now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
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

async fn run(
    config: CloudConfig,
    key: String,
    slot: watch::Sender<Option<Client>>,
    connected: Arc<AtomicBool>,
) {
    let identity = Identity::device(config.device.clone());
    let (client, mut events) = connect_forever(&config, &identity, || Ok(key.clone())).await;
    tracing::info!("upstream link connected");
    slot.send_replace(Some(client));
    connected.store(true, Ordering::Relaxed);
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected => connected.store(true, Ordering::Relaxed),
            Event::Disconnected { reason } => {
                tracing::info!(?reason, "upstream link lost; reconnecting");
                connected.store(false, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    connected.store(false, Ordering::Relaxed);
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
