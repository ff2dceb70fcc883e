//! Module twins and direct methods through the edge hub, over the upstream link.
//!
//! The edge device's one connection to the hub ([`UpstreamLink`]) carries the twin and
//! method traffic of all its modules on module-scoped topics (`docs/protocol.md`): a twin
//! GET and the reported patches go up for the module; desired patches and method calls come
//! down for it and are relayed to the module's local session; its method answers go up.
//! The link receives a module's method calls while the module is connected here
//! ([`Cloud::follow`]), so the hub sees the module as connected exactly then, and answers a
//! call to it 404 (device not online) otherwise, as for any device. A call to a connected
//! module that did not subscribe to methods is answered 404 by the edge hub.
//!
//! Twins go through [`TwinStore`], as in Azure's edgeHub: a reported patch is checked and saved
//! there and acknowledged at once (also offline); the patches pending for every module are
//! sent in order whenever the link is up. A twin GET reads the hub's twin (pending patches
//! applied) and, once the link has gone down or when the hub does not answer within
//! [`CLOUD_TIMEOUT`], the last one read, also after a restart, or an empty one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use spoke_core::ids::{Identity, ModuleId};
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::EdgeServer;
use super::twins::{AcceptError, TwinStore};
use super::upstream::{LinkEvent, UpstreamLink};

/// How long a module's twin request waits for the hub.
pub const CLOUD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long pending reported patches wait before another try when the hub did not take them
/// over a working connection.
const SYNC_RETRY: Duration = Duration::from_secs(10);

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

/// Which modules' method calls the link should receive; one writer per change, read by the
/// task that makes the link follow it.
struct Following {
    wanted: Mutex<BTreeMap<ModuleId, bool>>,
    changed: Notify,
}

/// The modules' twins and methods toward the hub (see the module documentation).
pub struct Cloud {
    link: UpstreamLink,
    twins: Arc<TwinStore>,
    /// Pending reported patches to send, or the link came up.
    wake: Arc<Notify>,
    following: Arc<Following>,
    tasks: [JoinHandle<()>; 3],
}

impl Cloud {
    /// Opens the twin cache at `twins_file` and starts relaying the link's `events` to the
    /// modules' sessions on `server` and syncing pending reported patches. The `known`
    /// modules (those with a stored session) are not connected yet: the link stops following
    /// any of them it followed before a crash, which its hub session may still remember.
    pub fn start(
        link: UpstreamLink,
        events: mpsc::Receiver<LinkEvent>,
        server: EdgeServer,
        twins_file: PathBuf,
        known: impl IntoIterator<Item = ModuleId>,
    ) -> Self {
        let twins = Arc::new(TwinStore::open(twins_file));
        let wake = Arc::new(Notify::new());
        let relay = tokio::spawn(relay(
            events,
            link.clone(),
            server,
            twins.clone(),
            wake.clone(),
        ));
        let sync = tokio::spawn(sync_reported(link.clone(), twins.clone(), wake.clone()));
        let following = Arc::new(Following {
            wanted: Mutex::new(known.into_iter().map(|m| (m, false)).collect()),
            changed: Notify::new(),
        });
        let follow = tokio::spawn(follow_methods(link.clone(), following.clone()));
        Self {
            link,
            twins,
            wake,
            following,
            tasks: [relay, sync, follow],
        }
    }

    /// The module connected here (`true`) or disconnected (`false`): the link follows (see the
    /// module documentation).
    pub fn follow(&self, module: &ModuleId, connected: bool) {
        self.following
            .wanted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(module.clone(), connected);
        self.following.changed.notify_one();
    }

