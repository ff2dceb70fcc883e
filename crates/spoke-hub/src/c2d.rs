//! Cloud-to-device messages: one durable queue per device (spec §3.6).
//!
//! The [`C2d`] actor owns every queue; the SQL store mirrors them so that nothing accepted is
//! lost on restart. A message is sent when its device is connected and subscribed to
//! `devices/{id}/messages/devicebound/#`, at QoS 1; the device's PUBACK completes (deletes) it.
//! A message whose connection closes before the PUBACK stays queued with its delivery count
//! raised, and goes out again at the next connection. IoT Hub's limits apply: at most
//! [`MAX_PENDING`] pending per device, a TTL (default [`DEFAULT_TTL_MS`]), at most
//! [`MAX_DELIVERY_COUNT`] deliveries; expired and exhausted messages are dropped with a
//! feedback record when the sender asked for negative acks.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use spoke_core::ids::DeviceId;
use spoke_core::message::Message;
use spoke_core::topic;
use spoke_store::sql::{C2dRow, HubStore, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::feedback::{Feedback, FeedbackRecord, FeedbackStatus};

/// Most messages pending per device.
pub const MAX_PENDING: usize = 50;
/// Default time to live: one hour.
pub const DEFAULT_TTL_MS: i64 = 3_600_000;
/// Most delivery attempts before a message is dead-lettered.
pub const MAX_DELIVERY_COUNT: i64 = 10;
/// Largest C2D body (64 KB).
pub const MAX_SIZE: usize = 64 * 1024;

/// A future resolving `true` when the device acknowledged the message.
pub type Ack = Pin<Box<dyn Future<Output = bool> + Send>>;

/// How queued messages reach devices (the MQTT server, in the hub).
pub trait Transport: Send + Sync + 'static {
    /// Sends at QoS 1 if `device` is connected and subscribed; `None` otherwise.
    fn send(&self, device: &DeviceId, topic: String, payload: Bytes) -> Option<Ack>;
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum C2dError {
    /// The device already has [`MAX_PENDING`] messages.
    #[error("device {0} already has {MAX_PENDING} pending messages")]
    QueueFull(String),
    /// The body is over [`MAX_SIZE`].
    #[error("message of {0} bytes is over the 64 KB limit")]
    TooLarge(usize),
    /// The store failed.
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// The actor is gone (shutting down).
    #[error("the C2D service is shutting down")]
    Closed,
}

/// A stored message: the property bag, the body, and when it was enqueued.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    bag: String,
    body: String,
    enqueued_ms: i64,
}

#[derive(Debug)]
struct Pending {
    seq: i64,
    message: Message,
    enqueued_ms: i64,
    expiry_ms: i64,
    delivery_count: i64,
    in_flight: bool,
}

enum Command {
    Send {
        device: DeviceId,
        message: Box<Message>,
        ttl_ms: Option<i64>,
        reply: oneshot::Sender<Result<(), C2dError>>,
    },
    Deliver(DeviceId),
    Settled {
        device: DeviceId,
        seq: i64,
        acked: bool,
    },
    Purge(DeviceId, oneshot::Sender<Result<u64, C2dError>>),
    Count(DeviceId, oneshot::Sender<u64>),
    Forget(DeviceId),
}

/// Handle to the C2D actor.
#[derive(Clone)]
pub struct C2d {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for C2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("C2d").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl C2d {
    /// Loads the queues from the store and starts the actor.
    pub async fn start(
        store: Arc<dyn HubStore>,
        transport: Arc<dyn Transport>,
        feedback: Feedback,
    ) -> Result<Self, StoreError> {
        let mut queues: HashMap<DeviceId, VecDeque<Pending>> = HashMap::new();
        let mut corrupt = Vec::new();
        for row in store.c2d_load().await? {
            if let Some((device, pending)) = decode_row(&row) {
                queues.entry(device).or_default().push_back(pending);
            } else {
                tracing::warn!(
                    seq = row.seq,
                    device = row.device_id,
                    "dropping unreadable stored C2D message"
                );
                corrupt.push(row.seq);
            }
        }
        store.c2d_delete(&corrupt).await?;
        let (tx, rx) = mpsc::channel(1024);
        let actor = Actor {
            queues,
            store,
            transport,
            feedback,
            tx: tx.clone(),
        };
        tokio::spawn(actor.run(rx));
        Ok(Self { tx })
    }

