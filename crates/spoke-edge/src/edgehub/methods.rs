//! Module-to-module direct methods, as the Azure SDK's `invoke_method` calls them through
//! the edge hub (HTTPS `POST /twins/{d}/modules/{m}/methods`, see `https.rs`): the request
//! goes to the target module's MQTT session on `$iothub/methods/POST/{name}/?$rid={rid}` and
//! its answer on `$iothub/methods/res/{status}/?$rid={rid}` comes back here (rather than to
//! the hub) when the request id is one of ours.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use tokio::sync::oneshot;

use super::EdgeServer;

/// Prefix of the request ids of local calls (the hub's never start with it).
const RID_PREFIX: &str = "spoke-local-";

/// A failed call: the HTTP status and message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// 404 when the target is not connected or not subscribed to methods, 504 on timeout.
    pub status: u16,
    /// What happened.
    pub message: String,
}

type Pending = HashMap<(String, String), oneshot::Sender<(i32, Bytes)>>;

/// The calls waiting for their answer.
#[derive(Debug, Default)]
pub struct LocalMethods {
    next: AtomicU64,
    pending: Mutex<Pending>,
}

/// Removes a pending call when the caller stops waiting.
struct Waiting<'a> {
    methods: &'a LocalMethods,
    key: (String, String),
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.methods.lock().remove(&self.key);
    }
}

impl LocalMethods {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls method `name` of the module connected as `client_id` with `payload`; the
    /// module's status and payload (JSON, `null` when it sent none or not JSON).
    pub async fn invoke(
        &self,
        server: &EdgeServer,
        client_id: &str,
        name: &str,
        payload: &Value,
        timeout: Duration,
    ) -> Result<(i32, Value), CallError> {
        let rid = format!("{RID_PREFIX}{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        let key = (client_id.to_owned(), rid.clone());
        self.lock().insert(key.clone(), tx);
        let _waiting = Waiting { methods: self, key };
        let body = Bytes::from(payload.to_string());
        if let Err(e) = server.publish(
            client_id,
            topic::method_request(name, &rid),
            body,
            QoS::AtMostOnce,
        ) {
            return Err(CallError {
                status: 404,
                message: format!(
                    "module {client_id} is not connected or not listening for methods ({e})"
                ),
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok((status, answer))) => Ok((
                status,
                serde_json::from_slice(&answer).unwrap_or(Value::Null),
            )),
            _ => Err(CallError {
                status: 504,
                message: format!(
                    "module {client_id} did not answer method {name:?} in {} s",
                    timeout.as_secs()
                ),
            }),
        }
    }

    /// Takes a method answer from `client_id`; `false` when `rid` is not a local call's (the
    /// answer is then the hub's).
    pub fn complete(&self, client_id: &str, rid: &str, status: i32, payload: Bytes) -> bool {
        if !rid.starts_with(RID_PREFIX) {
            return false;
        }
        if let Some(tx) = self.lock().remove(&(client_id.to_owned(), rid.to_owned())) {
            let _ = tx.send((status, payload));
        } else {
            tracing::debug!(
                client_id,
                rid,
                "late or unknown local method answer dropped"
            );
        }
        true
    }
}
