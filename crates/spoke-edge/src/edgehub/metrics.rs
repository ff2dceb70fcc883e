//! The edge hub's metrics, named in one place and rendered in the Prometheus text format
//! (served on the metrics port, see `server.rs`).
//!
//! Counters live here; gauges (queue depth, age, store size, upstream state) are read from
//! their owners when rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Messages received from clients.
const RECEIVED: &str = "spoke_edgehub_messages_received_total";
/// Messages routed, per route.
const ROUTED: &str = "spoke_edgehub_messages_routed_total";
/// Messages matched by no route.
const UNROUTED: &str = "spoke_edgehub_messages_unrouted_total";
/// Messages delivered, per endpoint.
const DELIVERED: &str = "spoke_edgehub_messages_delivered_total";
/// Messages dropped as undeliverable, per endpoint.
const DROPPED: &str = "spoke_edgehub_messages_dropped_total";
/// Messages expired in the queue (time to live), per endpoint.
const EXPIRED: &str = "spoke_edgehub_messages_expired_total";
/// Messages waiting, per endpoint.
const QUEUE_DEPTH: &str = "spoke_edgehub_queue_depth";
/// Age of the oldest waiting message, per endpoint.
const QUEUE_AGE: &str = "spoke_edgehub_queue_oldest_age_seconds";
/// Bytes of the store on disk.
const STORE_BYTES: &str = "spoke_edgehub_store_bytes";
/// 1 when the upstream link is connected.
const UPSTREAM: &str = "spoke_edgehub_upstream_connected";
/// Messages published on custom topics, and their deliveries.
const LOCAL: &str = "spoke_edgehub_local_messages_total";
const LOCAL_DELIVERIES: &str = "spoke_edgehub_local_deliveries_total";
/// Clients connected to the edge hub.
const CLIENTS: &str = "spoke_edgehub_connected_clients";

