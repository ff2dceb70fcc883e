//! The router: owns the route table and the endpoint queues, stores every routed message in
//! the queue of each of its destinations before the sender's PUBACK, and runs one delivery
//! loop (`pump.rs`) per endpoint.
//!
//! Route changes swap the table atomically: a message is routed under exactly one table, and
//! messages already queued stay queued and are delivered whatever the new routes say, so a
//! change neither drops nor duplicates messages in flight. Endpoints found on disk at start
//! get their delivery loop at once, so a backlog stored before a restart drains even before
//! the routes are known.
//!
//! Endpoint queue names: `$upstream`, and `/modules/{m}/inputs/{i}` (the `BrokeredEndpoint`
//! path).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::manifest::BrokerPolicy;
use spoke_core::message::Message;
use spoke_core::route::{MessageSource, RouteTable, Sink};
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use spoke_mqtt::order::Turn;
use spoke_mqtt::server::{DeliverError, PublishError};
use spoke_store::queue::{Clock, EndpointQueue, LOWEST_PRIORITY, QueueError, QueueStore};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::EdgeServer;
use super::envelope;
use super::metrics::{Gauges, Metrics, QueueReading};
use super::pump::{self, Delivery, Refused};
use super::upstream::UpstreamLink;

/// Deliveries in flight per endpoint.
const WINDOW: usize = 64;
/// How long a module delivery loop waits for the module before trying again anyway.
const MODULE_RETRY: Duration = Duration::from_secs(5);

/// The routes in force and the store-and-forward time to live.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// The compiled routes.
    pub table: RouteTable,
    /// `storeAndForwardConfiguration.timeToLiveSecs` (negative: forever).
    pub ttl_secs: i64,
    /// Who may connect and use which custom topics (`mqttBroker`, schema 1.2 and later);
    /// `None`: every module may connect, no custom topic is allowed (see `local.rs`).
    pub broker: Option<BrokerPolicy>,
}

fn endpoint_name(sink: &Sink) -> String {
    match sink {
        Sink::Upstream => "$upstream".to_owned(),
        Sink::ModuleInput { module, input } => format!("/modules/{module}/inputs/{input}"),
    }
}

fn sink_of(name: &str) -> Option<Sink> {
    if name == "$upstream" {
        return Some(Sink::Upstream);
    }
    let rest = name.strip_prefix("/modules/")?;
    let (module, input) = rest.split_once("/inputs/")?;
    Some(Sink::ModuleInput {
        module: ModuleId::parse(module).ok()?,
        input: input.to_owned(),
    })
}

