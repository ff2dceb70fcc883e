//! The daemon's connection to the hub as the `$edgeAgent` module (spoke-sdk).
//!
//! A background task gets the `$edgeAgent` identity (hub or cache), connects with back-off
//! until it succeeds, then forwards the whole desired section of the `$edgeAgent` twin to the
//! daemon loop: once per connection and after every desired-properties patch. Reported
//! properties go out through [`Upstream::report`] while connected.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use spoke_core::ids::{Identity, ModuleId};
use spoke_sdk::{Client, ClientConfig, Credentials, Event, Events};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::modules::SharedCache;
use crate::identity::{DeviceCredentials, IdentityClient, ModuleIdentity};

/// What the upstream connection tells the daemon loop.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A (new) connection is up: report everything again.
    Connected,
    /// The whole desired section of the `$edgeAgent` twin, `$version` included.
    Desired(Value),
    /// A direct method call to `$edgeAgent`; answer with [`Upstream::respond`].
    Method {
        /// Request id.
        rid: String,
        /// Method name.
        name: String,
        /// Request payload.
        payload: Value,
    },
}

/// Handle to the upstream connection task.
pub struct Upstream {
    client: Arc<Mutex<Option<Client>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Starts connecting in the background.
    pub fn start(
        identities: IdentityClient,
        cache: SharedCache,
        agent: ModuleId,
        device: &DeviceCredentials,
        mqtt_port: u16,
        ca_pem: String,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Self {
        let client = Arc::new(Mutex::new(None));
        let slot = client.clone();
        let hub = device.hub_host.clone();
        let identity = Identity::module(device.device_id.clone(), agent.clone());
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            let (connected, incoming) = loop {
                match connect(
                    &identities,
                    &cache,
                    &agent,
                    &hub,
                    &identity,
                    mqtt_port,
                    &ca_pem,
                )
                .await
                {
                    Ok(pair) => break pair,
                    Err(reason) => {
                        tracing::warn!(reason, retry_in = ?backoff, "hub unreachable; running the last good deployment");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_mins(1));
                    }
                }
            };
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(connected.clone());
            follow(&connected, incoming, &events).await;
        });
        Self { client, task }
    }

    fn client(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a connection to the hub has been made (the client reconnects by itself after).
    pub fn connected(&self) -> bool {
        self.client().is_some()
    }

    /// Sends a reported-properties patch; `false` if not connected or refused.
    pub async fn report(&self, patch: Value) -> bool {
        let Some(client) = self.client() else {
            return false;
        };
        match client.patch_reported(&patch).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "reported properties not sent");
                false
            }
        }
    }

    /// Answers a direct method call.
    pub async fn respond(&self, rid: &str, status: i32, payload: &Value) {
        let Some(client) = self.client() else {
            return;
        };
        if let Err(e) = client.respond_method(rid, status, payload).await {
            tracing::warn!(error = %e, "method answer not sent");
        }
    }

    /// Closes the connection and stops the task.
    pub async fn close(self) {
        if let Some(client) = self.client() {
            let _ = client.close().await;
        }
        self.task.abort();
    }
}

async fn connect(
    identities: &IdentityClient,
    cache: &SharedCache,
    agent: &ModuleId,
    hub: &str,
    identity: &Identity,
    mqtt_port: u16,
    ca_pem: &str,
) -> Result<(Client, Events), String> {
    let module = agent_identity(identities, cache, agent).await?;
    let mut config = ClientConfig::new(
        hub,
        identity.clone(),
        Credentials::SymmetricKey(module.primary_key),
        ca_pem,
    );
    config.port = mqtt_port;
    Client::connect(config).await.map_err(|e| e.to_string())
}

async fn agent_identity(
    identities: &IdentityClient,
    cache: &SharedCache,
    agent: &ModuleId,
) -> Result<ModuleIdentity, String> {
    match identities.get_or_create(agent).await {
        Ok(identity) => {
            let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = cache.put(identity.clone()) {
                tracing::warn!(error = %e, "identity cache not written");
            }
            Ok(identity)
        }
        Err(e) => cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent)
            .cloned()
            .ok_or_else(|| e.to_string()),
    }
}

/// Forwards the desired section on each connection and each desired patch, until the
/// connection task ends.
async fn follow(client: &Client, mut incoming: Events, events: &mpsc::Sender<UpstreamEvent>) {
    let mut refresh = true;
    loop {
        if refresh {
            if events.send(UpstreamEvent::Connected).await.is_err() {
                return;
            }
            match client.get_twin().await {
                Ok(twin) => {
                    let desired = twin.get("desired").cloned().unwrap_or(Value::Null);
                    if events.send(UpstreamEvent::Desired(desired)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the $edgeAgent twin"),
            }
        }
        refresh = match incoming.recv().await {
            None => return,
            Some(Event::Connected | Event::DesiredPatch(_)) => true,
            Some(Event::Method { rid, name, payload }) => {
                let call = UpstreamEvent::Method { rid, name, payload };
                if events.send(call).await.is_err() {
                    return;
                }
                false
            }
            Some(_) => false,
        };
    }
}
