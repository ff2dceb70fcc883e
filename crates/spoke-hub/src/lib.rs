//! Spoke Hub: a self-hosted IoT hub that devices and back-ends built with the Azure IoT SDKs use
//! unchanged (ARCHITECTURE.md). [`start`] starts every component from a [`HubConfig`] and
//! returns a [`RunningHub`]; [`run`] serves until `shutdown` resolves.
//!
//! Components and their owners: identities and twins ([`registry`]), C2D queues ([`c2d`]),
//! direct-method calls ([`methods`]), the events log (`spoke_store::log`), MQTT sessions
//! (`spoke_mqtt`), and the REST API ([`rest`]), which owns no state.

pub mod c2d;
pub mod config;
pub mod datadir;
pub mod feedback;
pub mod hub;
pub mod methods;
pub mod mqtt;
pub mod policies;
pub mod registry;
pub mod rest;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use spoke_store::log::{LogConfig, LogHandle};
use spoke_store::sql::{HubStore, SqliteStore};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use config::HubConfig;

use crate::c2d::C2d;
use crate::datadir::DataDir;
use crate::feedback::Feedback;
use crate::hub::Hub;
use crate::methods::Methods;
use crate::mqtt::link::MqttLink;
use crate::mqtt::{HubHooks, MqttServer};
use crate::policies::Policy;
use crate::registry::Registry;

const POLICIES_KEY: &str = "policies";

async fn load_policies(store: &dyn HubStore) -> anyhow::Result<Vec<Policy>> {
    if let Some(doc) = store.get_setting(POLICIES_KEY).await? {
        return serde_json::from_str(&doc).context("stored shared access policies are corrupt");
    }
    let policies = policies::defaults();
    store
        .put_setting(POLICIES_KEY, &serde_json::to_string(&policies)?)
        .await?;
    Ok(policies)
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// A started hub: its bound addresses, and the handle that stops it.
pub struct RunningHub {
    mqtt_addr: SocketAddr,
    https_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mqtt: MqttServer,
    store: SqliteStore,
    events: LogHandle,
}

impl std::fmt::Debug for RunningHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningHub")
            .field("mqtt_addr", &self.mqtt_addr)
            .field("https_addr", &self.https_addr)
            .finish_non_exhaustive()
    }
}

impl RunningHub {
    /// Where MQTT over TLS listens (port 0 in the configuration picks a free one).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// Where HTTPS (REST, MQTT over WebSocket) listens.
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// Stops accepting connections, closes the live ones, the store and the events log (so
    /// that the data directory can be opened again in this process). Everything
    /// acknowledged is already durable, so nothing is lost whenever this runs.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let closed = self.mqtt.disconnect_all();
        tracing::info!(connections = closed, "closed MQTT connections");
        self.store.close().await;
        if let Err(e) = self.events.close().await {
            tracing::warn!(error = %e, "events log not closed cleanly");
        }
        tracing::info!("spoke-hub stopped");
    }
}

/// Runs a hub until `shutdown` resolves.
pub async fn run(config: HubConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let hub = start(config).await?;
    shutdown.await;
    hub.stop().await;
    Ok(())
}

/// Starts a hub: opens (or initializes) the data directory, loads every component, binds both
/// listeners and serves in background tasks. Ready when this returns.
pub async fn start(config: HubConfig) -> anyhow::Result<RunningHub> {
    tls::install_default_provider();
    let dir = DataDir::open(&config)?;
    let sqlite = SqliteStore::open(&dir.database())
        .await
        .context("cannot open the hub database")?;
    let store: Arc<dyn HubStore> = Arc::new(sqlite.clone());
    let policies = load_policies(store.as_ref()).await?;
    let owner = policies
        .iter()
        .find(|p| p.key_name == "iothubowner")
        .context("the iothubowner policy is missing")?;
    dir.write_service_connstr(&config.hostname, owner)?;
    let events = LogHandle::open(
        dir.events(),
        LogConfig {
            retention: Some(config.events_retention),
            ..LogConfig::default()
        },
    )
    .await
    .context("cannot open the events log")?;
    let link = Arc::new(MqttLink::default());
    let registry = Registry::load(store.clone(), link.clone())
        .await
        .context("cannot load the registry")?;
    let feedback = Feedback::default();
    let c2d = C2d::start(store.clone(), link.clone(), feedback.clone())
        .await
        .context("cannot load the C2D queues")?;
    let hub = Arc::new(Hub {
        config: config.clone(),
        policies,
        store,
        registry,
        events,
        methods: Methods::default(),
        c2d,
        feedback,
        link: link.clone(),
    });
    let server = MqttServer::new(
        HubHooks::new(&hub),
        spoke_mqtt::server::ServerConfig::default(),
    );
    link.bind(server.clone());

    let ca = &dir.ca.cert_pem;
    let mqtt_tls = tls::server_config(&dir.server.cert_pem, &dir.server.key_pem, ca, &[b"mqtt"])?;
    let https_tls = tls::server_config(
        &dir.server.cert_pem,
        &dir.server.key_pem,
        ca,
        &[b"http/1.1"],
    )?;
    let mqtt_listener = bind(SocketAddr::new(config.bind, config.mqtt_port), "MQTT").await?;
    let https_listener = bind(SocketAddr::new(config.bind, config.https_port), "HTTPS").await?;
    let (mqtt_addr, https_addr) = (mqtt_listener.local_addr()?, https_listener.local_addr()?);
    tracing::info!(
        hostname = config.hostname,
        mqtt = %mqtt_addr,
        https = %https_addr,
        data_dir = %config.data_dir.display(),
        "spoke-hub ready"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mqtt_task = tokio::spawn(spoke_mqtt::listener::serve_mqtt(
        mqtt_listener,
        TlsAcceptor::from(mqtt_tls),
        server.clone(),
        stop_rx.clone(),
    ));
    let https_task = tokio::spawn(mqtt::listener::serve_https(
        https_listener,
        TlsAcceptor::from(https_tls),
        rest::router(hub.clone()),
        stop_rx,
    ));
    Ok(RunningHub {
        mqtt_addr,
        https_addr,
        stop: stop_tx,
        tasks: vec![mqtt_task, https_task],
        mqtt: server,
        store: sqlite,
        events: hub.events.clone(),
    })
}
