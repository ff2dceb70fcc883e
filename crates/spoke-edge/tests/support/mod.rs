//! Shared support of the `spoke-edge` end-to-end tests: a service client of the in-process hub
//! (REST with an owner token), readiness polling with deadlines, the hub's event stream, the
//! management socket, and the Python venv with the Azure SDK.

#![allow(dead_code)] // each test file uses a part

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::Value;
use spoke_core::connstr::ConnectionString;
use spoke_core::sas::service_token;
use spoke_edge::config::EdgeConfig;
use spoke_hub::{HubConfig, RunningHub};

/// Longest wait for anything asynchronous.
pub const WAIT: Duration = Duration::from_mins(1);

pub struct Service {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Service {
    pub fn new(dir: &Path, host: &str, port: u16) -> Self {
        let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        let cs = std::fs::read_to_string(dir.join("service.connstr")).unwrap();
        let cs = ConnectionString::parse(cs.trim()).unwrap();
        let token = service_token(
            host,
            "iothubowner",
            cs.shared_access_key().unwrap(),
            u64::MAX / 4,
        )
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
            let cert: rustls_pki_types::CertificateDer<'static> = cert.unwrap();
            roots.add(cert).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        Self {
            http,
            base: format!("https://{host}:{port}"),
            token,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut request = self
            .http
            .request(
                method,
                format!("{}{path}{sep}api-version=2021-04-12", self.base),
            )
            .header("authorization", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response
    }

    pub async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let response = self.call(method, path, body).await;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Value::Null;
        }
        response.json().await.unwrap()
    }

    /// Polls the `$edgeAgent` reported properties until `done` holds (the agent reports
    /// asynchronously; this is readiness polling with a deadline, not a sleep).
    pub async fn wait_reported(&self, device: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_twin(&format!("/twins/{device}/modules/%24edgeAgent"), done)
            .await
    }

    /// Polls the reported properties of the twin at `path` until `done` holds.
    pub async fn wait_twin(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let twin = self
            .wait_json(path, |twin| done(&twin["properties"]["reported"]))
            .await;
        twin["properties"]["reported"].clone()
    }

    /// Polls the JSON at `path` (a GET) until `done` holds.
    pub async fn wait_json(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let doc = self.json(reqwest::Method::GET, path, None).await;
            if done(&doc) {
                return doc;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; last: {doc:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Service {
    /// Removes every module of edge device `device`'s deployment and waits until the agent
    /// reports none (so that no module process outlives the test).
    pub async fn remove_modules(&self, device: &str) {
        let path = format!("/twins/{device}/modules/%24edgeAgent");
        let twin = self.json(reqwest::Method::GET, &path, None).await;
        let modules: serde_json::Map<String, Value> = twin["properties"]["desired"]["modules"]
            .as_object()
            .map(|m| m.keys().map(|k| (k.clone(), Value::Null)).collect())
            .unwrap_or_default();
        let removal = serde_json::json!({"properties": {"desired": {"modules": modules}}});
        self.call(reqwest::Method::PATCH, &path, Some(removal))
            .await;
        self.wait_reported(device, |r| {
            r["modules"]
                .as_object()
                .is_none_or(serde_json::Map::is_empty)
        })
        .await;
    }

    /// Registers IoT Edge device `id`; its primary key.
    pub async fn edge_device(&self, id: &str) -> String {
        let body = serde_json::json!({"deviceId": id, "capabilities": {"iotEdge": true}, "authentication": {"type": "sas", "symmetricKey": {}}});
        let device = self
            .json(reqwest::Method::PUT, &format!("/devices/{id}"), Some(body))
            .await;
        device["authentication"]["symmetricKey"]["primaryKey"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Applies a deployment to edge device `device`.
    pub async fn deploy(&self, device: &str, manifest: Value) {
        let path = format!("/devices/{device}/applyConfigurationContent");
        self.call(reqwest::Method::POST, &path, Some(manifest))
            .await;
    }

    /// Telemetry events of `device` enqueued from `since_ms` on, read from the hub's event
    /// stream until `enough` holds for what was read.
    pub async fn events_until(
        &self,
        device: &str,
        since_ms: i64,
        enough: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let path = format!("/events?enqueuedTime={since_ms}&deviceId={device}");
        let mut body = self
            .call(reqwest::Method::GET, &path, None)
            .await
            .bytes_stream();
        let mut buffer = Vec::new();
        let mut events = Vec::new();
        let read = async {
            while !enough(&events) {
                let chunk = body.next().await.expect("events stream ended").unwrap();
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    events.push(serde_json::from_slice::<Value>(&line).unwrap());
                }
            }
        };
        let timed_out = tokio::time::timeout(WAIT, read).await.is_err();
        assert!(!timed_out, "timed out after {} events", events.len());
        events
    }

    /// The next `n` telemetry events of `device` enqueued from `since_ms` on, from the hub's
    /// event stream (`GET /events`), each as `monitor-events --output json` prints it.
    pub async fn events(&self, device: &str, since_ms: i64, n: usize) -> Vec<Value> {
        let mut events = self.events_until(device, since_ms, |e| e.len() >= n).await;
        events.truncate(n);
        events
    }
}

/// An `applyConfigurationContent` body: `modules` under the standard system modules, and the
/// `$edgeHub` `routes` with a 2-hour store-and-forward time to live.
pub fn deployment(modules: &Value, routes: &Value) -> Value {
    serde_json::json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5"}}
            },
            "modules": modules
        }},
        "$edgeHub": {"properties.desired": {
            "schemaVersion": "1.1",
            "routes": routes,
            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}
        }}
    }})
}