    /// Enqueues a message for `device` (which the caller has checked exists).
    pub async fn send(
        &self,
        device: DeviceId,
        message: Message,
        ttl_ms: Option<i64>,
    ) -> Result<(), C2dError> {
        if message.body.len() > MAX_SIZE {
            return Err(C2dError::TooLarge(message.body.len()));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Send {
                device,
                message: Box::new(message),
                ttl_ms,
                reply,
            })
            .await
            .map_err(|_| C2dError::Closed)?;
        rx.await.map_err(|_| C2dError::Closed)?
    }

    /// Sends what is pending for `device` (it just connected or subscribed).
    pub fn deliver(&self, device: DeviceId) {
        if self.tx.try_send(Command::Deliver(device)).is_err() {
            tracing::warn!("C2D mailbox full; delivery will happen at the next trigger");
        }
    }

    /// Removes all pending messages of a device; returns how many.
    pub async fn purge(&self, device: DeviceId) -> Result<u64, C2dError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Purge(device, reply))
            .await
            .map_err(|_| C2dError::Closed)?;
        rx.await.map_err(|_| C2dError::Closed)?
    }

    /// Number of pending messages of a device.
    pub async fn count(&self, device: DeviceId) -> u64 {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Count(device, reply)).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Drops the in-memory queue of a deleted device (the store already deleted its rows).
    pub async fn forget(&self, device: &DeviceId) {
        let _ = self.tx.send(Command::Forget(device.clone())).await;
    }
}

fn decode_row(row: &C2dRow) -> Option<(DeviceId, Pending)> {
    let device = DeviceId::parse(&row.device_id).ok()?;
    let stored: Stored = serde_json::from_slice(&row.message).ok()?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(stored.body)
        .ok()?;
    let message = Message::from_property_bag(body, &stored.bag).ok()?;
    Some((
        device,
        Pending {
            seq: row.seq,
            message,
            enqueued_ms: stored.enqueued_ms,
            expiry_ms: row.expiry_ms,
            delivery_count: row.delivery_count,
            in_flight: false,
        },
    ))
}