    /// The module's twin (`{"desired":..,"reported":..}`) with its pending reported patches
    /// applied: from the hub or, offline, the last one read (or an empty one).
    pub async fn twin(&self, module: &ModuleId) -> Value {
        if self.link.lost()
            && let Some(cached) = self.twins.cached(module)
        {
            return cached;
        }
        let read = async {
            let client = self
                .link
                .client(CLOUD_TIMEOUT)
                .await
                .ok_or_else(CloudError::timeout)?;
            tokio::time::timeout(CLOUD_TIMEOUT, client.get_module_twin(module))
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
        self.wake.notify_one();
        Ok(version)
    }

    /// Passes a module's method answer to the hub.
    pub async fn respond(&self, module: &ModuleId, rid: &str, status: i32, payload: &[u8]) {
        let payload = serde_json::from_slice(payload).unwrap_or(Value::Null);
        respond(&self.link, module, rid, status, &payload).await;
    }

    /// Stops relaying and syncing (the link is closed by its owner).
    pub fn close(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn respond(link: &UpstreamLink, module: &ModuleId, rid: &str, status: i32, payload: &Value) {
    let sent = match link.client(CLOUD_TIMEOUT).await {
        Some(client) => client
            .respond_module_method(module, rid, status, payload)
            .await
            .map_err(|e| e.to_string()),
        None => Err(CloudError::timeout().message),
    };
    if let Err(error) = sent {
        tracing::warn!(%module, rid, error, "method answer not sent to the hub");
    }
}

/// Makes the link receive the method calls of the modules [`Cloud::follow`] names, in the
/// order of the changes (the link keeps them across reconnections). Nothing is known to be
/// followed at first: every wanted state is sent once.
async fn follow_methods(link: UpstreamLink, following: Arc<Following>) {
    let Some(client) = link.first_client().await else {
        return;
    };
    let mut applied: BTreeMap<ModuleId, bool> = BTreeMap::new();
    loop {
        let wanted = following
            .wanted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (module, follow) in wanted {
            if applied.get(&module) == Some(&follow) {
                continue;
            }
            if let Err(e) = client.follow_module_methods(&module, follow).await {
                tracing::warn!(%module, error = %e, "the upstream link cannot follow the module's methods");
                return;
            }
            applied.insert(module, follow);
        }
        following.changed.notified().await;
    }
}

/// Sends the pending reported patches whenever there are some and the link is up; waits
/// [`SYNC_RETRY`] after the hub did not take one.
async fn sync_reported(link: UpstreamLink, twins: Arc<TwinStore>, wake: Arc<Notify>) {
    loop {
        if sync_pending(&link, &twins).await {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(SYNC_RETRY) => {}
            }
        } else {
            wake.notified().await;
        }
    }
}

/// Sends every module's pending reported patches, oldest first; a patch the hub refuses is
/// logged and dropped. Whether some are still waiting for the hub to take them.
async fn sync_pending(link: &UpstreamLink, twins: &TwinStore) -> bool {
    for module in twins.modules_with_pending() {
        while let Some(patch) = twins.oldest_pending(&module) {
            if !link.connected() {
                return false;
            }
            let Some(client) = link.client(Duration::ZERO).await else {
                return false;
            };
            let body = Value::Object(patch.clone());
            match tokio::time::timeout(CLOUD_TIMEOUT, client.patch_module_reported(&module, &body))
                .await
            {
                Ok(Ok(version)) => twins.sent(&module, &patch, Some(version)),
                Ok(Err(spoke_sdk::Error::TwinStatus { status, body }))
                    if (400..500).contains(&status) && status != 408 && status != 429 =>
                {
                    tracing::warn!(%module, status, body, "the hub refused reported properties the edge hub had accepted; dropped");
                    twins.sent(&module, &patch, None);
                }
                Ok(Err(e)) => {
                    tracing::debug!(%module, error = %e, "reported properties not synced yet");
                    return true;
                }
                Err(_) => return true,
            }
        }
    }
    false
}

/// Passes the hub's desired patches and method calls to the modules' sessions.
async fn relay(
    mut events: mpsc::Receiver<LinkEvent>,
    link: UpstreamLink,
    server: EdgeServer,
    twins: Arc<TwinStore>,
    wake: Arc<Notify>,
) {
    while let Some(event) = events.recv().await {
        match event {
            LinkEvent::Connected => wake.notify_one(),
            LinkEvent::DesiredPatch { module, patch } => {
                twins.desired_patch(&module, &patch);
                let identity = Identity::module(link.device().clone(), module);
                let version = patch.get("$version").and_then(Value::as_u64).unwrap_or(0);
                // At least once, as the hub sends it: a module's persistent session that is
                // offline gets it when the module reconnects.
                let sent = server.publish(
                    &identity.client_id(),
                    topic::desired_patch(version),
                    Bytes::from(patch.to_string()),
                    QoS::AtLeastOnce,
                );
                if let Err(e) = sent {
                    tracing::debug!(%identity, error = %e, "desired patch not relayed");
                }
            }
            LinkEvent::Method {
                module,
                name,
                rid,
                payload,
            } => {
                let identity = Identity::module(link.device().clone(), module.clone());
                let sent = server.publish(
                    &identity.client_id(),
                    topic::method_request(&name, &rid),
                    Bytes::from(payload.to_string()),
                    QoS::AtMostOnce,
                );
                if let Err(e) = sent {
                    tracing::debug!(%identity, method = name, error = %e, "method request not relayed");
                    let answer = json!({"message": format!("module {identity} is not connected to the edge hub or not subscribed to direct methods")});
                    // Not awaited here: the answer's PUBACK comes in over the link this
                    // loop reads from.
                    let link = link.clone();
                    tokio::spawn(async move { respond(&link, &module, &rid, 404, &answer).await });
                }
            }
        }
    }
}