/// See the module documentation.
pub struct Router {
    device: DeviceId,
    routing: RwLock<Arc<Routing>>,
    store: QueueStore,
    /// The store's clock: enqueue and expiry times come from it.
    clock: Clock,
    server: EdgeServer,
    upstream: UpstreamLink,
    metrics: Arc<Metrics>,
    endpoints: Mutex<HashMap<String, EndpointQueue>>,
    creating: tokio::sync::Mutex<()>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Router {
    /// A router over `store`, delivering through `server` and `upstream`; starts the
    /// delivery loops of the endpoints already on disk.
    pub async fn start(
        device: DeviceId,
        routing: Routing,
        store: QueueStore,
        clock: Clock,
        server: EdgeServer,
        upstream: UpstreamLink,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, QueueError> {
        let router = Arc::new(Self {
            device,
            routing: RwLock::new(Arc::new(routing)),
            store,
            clock,
            server,
            upstream,
            metrics,
            endpoints: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            pumps: Mutex::new(Vec::new()),
            wakers: Mutex::new(HashMap::new()),
        });
        for name in router.store.endpoints() {
            if let Some(sink) = sink_of(&name) {
                router.endpoint(&sink).await?;
            } else {
                tracing::warn!(endpoint = name, "unknown endpoint queue on disk ignored");
            }
        }
        Ok(router)
    }

    /// Puts new routes in force (see the module documentation).
    pub fn set_routing(&self, routing: Routing) {
        *self.routing.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routing);
    }

    /// The routes and policy in force.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Routes a message from `source`; resolves once it is stored for every destination.
    /// It enters the queues in `turn` (its place in its connection's order), and the turn is
    /// released as soon as it has its place in every queue.
    pub async fn route(
        &self,
        source: &MessageSource,
        message: &Message,
        mut turn: Turn,
    ) -> Result<(), PublishError> {
        self.metrics.received();
        let routing = self.routing();
        let destinations = routing.table.destinations(source, message);
        self.metrics
            .routed(destinations.iter().map(|d| d.route.as_str()));
        if destinations.is_empty() {
            return Ok(());
        }
        let payload = envelope::encode(message);
        let now = self.clock.now_ms();
        let default_ttl = routing.ttl_secs;
        let not_stored = |e: QueueError| {
            tracing::warn!(error = %e, "message not stored");
            PublishError::Unavailable(format!("message store: {e}"))
        };
        turn.wait().await;
        let mut stored = Vec::with_capacity(destinations.len());
        for d in &destinations {
            let queue = self.endpoint(&d.sink).await.map_err(not_stored)?;
            let ttl = d.ttl_secs.map_or(default_ttl, i64::from);
            let expires = (ttl >= 0).then(|| now.saturating_add(ttl.saturating_mul(1000)));
            // Routes without a priority (`DEFAULT_PRIORITY`) go after every priority set.
            let priority = d.priority.min(LOWEST_PRIORITY);
            let durable = queue
                .submit(priority, payload.clone(), now, expires)
                .await
                .map_err(not_stored)?;
            stored.push(durable);
        }
        turn.release();
        futures_util::future::try_join_all(stored)
            .await
            .map(|_| ())
            .map_err(not_stored)
    }

    /// The queue of `sink`, created with its delivery loop on first use.
    async fn endpoint(&self, sink: &Sink) -> Result<EndpointQueue, QueueError> {
        let name = endpoint_name(sink);
        if let Some(queue) = self.lookup(&name) {
            return Ok(queue);
        }
        let _creating = self.creating.lock().await;
        if let Some(queue) = self.lookup(&name) {
            return Ok(queue);
        }
        let queue = self.store.endpoint(&name).await?;
        let metrics = self.metrics.endpoint(&name);
        let pump = match sink {
            Sink::Upstream => tokio::spawn(pump::run(
                queue.clone(),
                self.upstream.sink(),
                WINDOW,
                metrics,
            )),
            Sink::ModuleInput { module, input } => {
                let client_id = format!("{}/{module}", self.device);
                let sink = ModuleInput {
                    server: self.server.clone(),
                    topic_prefix: (self.device.clone(), module.clone(), input.clone()),
                    wake: self.waker(&client_id),
                    client_id,
                    full: false,
                };
                tokio::spawn(pump::run(queue.clone(), sink, WINDOW, metrics))
            }
        };
        self.pumps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pump);
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, queue.clone());
        Ok(queue)
    }

    fn lookup(&self, name: &str) -> Option<EndpointQueue> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn waker(&self, client_id: &str) -> Arc<Notify> {
        self.wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(client_id.to_owned())
            .or_default()
            .clone()
    }

    /// A client connected or subscribed: its waiting deliveries are tried again.
    pub fn wake(&self, client_id: &str) {
        self.waker(client_id).notify_one();
    }

    /// Queue gauges, for the metrics.
    pub fn gauges(&self) -> Gauges {
        let now = self.clock.now_ms();
        let endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let queues = endpoints
            .iter()
            .map(|(name, queue)| {
                let stats = queue.stats();
                let age_ms = stats.oldest_enqueued_ms.map_or(0, |t| (now - t).max(0));
                let reading = QueueReading {
                    depth: stats.depth,
                    oldest_age_secs: age_ms as f64 / 1000.0,
                    expired: stats.expired_total,
                };
                (name.clone(), reading)
            })
            .collect();
        Gauges {
            queues,
            store_bytes: self.store.total_bytes(),
            upstream_connected: self.upstream.connected(),
            clients: self.server.connected_count(),
        }
    }

    /// Stops the delivery loops (the queues keep what was not delivered).
    pub fn stop(&self) {
        for pump in self
            .pumps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            pump.abort();
        }
    }
}

/// Delivery to a module input over the module's MQTT session (QoS 1; complete on PUBACK).
struct ModuleInput {
    server: EdgeServer,
    topic_prefix: (DeviceId, ModuleId, String),
    client_id: String,
    wake: Arc<Notify>,
    /// The session's outbound queue was full at the last refusal.
    full: bool,
}

impl pump::Sink for ModuleInput {
    async fn send(&mut self, mut message: Message) -> Result<Delivery, Refused> {
        message.system.output_name = None;
        let (device, module, input) = &self.topic_prefix;
        let topic = topic::module_input(device, module, input, &message.property_bag());
        match self.server.publish(
            &self.client_id,
            topic,
            Bytes::from(message.body),
            QoS::AtLeastOnce,
        ) {
            Ok(delivery) => Ok(Box::pin(async move { delivery.await.is_ok() })),
            Err(DeliverError::NotSubscribed | DeliverError::NotConnected) => {
                self.full = false;
                Err(Refused::NotReady)
            }
            Err(DeliverError::Full) => {
                self.full = true;
                Err(Refused::NotReady)
            }
            Err(e @ (DeliverError::InvalidTopic(_) | DeliverError::TooLarge)) => {
                Err(Refused::Undeliverable(e.to_string()))
            }
        }
    }

    async fn ready(&mut self) {
        if self.full {
            // Everything in flight completed (the loop waits for that), so there is room.
            return;
        }
        let _ = tokio::time::timeout(MODULE_RETRY, self.wake.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_round_trip() {
        let sinks = [
            Sink::Upstream,
            Sink::ModuleInput {
                module: ModuleId::parse("filter").unwrap(),
                input: "input1".into(),
            },
        ];
        for sink in sinks {
            assert_eq!(sink_of(&endpoint_name(&sink)), Some(sink));
        }
        assert_eq!(sink_of("/modules/x"), None);
        assert_eq!(sink_of("other"), None);
    }
}