/// A process module running `command`, always restarted.
pub fn process_module(command: &[String]) -> Value {
    serde_json::json!({"version": "1.0", "type": "process", "status": "running", "restartPolicy": "always",
                       "settings": {"command": command}})
}

/// Waits until `path` exists (readiness polling with a deadline: the file is written by a
/// module process, which cannot signal the test otherwise).
pub async fn wait_file(path: &Path) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An in-process hub on its own loopback address and the standard ports (which the Python SDK
/// hard-codes), with a service client.
pub struct TestHub {
    /// The hub, while running.
    pub hub: Option<RunningHub>,
    /// Its data directory.
    pub dir: tempfile::TempDir,
    /// Its address.
    pub ip: &'static str,
    /// Owner REST client.
    pub service: Service,
}

impl TestHub {
    /// Starts a hub on `ip` with a fresh data directory.
    pub async fn start(ip: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hub = start_hub(dir.path(), ip).await;
        let service = Service::new(dir.path(), ip, hub.https_addr().port());
        Self {
            hub: Some(hub),
            dir,
            ip,
            service,
        }
    }

    /// Stops the hub (its data stays).
    pub async fn stop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop().await;
        }
    }

    /// Starts the hub again on the same data directory and address.
    pub async fn start_again(&mut self) {
        assert!(self.hub.is_none(), "the hub is running");
        self.hub = Some(start_hub(self.dir.path(), self.ip).await);
    }

    /// The `spoke-edge` configuration file for device `id` with `key`, its edge hub on
    /// `edge_ip`, process modules, state in `data_dir`, plus `extra` TOML.
    pub fn edge_config_text(
        &self,
        id: &str,
        key: &str,
        edge_ip: &str,
        data_dir: &Path,
        extra: &str,
    ) -> String {
        format!(
            "hostname = \"{edge_ip}\"\nbind = \"{edge_ip}\"\ntrust_bundle_cert = \"file://{ca}\"\ndata_dir = \"{data}\"\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName={hub};DeviceId={id};SharedAccessKey={key}\"\n[runtime]\nkind = \"process\"\n{extra}",
            ca = self.dir.path().join("ca.pem").display(),
            data = data_dir.display(),
            hub = self.ip,
        )
    }

    /// [`TestHub::edge_config_text`], parsed.
    pub fn edge_config(
        &self,
        id: &str,
        key: &str,
        edge_ip: &str,
        data_dir: &Path,
        extra: &str,
    ) -> EdgeConfig {
        let text = self.edge_config_text(id, key, edge_ip, data_dir, extra);
        EdgeConfig::parse(&text, Path::new("config.toml")).unwrap()
    }
}

async fn start_hub(dir: &Path, ip: &str) -> RunningHub {
    let config = HubConfig {
        hostname: ip.into(),
        bind: ip.parse::<IpAddr>().unwrap(),
        ..HubConfig::new(dir.to_owned())
    };
    spoke_hub::start(config).await.unwrap()
}

/// A GET on the management socket; returns the raw HTTP response.
pub async fn management_get(socket: &Path, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: spoke-edge\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The Python of the repository's venv (with the Azure SDK), if `scripts/setup.sh` made it.
pub fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    venv.exists().then_some(venv)
}
