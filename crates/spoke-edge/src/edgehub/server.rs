//! Start-up and the listeners of the edge hub: MQTT over TLS on `bind:mqtt_port` and HTTPS on
//! `bind:https_port` (MQTT over WebSocket and module-to-module methods, `https.rs`), with a
//! server certificate for `hostname` (and the bind address, and `localhost`) issued by the
//! edge CA, and the Prometheus metrics over plain HTTP on `bind:metrics_port` (`GET /metrics`).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use spoke_core::ids::{Identity, ModuleId};
use spoke_core::pki::CertificateAuthority;
use spoke_mqtt::server::ServerConfig;
use spoke_store::queue::{QueueConfig, QueueError, QueueStore};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::cloud::Cloud;
use super::hooks::EdgeHooks;
use super::methods::LocalMethods;
use super::metrics::Metrics;
use super::router::{Router, Routing};
use super::sessions::FileSessionStore;
use super::upstream::{CloudConfig, UpstreamLink};
use super::{EdgeServer, Shared};
use crate::workload::KeyStore;

/// Lifetime of the edge hub's server certificate (issued again at every start).
const SERVER_CERT_VALIDITY: time::Duration = time::Duration::days(30);

/// Where and as what the edge hub runs.
#[derive(Debug, Clone)]
pub struct EdgeHubConfig {
    /// The name modules connect to (`hostname` of the config, `IOTEDGE_GATEWAYHOSTNAME`).
    pub hostname: String,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Further addresses for MQTT and HTTPS: the Docker network's gateway, where containers
    /// reach the edge hub under `hostname` (the runtime maps the name to it).
    pub also_bind: Vec<IpAddr>,
    /// MQTT/TLS port (8883; 0 picks one, for tests).
    pub mqtt_port: u16,
    /// HTTPS port (443; 0 picks one).
    pub https_port: u16,
    /// Metrics port (9600, as Azure's edgeHub; 0 picks one).
    pub metrics_port: u16,
    /// Directory of the message store.
    pub store_dir: PathBuf,
    /// File of the persistent MQTT sessions.
    pub sessions_file: PathBuf,
    /// File of the modules' cached twins and pending reported patches.
    pub twins_file: PathBuf,
    /// Store limits.
    pub queue: QueueConfig,
    /// The hub and this device.
    pub upstream: CloudConfig,
    /// The edge device's key (base64), for the upstream link.
    pub device_key: String,
}

