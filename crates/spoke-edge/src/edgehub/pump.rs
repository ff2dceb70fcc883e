//! The delivery loop of one endpoint queue: reads entries in order, hands them to the
//! endpoint's [`Sink`] with up to `window` deliveries in flight, and acknowledges them to the
//! queue in order as they complete.
//!
//! When the sink cannot take messages (the module is not connected or subscribed, the
//! upstream link is down) or a delivery fails, the loop stops sending, lets what is in flight
//! finish, waits for the sink ([`Sink::ready`]), and rewinds the queue to the first entry not
//! acknowledged: delivery is at least once, in order. An entry that can never be delivered
//! (damaged, too large) is logged, counted and acknowledged so that it does not block the
//! queue.

use std::future::Future;
use std::pin::Pin;

use futures_util::FutureExt as _;
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use spoke_core::message::Message;
use spoke_store::queue::{EndpointQueue, Entry, EntryId};

use super::envelope;
use super::metrics::EndpointMetrics;

/// A delivery in flight: resolves `true` once the receiver has the message.
pub type Delivery = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Why a sink did not take a message.
#[derive(Debug)]
pub enum Refused {
    /// Not now: retry once [`Sink::ready`] resolves.
    NotReady,
    /// Never: drop the message (with this reason).
    Undeliverable(String),
}

/// Where an endpoint's messages go.
pub trait Sink: Send + 'static {
    /// Starts delivering `message`: resolves once the message is handed on (so that messages
    /// go out in the order of the calls), with its delivery.
    fn send(&mut self, message: Message) -> impl Future<Output = Result<Delivery, Refused>> + Send;
    /// Resolves when sending is worth trying again.
    fn ready(&mut self) -> impl Future<Output = ()> + Send;
}

type InFlight = FuturesOrdered<Pin<Box<dyn Future<Output = (EntryId, bool)> + Send>>>;

/// Runs the loop until the queue fails (logged) or the task is aborted.
///
/// The queue's reads are never raced against anything (they are not cancel-safe): with
/// nothing in flight the loop waits for entries; with deliveries in flight it takes only what
/// is there and otherwise waits for the oldest delivery.
pub async fn run(
    queue: EndpointQueue,
    mut sink: impl Sink,
    window: usize,
    metrics: EndpointMetrics,
) {
    let mut inflight = InFlight::new();
    let mut blocked = false;
    loop {
        if blocked && inflight.is_empty() {
            sink.ready().await;
            queue.rewind();
            blocked = false;
        }
        let mut fetched = 0;
        if !blocked && inflight.len() < window {
            let room = window - inflight.len();
            let entries = if inflight.is_empty() {
                queue.next_batch(room).await
            } else {
                queue.try_next_batch(room).await
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(endpoint = metrics.name(), error = %e, "queue read failed; delivery stopped");
                    return;
                }
            };
            fetched = entries.len();
            for entry in &entries {
                if blocked {
                    break;
                }
                blocked = send(&mut sink, &mut inflight, entry, &metrics).await;
            }
        }
        let mut done = Vec::new();
        if (fetched == 0 || blocked || inflight.len() >= window)
            && let Some(first) = inflight.next().await
        {
            done.push(first);
        }
        while let Some(Some(next)) = inflight.next().now_or_never() {
            done.push(next);
        }
        let mut acked = Vec::with_capacity(done.len());
        for (id, ok) in done {
            if ok && !blocked {
                acked.push(id);
            } else {
                blocked = true;
            }
        }
        if !acked.is_empty() {
            metrics.delivered(acked.len());
            if let Err(e) = queue.ack(&acked).await {
                tracing::error!(endpoint = metrics.name(), error = %e, "queue acknowledgement failed; delivery stopped");
                return;
            }
        }
    }
}

/// Hands one entry to the sink; returns whether the sink is blocked.
async fn send(
    sink: &mut impl Sink,
    inflight: &mut InFlight,
    entry: &Entry,
    metrics: &EndpointMetrics,
) -> bool {
    let id = entry.id;
    let message = match envelope::decode(&entry.payload) {
        Ok(message) => message,
        Err(e) => {
            tracing::error!(endpoint = metrics.name(), error = %e, "damaged queue entry dropped");
            metrics.dropped();
            inflight.push_back(Box::pin(async move { (id, true) }));
            return false;
        }
    };
    match sink.send(message).await {
        Ok(delivery) => {
            inflight.push_back(Box::pin(delivery.map(move |ok| (id, ok))));
            false
        }
        Err(Refused::NotReady) => true,
        Err(Refused::Undeliverable(reason)) => {
            tracing::warn!(
                endpoint = metrics.name(),
                reason,
                "undeliverable message dropped"
            );
            metrics.dropped();
            inflight.push_back(Box::pin(async move { (id, true) }));
            false
        }
    }
}
