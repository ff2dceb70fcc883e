//! The edge hub: the local MQTT endpoint of the modules, routes, durable store-and-forward,
//! and the modules' twins and methods (the edge hub issue; spec §3.2, §4).
//!
//! - `auth`: module CONNECT authentication with the modules' keys, offline too;
//! - `hooks`: the MQTT server's hooks: subscriptions, and what a PUBLISH means;
//! - `router`: routes, endpoint queues (on `spoke_store::queue`) and their delivery loops;
//! - `pump`: one endpoint's delivery loop; `envelope`: a message as stored in a queue;
//! - `upstream`: the edge device's one connection to the hub, for `$upstream` and for the
//!   modules' twins and methods;
//! - `cloud`: the modules' twin and method traffic over that link; `twins`: their twins as
//!   cached here, and reported patches accepted here, not yet synced;
//! - `local`: publish/subscribe on custom topics, authorized by the `mqttBroker` policy;
//! - `methods` and `https`: module-to-module direct methods over HTTPS (`invoke_method`);
//! - `sessions`: the modules' persistent MQTT sessions; `metrics`: Prometheus metrics;
//! - `server`: the listeners (MQTT/TLS, HTTPS, metrics) and start-up.
//!
//! Data flow: module PUBLISH → `hooks` → `router` (routes pick the endpoints; the message is
//! in every endpoint's queue, on disk, before the PUBACK) → the endpoint's delivery loop →
//! the receiving module's MQTT session, or the upstream link.

mod auth;
mod cloud;
pub mod envelope;
mod hooks;
mod https;
mod local;
mod methods;
mod metrics;
mod pump;
mod router;
mod server;
mod sessions;
mod twins;
mod upstream;

use std::sync::Arc;

use spoke_core::ids::DeviceId;

use self::cloud::Cloud;
use self::hooks::EdgeHooks;
use self::metrics::Metrics;
use self::router::Router;
pub use self::router::Routing;
pub use self::server::{EdgeHub, EdgeHubConfig, EdgeHubError, RouteControl};
pub use self::upstream::CloudConfig;
use crate::workload::KeyStore;

/// The edge hub's MQTT server.
pub type EdgeServer = spoke_mqtt::server::Server<EdgeHooks>;

/// What the hooks and the handle share.
pub struct Shared {
    device: DeviceId,
    hub_hostname: String,
    keys: Arc<dyn KeyStore>,
    server: EdgeServer,
    router: Arc<Router>,
    cloud: Cloud,
    methods: methods::LocalMethods,
    metrics: Arc<Metrics>,
}