/// Why the edge hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeHubError {
    /// The server certificate could not be issued.
    #[error("cannot issue the edge hub's server certificate: {0}")]
    Certificate(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The message store could not be opened.
    #[error("message store")]
    Store(#[from] QueueError),
}

/// Puts new routes in force (messages already queued are still delivered).
#[derive(Clone)]
pub struct RouteControl(Arc<Router>);

impl RouteControl {
    /// Replaces the routes.
    pub fn set(&self, routing: Routing) {
        self.0.set_routing(routing);
    }
}

/// A running edge hub.
pub struct EdgeHub {
    shared: Arc<Shared>,
    upstream: UpstreamLink,
    mqtt_addr: SocketAddr,
    https_addr: SocketAddr,
    metrics_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The TLS server configuration: a certificate for `names` issued by `ca`, TLS 1.2 and 1.3.
fn tls_config(
    ca: &CertificateAuthority,
    names: &[String],
) -> Result<rustls::ServerConfig, EdgeHubError> {
    let error = |e: &dyn std::fmt::Display| EdgeHubError::Certificate(e.to_string());
    let issued = ca
        .issue_server(names, OffsetDateTime::now_utc(), SERVER_CERT_VALIDITY)
        .map_err(|e| error(&e))?;
    let chain = [issued.cert_pem.as_str(), ca.cert_pem.as_str()]
        .iter()
        .map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(&e))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).map_err(|e| error(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| error(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| error(&e))?;
    Ok(config)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, EdgeHubError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EdgeHubError::Bind { addr, source })
}

impl EdgeHub {
    /// Opens the store, binds the listeners and starts serving with `routing` in force.
    pub async fn start(
        config: EdgeHubConfig,
        ca: &CertificateAuthority,
        keys: Arc<dyn KeyStore>,
        routing: Routing,
    ) -> Result<Self, EdgeHubError> {
        let mut names = vec![
            config.hostname.clone(),
            config.bind.to_string(),
            "localhost".into(),
        ];
        names.extend(config.also_bind.iter().map(ToString::to_string));
        let tls = tls_config(ca, &names)?;
        let store = QueueStore::open(&config.store_dir, config.queue.clone()).await?;
        let (upstream, link_events) =
            UpstreamLink::start(config.upstream.clone(), config.device_key.clone());
        let metrics = Arc::new(Metrics::default());
        let sessions = FileSessionStore::open(config.sessions_file.clone());
        let known_modules: Vec<ModuleId> = sessions
            .client_ids()
            .iter()
            .filter_map(|id| Identity::from_client_id(id).ok()?.module)
            .collect();
        let server = EdgeServer::new(EdgeHooks::new(sessions), ServerConfig::default());
        let device = config.upstream.device.clone();
        let router = Router::start(
            device.clone(),
            routing,
            store,
            config.queue.clock.clone(),
            server.clone(),
            upstream.clone(),
            metrics.clone(),
        )
        .await?;
        let shared = Arc::new(Shared {
            device,
            hub_hostname: config.upstream.hub_hostname.clone(),
            cloud: Cloud::start(
                upstream.clone(),
                link_events,
                server.clone(),
                config.twins_file.clone(),
                known_modules,
            ),
            methods: LocalMethods::default(),
            keys,
            server: server.clone(),
            router,
            metrics,
        });
        server.hooks().bind(&shared);
        let mut https_tls = tls.clone();
        https_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mqtt = bind(SocketAddr::new(config.bind, config.mqtt_port)).await?;
        let https = bind(SocketAddr::new(config.bind, config.https_port)).await?;
        let metrics_listener = bind(SocketAddr::new(config.bind, config.metrics_port)).await?;
        let local =
            |l: &TcpListener, port| l.local_addr().unwrap_or(SocketAddr::new(config.bind, port));
        let mqtt_addr = local(&mqtt, config.mqtt_port);
        let https_addr = local(&https, config.https_port);
        let metrics_addr = local(&metrics_listener, config.metrics_port);
        let (stop, stop_rx) = watch::channel(false);
        let (mqtt_tls, https_tls) = (
            TlsAcceptor::from(Arc::new(tls)),
            TlsAcceptor::from(Arc::new(https_tls)),
        );
        let mut tasks = vec![tokio::spawn(serve_metrics(
            metrics_listener,
            Arc::downgrade(&shared),
            stop_rx.clone(),
        ))];
        let mut listeners = vec![(mqtt, https)];
        for ip in &config.also_bind {
            let mqtt = bind(SocketAddr::new(*ip, config.mqtt_port)).await?;
            let https = bind(SocketAddr::new(*ip, config.https_port)).await?;
            listeners.push((mqtt, https));
        }
        for (mqtt, https) in listeners {
            tasks.push(tokio::spawn(spoke_mqtt::listener::serve_mqtt(
                mqtt,
                mqtt_tls.clone(),
                server.clone(),
                stop_rx.clone(),
            )));
            tasks.push(tokio::spawn(serve_https(
                https,
                https_tls.clone(),
                Arc::downgrade(&shared),
                stop_rx.clone(),
            )));
        }
        tracing::info!(mqtt = %mqtt_addr, https = %https_addr, also = ?config.also_bind, metrics = %metrics_addr, hostname = config.hostname, "edge hub ready");
        Ok(Self {
            shared,
            upstream,
            mqtt_addr,
            https_addr,
            metrics_addr,
            stop,
            tasks,
        })
    }

    /// Where MQTT/TLS is served.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// Where HTTPS is served.
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// Where the metrics are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// A handle that puts new routes in force.
    pub fn route_control(&self) -> RouteControl {
        RouteControl(self.shared.router.clone())
    }

    /// The metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.shared)
    }

    /// Stops serving: closes the listeners and connections, stops delivery; everything not
    /// delivered stays in the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.shared.server.disconnect_all();
        self.shared.router.stop();
        self.shared.cloud.close();
        self.upstream.close().await;
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Serves HTTPS connections (methods, MQTT over WebSocket) until `shutdown` is set.
async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Weak<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    spoke_mqtt::listener::accept_loop(listener, acceptor, "HTTPS", shutdown, move |tls, peer| {
        super::https::serve(tls, shared.clone(), peer)
    })
    .await;
}

fn render_metrics(shared: &Shared) -> String {
    shared.metrics.render(&shared.router.gauges())
}

/// Serves `GET /metrics` until `shutdown` is set.
async fn serve_metrics(
    listener: TcpListener,
    shared: Weak<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = stream else { continue };
        let shared = shared.clone();
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let response = match (shared.upgrade(), request.uri().path()) {
                (Some(shared), "/metrics") => Response::builder()
                    .header("content-type", "text/plain; version=0.0.4")
                    .body(Full::new(Bytes::from(render_metrics(&shared)))),
                _ => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Full::new(Bytes::from_static(b"not found\n"))),
            };
            std::future::ready(Ok::<_, Infallible>(response.unwrap_or_default()))
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
