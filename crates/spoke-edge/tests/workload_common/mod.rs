//! Shared harness of the workload API tests: a daemon-side setup (edge CA, keys, caller
//! check) serving real Unix sockets in a temporary directory, and a hyper HTTP/1.1 client over
//! `UnixStream`.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::pki::CertificateAuthority;
use spoke_edge::workload::{
    CallerCheck, KeyStore, MasterKey, TrustConfig, WorkloadApi, WorkloadConfig,
};
use time::OffsetDateTime;
use tokio::net::UnixStream;

/// Module keys held by the test "daemon".
#[derive(Default)]
pub struct Keys(pub Mutex<HashMap<String, Vec<u8>>>);

impl KeyStore for Keys {
    fn module_key(&self, module: &ModuleId) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(module.as_str()).cloned()
    }
}

/// Which PIDs belong to which module, as the runtime would report them.
#[derive(Default)]
pub struct Pids(pub Mutex<HashSet<(String, u32)>>);

impl Pids {
    /// Records `pid` as a process of `module`.
    pub fn allow(&self, module: &str, pid: u32) {
        self.0.lock().unwrap().insert((module.to_owned(), pid));
    }
}

impl CallerCheck for Pids {
    fn is_module_process(&self, module: &ModuleId, pid: u32) -> bool {
        self.0
            .lock()
            .unwrap()
            .contains(&(module.as_str().to_owned(), pid))
    }
}

/// A test daemon: the service, its CA, keys and PIDs, and its socket directory.
pub struct Daemon {
    pub api: WorkloadApi,
    pub ca: CertificateAuthority,
    pub keys: Arc<Keys>,
    pub pids: Arc<Pids>,
    pub dir: tempfile::TempDir,
}

pub const HUB: &str = "hub.example.net";
pub const DEVICE: &str = "edge-1";

pub fn module(name: &str) -> ModuleId {
    ModuleId::parse(name).unwrap()
}

/// The default configuration for a test daemon in `dir`, with `extra` trust appended.
pub fn config(dir: &Path, ca: &CertificateAuthority, extra: Option<String>) -> WorkloadConfig {
    WorkloadConfig::new(
        dir.join("mnt"),
        HUB.into(),
        DeviceId::parse(DEVICE).unwrap(),
        TrustConfig {
            edge_ca: ca.clone(),
            trust_bundle: extra,
            manifest_trust_bundle: None,
        },
        MasterKey::from_bytes([0x42; 32]),
    )
}

impl Daemon {
    /// A daemon whose config `adjust` may change.
    pub fn with(adjust: impl FnOnce(&mut WorkloadConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(
            &format!("aziot-edge CA {DEVICE}"),
            now,
            time::Duration::days(90),
        )
        .unwrap();
        let mut config = config(dir.path(), &ca, None);
        adjust(&mut config);
        let keys = Arc::new(Keys::default());
        let pids = Arc::new(Pids::default());
        let api = WorkloadApi::new(&config, keys.clone(), pids.clone());
        Self {
            api,
            ca,
            keys,
            pids,
            dir,
        }
    }

    /// A daemon with the default config.
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// Gives `name` a key and makes this test process one of its processes.
    pub fn add_module(&self, name: &str, key: &[u8]) {
        self.keys
            .0
            .lock()
            .unwrap()
            .insert(name.to_owned(), key.to_vec());
        self.pids.allow(name, std::process::id());
    }
}

/// One HTTP response: status, headers and body parsed as JSON.
pub struct Response {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub json: serde_json::Value,
}

/// Sends one request over the Unix socket `socket`. `body` is sent as is, with no
/// `Content-Type` (like the Python SDK) unless `content_type` is set.
pub async fn send(
    socket: &Path,
    method: Method,
    target: &str,
    body: Option<&str>,
    content_type: Option<&str>,
) -> Response {
    let stream = UnixStream::connect(socket).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "localhost")
        .header("user-agent", "azure-iot-device-python%2F2.14.0");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let body = Full::new(Bytes::from(body.unwrap_or("").to_owned()));
    let response = sender
        .send_request(request.body(body).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    driver.await.unwrap().unwrap();
    Response {
        status: parts.status,
        headers: parts.headers,
        json: serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("non-JSON reply {bytes:?}: {e}")),
    }
}

/// `POST target` with a JSON body and no Content-Type.
pub async fn post(socket: &Path, target: &str, body: &serde_json::Value) -> Response {
    send(socket, Method::POST, target, Some(&body.to_string()), None).await
}

/// `GET target`.
pub async fn get(socket: &Path, target: &str) -> Response {
    send(socket, Method::GET, target, None, None).await
}