#[derive(Debug)]
struct EndpointCounters {
    name: String,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

/// The counters of one endpoint, for its delivery loop.
#[derive(Debug, Clone)]
pub struct EndpointMetrics(Arc<EndpointCounters>);

impl EndpointMetrics {
    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// `n` messages were delivered.
    pub fn delivered(&self, n: usize) {
        self.0.delivered.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A message was dropped as undeliverable.
    pub fn dropped(&self) {
        self.0.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A gauge reading of one endpoint queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueReading {
    /// Messages waiting.
    pub depth: u64,
    /// Age of the oldest, in seconds.
    pub oldest_age_secs: f64,
    /// Messages expired so far.
    pub expired: u64,
}

/// The gauges read when rendering.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Per endpoint.
    pub queues: BTreeMap<String, QueueReading>,
    /// Store size.
    pub store_bytes: u64,
    /// Upstream link state.
    pub upstream_connected: bool,
    /// Connected clients.
    pub clients: usize,
}

/// All counters of the edge hub.
#[derive(Debug, Default)]
pub struct Metrics {
    received: AtomicU64,
    unrouted: AtomicU64,
    local: AtomicU64,
    local_deliveries: AtomicU64,
    routed: Mutex<BTreeMap<String, u64>>,
    endpoints: Mutex<BTreeMap<String, EndpointMetrics>>,
}

impl Metrics {
    /// A message arrived from a client.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// A message matched `routes` (none: unrouted).
    pub fn routed<'a>(&self, routes: impl IntoIterator<Item = &'a str>) {
        let mut counts = self.routed.lock().unwrap_or_else(PoisonError::into_inner);
        let mut any = false;
        for route in routes {
            any = true;
            *counts.entry(route.to_owned()).or_default() += 1;
        }
        if !any {
            self.unrouted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A message on a custom topic went to `receivers` sessions.
    pub fn local(&self, receivers: usize) {
        self.local.fetch_add(1, Ordering::Relaxed);
        self.local_deliveries
            .fetch_add(receivers as u64, Ordering::Relaxed);
    }

    /// The counters of endpoint `name`.
    pub fn endpoint(&self, name: &str) -> EndpointMetrics {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_insert_with(|| {
                EndpointMetrics(Arc::new(EndpointCounters {
                    name: name.to_owned(),
                    delivered: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                }))
            })
            .clone()
    }

    /// The Prometheus text exposition of the counters and `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let label = |key: &str, value: &str| format!("{{{key}=\"{}\"}}", escape(value));
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        metric(
            RECEIVED,
            "counter",
            "Messages received from clients.",
            vec![(String::new(), load(&self.received))],
        );
        let routed = self.routed.lock().unwrap_or_else(PoisonError::into_inner);
        metric(
            ROUTED,
            "counter",
            "Messages routed, per route.",
            routed
                .iter()
                .map(|(r, n)| (label("route", r), n.to_string()))
                .collect(),
        );
        drop(routed);
        metric(
            UNROUTED,
            "counter",
            "Messages that matched no route.",
            vec![(String::new(), load(&self.unrouted))],
        );
        metric(
            LOCAL,
            "counter",
            "Messages published on custom topics.",
            vec![(String::new(), load(&self.local))],
        );
        metric(
            LOCAL_DELIVERIES,
            "counter",
            "Deliveries of messages on custom topics to subscribed sessions.",
            vec![(String::new(), load(&self.local_deliveries))],
        );
        let endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        metric(
            DELIVERED,
            "counter",
            "Messages delivered, per endpoint.",
            endpoints
                .values()
                .map(|e| (label("endpoint", &e.0.name), load(&e.0.delivered)))
                .collect(),
        );
        metric(
            DROPPED,
            "counter",
            "Undeliverable messages dropped, per endpoint.",
            endpoints
                .values()
                .map(|e| (label("endpoint", &e.0.name), load(&e.0.dropped)))
                .collect(),
        );
        drop(endpoints);
        let queues = &gauges.queues;
        metric(
            EXPIRED,
            "counter",
            "Messages expired in the queue, per endpoint.",
            queues
                .iter()
                .map(|(n, q)| (label("endpoint", n), q.expired.to_string()))
                .collect(),
        );
        metric(
            QUEUE_DEPTH,
            "gauge",
            "Messages waiting, per endpoint.",
            queues
                .iter()
                .map(|(n, q)| (label("endpoint", n), q.depth.to_string()))
                .collect(),
        );
        metric(
            QUEUE_AGE,
            "gauge",
            "Age of the oldest waiting message, per endpoint.",
            queues
                .iter()
                .map(|(n, q)| (label("endpoint", n), format!("{:.3}", q.oldest_age_secs)))
                .collect(),
        );
        metric(
            STORE_BYTES,
            "gauge",
            "Bytes of the message store on disk.",
            vec![(String::new(), gauges.store_bytes.to_string())],
        );
        metric(
            UPSTREAM,
            "gauge",
            "1 when the upstream link is connected.",
            vec![(
                String::new(),
                u8::from(gauges.upstream_connected).to_string(),
            )],
        );
        metric(
            CLIENTS,
            "gauge",
            "Clients connected to the edge hub.",
            vec![(String::new(), gauges.clients.to_string())],
        );
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_in_prometheus_text() {
        let metrics = Metrics::default();
        metrics.received();
        metrics.routed(["r\"1"]);
        metrics.routed([]);
        let up = metrics.endpoint("$upstream");
        up.delivered(3);
        up.dropped();
        let mut gauges = Gauges {
            upstream_connected: true,
            clients: 2,
            store_bytes: 4096,
            ..Gauges::default()
        };
        gauges.queues.insert(
            "$upstream".into(),
            QueueReading {
                depth: 5,
                oldest_age_secs: 1.5,
                expired: 7,
            },
        );
        let text = metrics.render(&gauges);
        for line in [
            "spoke_edgehub_messages_received_total 1",
            "spoke_edgehub_messages_routed_total{route=\"r\\\"1\"} 1",
            "spoke_edgehub_messages_unrouted_total 1",
            "spoke_edgehub_messages_delivered_total{endpoint=\"$upstream\"} 3",
            "spoke_edgehub_messages_dropped_total{endpoint=\"$upstream\"} 1",
            "spoke_edgehub_messages_expired_total{endpoint=\"$upstream\"} 7",
            "spoke_edgehub_queue_depth{endpoint=\"$upstream\"} 5",
            "spoke_edgehub_queue_oldest_age_seconds{endpoint=\"$upstream\"} 1.500",
            "spoke_edgehub_store_bytes 4096",
            "spoke_edgehub_upstream_connected 1",
            "spoke_edgehub_connected_clients 2",
            "# TYPE spoke_edgehub_queue_depth gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
