//! Direct methods (spec §3.9, §5.4): a REST call becomes an MQTT request on
//! `$iothub/methods/POST/{name}/?$rid={rid}` to the connected device, whose
//! `$iothub/methods/res/{status}/?$rid={rid}` answer completes the call. A module without a
//! connection of its own is called through its IoT Edge device's (`mqtt::route`).
//!
//! [`Methods`] owns the table of calls waiting for an answer, keyed by the callee's client id
//! and the request id, so a device can only answer requests sent to it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use spoke_core::ids::Identity;
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use tokio::sync::{Notify, oneshot};

use crate::mqtt::{MqttServer, route};

/// Largest request or response payload (128 KB).
pub const MAX_PAYLOAD: usize = 128 * 1024;
/// Most calls waiting at once across the hub (bounds memory under a flood of invokes).
pub const MAX_PENDING: usize = 10_000;

/// One invocation.
#[derive(Debug)]
pub struct MethodCall {
    /// Callee.
    pub identity: Identity,
    /// Method name.
    pub name: String,
    /// Request payload (`None` sends an empty body).
    pub payload: Option<Value>,
    /// How long to wait for the answer once sent.
    pub response_timeout: Duration,
    /// How long to wait for the device to connect and subscribe (0: it must be already).
    pub connect_timeout: Duration,
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvokeError {
    /// The device is not connected or not subscribed to methods.
    #[error("the device is not online or not subscribed to direct methods")]
    NotOnline,
    /// No answer within the response timeout.
    #[error("timed out waiting for the device to answer")]
    Timeout,
    /// Request payload over 128 KB.
    #[error("method payload is over the 128 KB limit")]
    TooLarge,
    /// Too many calls are pending.
    #[error("too many method calls are pending")]
    Busy,
}

type Key = (String, String);

/// Calls waiting for answers.
#[derive(Debug, Default)]
pub struct Methods {
    pending: Mutex<HashMap<Key, oneshot::Sender<(i32, Value)>>>,
    next_rid: AtomicU64,
    subscribed: Notify,
}

impl Methods {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Key, oneshot::Sender<(i32, Value)>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Some client subscribed to its method topic: wakes invocations waiting to connect.
    pub fn on_subscribed(&self) {
        self.subscribed.notify_waiters();
    }

    /// Invokes a method and waits for the answer `(status, payload)`.
    pub async fn invoke(
        &self,
        server: &MqttServer,
        call: MethodCall,
    ) -> Result<(i32, Value), InvokeError> {
        let body = match &call.payload {
            Some(v) => serde_json::to_vec(v).unwrap_or_default(),
            None => Vec::new(),
        };
        if body.len() > MAX_PAYLOAD {
            return Err(InvokeError::TooLarge);
        }
        let client_id = call.identity.client_id();
        let rid = format!("{:x}", self.next_rid.fetch_add(1, Ordering::Relaxed) + 1);
        let request = topic::method_request(&call.name, &rid);
        let (target, request) = self
            .wait_subscribed(server, &call.identity, request, call.connect_timeout)
            .await?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.len() >= MAX_PENDING {
                return Err(InvokeError::Busy);
            }
            pending.insert((client_id.clone(), rid.clone()), tx);
        }
        let key = (client_id.clone(), rid);
        if server
            .publish(&target, request, Bytes::from(body), QoS::AtMostOnce)
            .is_err()
        {
            self.pending().remove(&key);
            return Err(InvokeError::NotOnline);
        }
        let result = tokio::time::timeout(call.response_timeout, rx).await;
        self.pending().remove(&key);
        match result {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) | Err(_) => Err(InvokeError::Timeout),
        }
    }

    /// Waits until a connection reaching `identity` is subscribed to `request`; that
    /// connection's client id and its form of the topic.
    async fn wait_subscribed(
        &self,
        server: &MqttServer,
        identity: &Identity,
        request: String,
        connect_timeout: Duration,
    ) -> Result<(String, String), InvokeError> {
        let deadline = tokio::time::Instant::now() + connect_timeout;
        loop {
            let notified = self.subscribed.notified();
            if let Some(target) = route::target(server, identity, request.clone()) {
                return Ok(target);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(InvokeError::NotOnline);
            }
        }
    }

    /// A device answered request `rid`; `false` if no such call is waiting (late or forged).
    pub fn complete(&self, identity: &Identity, rid: &str, status: i32, payload: &[u8]) -> bool {
        let Some(tx) = self
            .pending()
            .remove(&(identity.client_id(), rid.to_owned()))
        else {
            return false;
        };
        let value = if payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
        };
        tx.send((status, value)).is_ok()
    }
}
