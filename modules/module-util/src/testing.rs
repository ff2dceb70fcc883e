//! Test kit of the sample modules (feature `testing`): a Spoke Hub started in-process on free
//! loopback ports, with a signed REST client for it and the `/events` NDJSON stream.
//!
//! Everything here panics on failure: it only runs inside tests.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{Stream, StreamExt as _};
use reqwest::Method;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use spoke_core::connstr::ConnectionString;
use spoke_hub::{HubConfig, RunningHub};
use spoke_sdk::ClientConfig;

/// Limit on any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// The host name the hub serves under (its certificate covers the bind address).
pub const HOST: &str = "127.0.0.1";

/// A running hub, its trust anchor and owner key, and a REST client for it.
pub struct TestHub {
    _dir: tempfile::TempDir,
    hub: RunningHub,
    /// PEM of the hub's root CA.
    pub ca_pem: String,
    owner_key: String,
    http: reqwest::Client,
}

impl TestHub {
    /// Starts a hub on a fresh data directory and free ports of 127.0.0.1.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = spoke_hub::start(HubConfig {
            hostname: HOST.into(),
            bind: [127, 0, 0, 1].into(),
            mqtt_port: 0,
            https_port: 0,
            ..HubConfig::new(dir.path().to_path_buf())
        })
        .await
        .expect("hub starts");
        let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).expect("ca.pem");
        let connstr =
            std::fs::read_to_string(dir.path().join("service.connstr")).expect("service.connstr");
        let cs = ConnectionString::parse(connstr.trim()).expect("service connection string");
        let owner_key = cs.shared_access_key().expect("owner key").to_owned();
        let http = https_client(&ca_pem);
        Self {
            _dir: dir,
            hub,
            ca_pem,
            owner_key,
            http,
        }
    }

    /// Stops the hub.
    pub async fn stop(self) {
        self.hub.stop().await;
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

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600;
        let token = spoke_core::sas::service_token(HOST, "iothubowner", &self.owner_key, expiry)
            .expect("service token");
        self.http
            .request(method, format!("https://{}{path}", self.hub.https_addr()))
            .query(&[("api-version", "2021-04-12")])
            .header("authorization", token)
    }

    /// Creates an edge device.
    pub async fn create_edge_device(&self, id: &str) {
        let body = json!({"deviceId": id, "capabilities": {"iotEdge": true},
            "authentication": {"type": "sas", "symmetricKey": {}}});
        let (status, device) = self
            .rest(Method::PUT, &format!("/devices/{id}"), Some(body))
            .await;
        assert_eq!(status, 200, "{device}");
    }

    /// Creates module `module` of `device` and returns its client configuration, pointed at
    /// this hub's MQTT port.
    pub async fn create_module(&self, device: &str, module: &str) -> ClientConfig {
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
        let key = created["authentication"]["symmetricKey"]["primaryKey"]
            .as_str()
            .unwrap_or_else(|| panic!("no primary key in {created}"));
        let cs =
            format!("HostName={HOST};DeviceId={device};ModuleId={module};SharedAccessKey={key}");
        let mut config =
            ClientConfig::from_connection_string(&cs, &*self.ca_pem).expect("client config");
        config.port = self.hub.mqtt_addr().port();
        config
    }

    /// Patches the desired properties of a module twin.
    pub async fn patch_module_desired(&self, device: &str, module: &str, desired: Value) {
        let (status, twin) = self
            .rest(
                Method::PATCH,
                &format!("/twins/{device}/modules/{module}"),
                Some(json!({"properties": {"desired": desired}})),
            )
            .await;
        assert_eq!(status, 200, "{twin}");
    }

    /// The reported properties of a module twin, as the service sees them.
    pub async fn module_reported(&self, device: &str, module: &str) -> Value {
        let (status, twin) = self
            .rest(
                Method::GET,
                &format!("/twins/{device}/modules/{module}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{twin}");
        twin["properties"]["reported"].clone()
    }

    /// Invokes a direct method on a module; returns the HTTP status and the response body.
    pub async fn invoke_module_method(
        &self,
        device: &str,
        module: &str,
        name: &str,
    ) -> (u16, Value) {
        self.rest(
            Method::POST,
            &format!("/twins/{device}/modules/{module}/methods"),
            Some(json!({"methodName": name, "payload": null, "responseTimeoutInSeconds": 20})),
        )
        .await
    }

    /// The telemetry of `device`, from the first stored event on.
    pub async fn events(&self, device: &str) -> EventStream {
        let response = self
            .request(Method::GET, "/events")
            .query(&[("enqueuedTime", "0"), ("deviceId", device)])
            .send()
            .await
            .expect("events request");
        assert_eq!(response.status(), 200);
        EventStream {
            stream: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }
}

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The hub's `/events` stream: one `az iot hub monitor-events`-shaped object per line.
pub struct EventStream {
    stream: Chunks,
    buffer: Vec<u8>,
}

impl EventStream {
    /// The next event (waits at most [`WAIT`]).
    pub async fn next(&mut self) -> Value {
        let read = async {
            loop {
                if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buffer.drain(..=end).collect();
                    return serde_json::from_slice(&line).expect("event JSON");
                }
                let chunk = self
                    .stream
                    .next()
                    .await
                    .expect("events stream ended")
                    .expect("events chunk");
                self.buffer.extend_from_slice(&chunk);
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("an event in time")
    }
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
