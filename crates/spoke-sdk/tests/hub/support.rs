//! A real Spoke Hub for the client tests, and a small signed REST client for it.
//!
//! Each hub runs on its own thread with its own Tokio runtime, so that stopping it drops every
//! task it spawned, open MQTT connections included, as a process exit would
//! (`RunningHub::stop` only stops the listeners). A restart reuses the data directory and the
//! ports of the first start (the listeners set `SO_REUSEADDR`, so rebinding them right away
//! works).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use reqwest::Method;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use spoke_core::connstr::ConnectionString;
use spoke_hub::HubConfig;
use spoke_sdk::{ClientConfig, Event, Events};
use tokio::sync::oneshot;

/// Limit on any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// The host name the hub serves under (its certificate covers the bind IP).
pub const HOST: &str = "127.0.0.1";

struct HubThread {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// A running hub, its trust anchor and owner key, and a REST client for it.
pub struct TestHub {
    dir: tempfile::TempDir,
    running: Option<HubThread>,
    pub mqtt_addr: SocketAddr,
    pub https_addr: SocketAddr,
    pub ca_pem: String,
    owner_key: String,
    http: reqwest::Client,
}

async fn spawn_hub(config: HubConfig) -> (HubThread, SocketAddr, SocketAddr) {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("hub runtime");
        runtime.block_on(async move {
            let hub = spoke_hub::start(config).await.expect("hub starts");
            let _ = ready_tx.send((hub.mqtt_addr(), hub.https_addr()));
            let _ = stop_rx.await;
            hub.stop().await;
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
    });
    let (mqtt, https) = ready_rx.await.expect("hub thread reports its addresses");
    (HubThread { stop, thread }, mqtt, https)
}

impl TestHub {
    /// Starts a hub on a fresh data directory and free ports.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = hub_config(dir.path().to_path_buf(), 0, 0);
        let (running, mqtt_addr, https_addr) = spawn_hub(config).await;
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).expect("ca.pem");
        let connstr =
            std::fs::read_to_string(dir.path().join("service.connstr")).expect("service.connstr");
        let cs = ConnectionString::parse(connstr.trim()).expect("service connection string");
        let owner_key = cs.shared_access_key().expect("owner key").to_owned();
        let http = https_client(&ca_pem);
        Self {
            dir,
            running: Some(running),
            mqtt_addr,
            https_addr,
            ca_pem,
            owner_key,
            http,
        }
    }

    /// Stops the hub, dropping every connection it holds.
    pub async fn stop(&mut self) {
        if let Some(HubThread { stop, thread }) = self.running.take() {
            let _ = stop.send(());
            tokio::task::spawn_blocking(move || thread.join().expect("hub thread"))
                .await
                .expect("join hub thread");
        }
    }

    /// Starts the hub again on the same data directory and ports.
    pub async fn restart(&mut self) {
        self.stop().await;
        let config = hub_config(
            self.dir.path().to_path_buf(),
            self.mqtt_addr.port(),
            self.https_addr.port(),
        );
        let (running, mqtt_addr, https_addr) = spawn_hub(config).await;
        assert_eq!((mqtt_addr, https_addr), (self.mqtt_addr, self.https_addr));
        self.running = Some(running);
    }

    /// A signed REST request; returns the status and the JSON body (`null` when empty).
    pub async fn rest(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("REST request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("REST body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// A signed request builder for `path` with the service API version.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600;
        let token = spoke_core::sas::service_token(HOST, "iothubowner", &self.owner_key, expiry)
            .expect("service token");
        self.http
            .request(method, format!("https://{}{path}", self.https_addr))
            .query(&[("api-version", "2021-04-12")])
            .header("authorization", token)
    }

    /// Creates a device with generated keys; returns its primary key.
    pub async fn create_device(&self, id: &str) -> String {
        let body = json!({"deviceId": id, "authentication": {"type": "sas", "symmetricKey": {}}});
        let (status, device) = self
            .rest(Method::PUT, &format!("/devices/{id}"), Some(body))
            .await;
        assert_eq!(status, 200, "{device}");
        primary_key(&device)
    }

    /// Creates a module with generated keys; returns its primary key.
    pub async fn create_module(&self, device: &str, module: &str) -> String {
        let body = json!({"deviceId": device, "moduleId": module,
            "authentication": {"type": "sas", "symmetricKey": {}}});
        let (status, created) = self
            .rest(
                Method::PUT,
                &format!("/devices/{device}/modules/{module}"),
                Some(body),
            )
            .await;
        assert!(matches!(status, 200 | 201), "{created}");
        primary_key(&created)
    }

    /// A client configuration from a connection string, pointed at this hub's MQTT port.
    pub fn config(&self, connection_string: &str) -> ClientConfig {
        let mut config = ClientConfig::from_connection_string(connection_string, &*self.ca_pem)
            .expect("client config");
        config.port = self.mqtt_addr.port();
        config
    }

    /// The configuration of device `id` with `key`.
    pub fn device_config(&self, id: &str, key: &str) -> ClientConfig {
        self.config(&format!(
            "HostName={HOST};DeviceId={id};SharedAccessKey={key}"
        ))
    }

    /// The first stored telemetry event of `device`, as `GET /events` streams it.
    pub async fn first_event(&self, device: &str) -> Value {
        let response = self
            .request(Method::GET, "/events")
            .query(&[("enqueuedTime", "0"), ("deviceId", device)])
            .send()
            .await
            .expect("events request");
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut line = Vec::new();
        let read = async {
            while let Some(chunk) = stream.next().await {
                line.extend_from_slice(&chunk.expect("events chunk"));
                if let Some(end) = line.iter().position(|b| *b == b'\n') {
                    line.truncate(end);
                    return;
                }
            }
            panic!("events stream ended before a line");
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("an event in time");
        serde_json::from_slice(&line).expect("event JSON")
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(HubThread { stop, thread }) = self.running.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

fn hub_config(data_dir: PathBuf, mqtt_port: u16, https_port: u16) -> HubConfig {
    HubConfig {
        hostname: HOST.into(),
        bind: [127, 0, 0, 1].into(),
        mqtt_port,
        https_port,
        ..HubConfig::new(data_dir)
    }
}

fn primary_key(identity: &Value) -> String {
    identity["authentication"]["symmetricKey"]["primaryKey"]
        .as_str()
        .unwrap_or_else(|| panic!("no primary key in {identity}"))
        .to_owned()
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("HTTPS client")
}

/// Waits for the first event `pick` accepts, skipping others.
pub async fn wait_for<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let search = async {
        loop {
            let event = events.recv().await.expect("client still open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    };
    tokio::time::timeout(WAIT, search)
        .await
        .expect("expected event in time")
}

/// Waits for [`Event::Connected`].
pub async fn connected(events: &mut Events) {
    wait_for(events, |e| matches!(e, Event::Connected).then_some(())).await;
}