struct Actor {
    queues: HashMap<DeviceId, VecDeque<Pending>>,
    store: Arc<dyn HubStore>,
    transport: Arc<dyn Transport>,
    feedback: Feedback,
    tx: mpsc::Sender<Command>,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Command::Send {
                    device,
                    message,
                    ttl_ms,
                    reply,
                } => {
                    let result = self.enqueue(&device, *message, ttl_ms).await;
                    let ok = result.is_ok();
                    let _ = reply.send(result);
                    if ok {
                        self.deliver(&device).await;
                    }
                }
                Command::Deliver(device) => self.deliver(&device).await,
                Command::Settled { device, seq, acked } => self.settled(&device, seq, acked).await,
                Command::Purge(device, reply) => {
                    let _ = reply.send(self.purge(&device).await);
                }
                Command::Count(device, reply) => {
                    let _ = reply.send(self.queues.get(&device).map_or(0, |q| q.len() as u64));
                }
                Command::Forget(device) => {
                    self.queues.remove(&device);
                }
            }
        }
    }

    async fn enqueue(
        &mut self,
        device: &DeviceId,
        mut message: Message,
        ttl_ms: Option<i64>,
    ) -> Result<(), C2dError> {
        let queue = self.queues.entry(device.clone()).or_default();
        if queue.len() >= MAX_PENDING {
            return Err(C2dError::QueueFull(device.to_string()));
        }
        let now = now_ms();
        let expiry_ms = message
            .system
            .expiry_unix_ms()
            .unwrap_or_else(|| now + ttl_ms.unwrap_or(DEFAULT_TTL_MS));
        if message.system.message_id.is_none() {
            message.system.message_id = Some(uuid::Uuid::new_v4().to_string());
        }
        message.system.to = Some(format!("/devices/{device}/messages/deviceBound"));
        let stored = Stored {
            bag: message.property_bag(),
            body: base64::engine::general_purpose::STANDARD.encode(&message.body),
            enqueued_ms: now,
        };
        let bytes = serde_json::to_vec(&stored).unwrap_or_default();
        let seq = self
            .store
            .c2d_enqueue(device.as_str(), &bytes, expiry_ms)
            .await?;
        self.queues
            .entry(device.clone())
            .or_default()
            .push_back(Pending {
                seq,
                message,
                enqueued_ms: now,
                expiry_ms,
                delivery_count: 0,
                in_flight: false,
            });
        Ok(())
    }

    /// Drops expired or exhausted messages, then sends every message not yet in flight.
    async fn deliver(&mut self, device: &DeviceId) {
        let now = now_ms();
        let Some(queue) = self.queues.get_mut(device) else {
            return;
        };
        let mut dropped = Vec::new();
        queue.retain(|p| {
            let status = if p.in_flight {
                None
            } else if p.expiry_ms <= now {
                Some(FeedbackStatus::Expired)
            } else if p.delivery_count >= MAX_DELIVERY_COUNT {
                Some(FeedbackStatus::DeliveryCountExceeded)
            } else {
                None
            };
            match status {
                Some(s) => {
                    dropped.push((p.seq, s, p.message.clone(), p.enqueued_ms));
                    false
                }
                None => true,
            }
        });
        let mut sends = Vec::new();
        for p in queue.iter_mut().filter(|p| !p.in_flight) {
            let topic = topic::c2d(device, &p.message.property_bag());
            let body = Bytes::from(p.message.body.clone());
            let Some(ack) = self.transport.send(device, topic, body) else {
                break;
            };
            p.in_flight = true;
            p.delivery_count += 1;
            sends.push((p.seq, p.delivery_count, ack));
        }
        for (seq, count, ack) in sends {
            if let Err(e) = self.store.c2d_set_delivery_count(seq, count).await {
                tracing::error!(error = ?e, "cannot record a C2D delivery attempt");
            }
            let tx = self.tx.clone();
            let device = device.clone();
            tokio::spawn(async move {
                let acked = ack.await;
                let _ = tx.send(Command::Settled { device, seq, acked }).await;
            });
        }
        self.drop_messages(device, dropped).await;
    }

    async fn drop_messages(
        &mut self,
        device: &DeviceId,
        dropped: Vec<(i64, FeedbackStatus, Message, i64)>,
    ) {
        if dropped.is_empty() {
            return;
        }
        let seqs: Vec<i64> = dropped.iter().map(|d| d.0).collect();
        if let Err(e) = self.store.c2d_delete(&seqs).await {
            tracing::error!(error = ?e, "cannot delete dropped C2D messages");
        }
        for (_, status, message, enqueued_ms) in dropped {
            tracing::info!(device = %device, message_id = ?message.system.message_id, ?status, "C2D message dropped");
            self.feedback
                .record(FeedbackRecord::new(device, &message, enqueued_ms, status));
        }
    }

    async fn settled(&mut self, device: &DeviceId, seq: i64, acked: bool) {
        let Some(queue) = self.queues.get_mut(device) else {
            return;
        };
        let Some(index) = queue.iter().position(|p| p.seq == seq) else {
            return;
        };
        if acked {
            if let Some(p) = queue.remove(index) {
                if let Err(e) = self.store.c2d_delete(&[seq]).await {
                    tracing::error!(error = ?e, "cannot delete a completed C2D message");
                }
                self.feedback.record(FeedbackRecord::new(
                    device,
                    &p.message,
                    p.enqueued_ms,
                    FeedbackStatus::Success,
                ));
            }
        } else if let Some(p) = queue.get_mut(index) {
            p.in_flight = false;
        }
    }

    async fn purge(&mut self, device: &DeviceId) -> Result<u64, C2dError> {
        let Some(queue) = self.queues.remove(device) else {
            return Ok(0);
        };
        let seqs: Vec<i64> = queue.iter().map(|p| p.seq).collect();
        self.store.c2d_delete(&seqs).await?;
        for p in &queue {
            self.feedback.record(FeedbackRecord::new(
                device,
                &p.message,
                p.enqueued_ms,
                FeedbackStatus::Purged,
            ));
        }
        Ok(seqs.len() as u64)
    }
}

#[cfg(test)]
#[path = "c2d_tests.rs"]
mod tests;
