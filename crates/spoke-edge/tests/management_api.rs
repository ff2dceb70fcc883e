//! The management API over a real Unix socket, with a test double of the daemon behind
//! [`ModuleControl`]: list, one module, logs with `tail`, followed logs, restart, status, and
//! the 404s for unknown modules and paths.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt as _};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_edge::agent::DeploymentStatus;
use spoke_edge::management::wire::{ModuleList, StatusResponse};
use spoke_edge::management::{
    ControlError, DaemonStatus, DeploymentSummary, ManagementServer, ModuleControl, ModuleInfo,
    ModuleStatus,
};
use spoke_edge::runtime::{
    DockerSettings, InstanceId, LogEntry, LogOptions, LogSource, LogStream, ModuleSettings,
    ProcessSettings,
};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// The daemon double: fixed modules, a log history per module, a channel of live lines for
/// `follow`, and a record of what was asked.
struct FakeDaemon {
    modules: Vec<ModuleInfo>,
    history: Vec<&'static str>,
    live: Mutex<Option<mpsc::Receiver<&'static str>>>,
    asked_logs: Mutex<Vec<LogOptions>>,
    restarted: Mutex<Vec<ModuleId>>,
}

fn id(name: &str) -> ModuleId {
    ModuleId::parse(name).expect("module id")
}

fn entry(line: &'static str) -> LogEntry {
    LogEntry {
        source: LogSource::Stdout,
        timestamp: OffsetDateTime::now_utc(),
        line: Bytes::from_static(line.as_bytes()),
    }
}

impl FakeDaemon {
    fn new(live: mpsc::Receiver<&'static str>) -> Self {
        let sensor = ModuleInfo {
            name: id("tempSensor"),
            instance: Some(InstanceId::new("c0ffee")),
            status: ModuleStatus::Running,
            description: None,
            exit_code: None,
            start_time: Some(datetime!(2026-05-01 10:00:00 UTC)),
            exit_time: None,
            settings: ModuleSettings::Docker(DockerSettings {
                image: "registry/temp:1.0".into(),
                create_options: json!({}),
            }),
            version: Some("1.0".into()),
        };
        let agent = ModuleInfo {
            name: id("$edgeHub"),
            instance: None,
            status: ModuleStatus::Backoff,
            description: Some("restarting in 20 s".into()),
            exit_code: Some(1),
            start_time: None,
            exit_time: Some(datetime!(2026-05-01 11:00:00 UTC)),
            settings: ModuleSettings::Process(ProcessSettings {
                command: vec!["/usr/bin/hub".into()],
                working_dir: None,
            }),
            version: None,
        };
        Self {
            modules: vec![agent, sensor],
            history: vec!["one", "two", "three"],
            live: Mutex::new(Some(live)),
            asked_logs: Mutex::new(Vec::new()),
            restarted: Mutex::new(Vec::new()),
        }
    }

    fn known(&self, name: &ModuleId) -> Result<(), ControlError> {
        if self.modules.iter().any(|m| &m.name == name) {
            Ok(())
        } else {
            Err(ControlError::NotFound { name: name.clone() })
        }
    }
}

#[async_trait]
impl ModuleControl for FakeDaemon {
    async fn list(&self) -> Result<Vec<ModuleInfo>, ControlError> {
        Ok(self.modules.clone())
    }

    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, ControlError> {
        self.known(name)?;
        self.asked_logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(options.clone());
        let skip = options
            .tail
            .map_or(0, |tail| self.history.len().saturating_sub(tail));
        let history: Vec<_> = self.history[skip..]
            .iter()
            .map(|line| Ok(entry(line)))
            .collect();
        let history = stream::iter(history);
        let live = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .filter(|_| options.follow);
        let live = stream::unfold(live, |live| async move {
            let mut rx = live?;
            let text = rx.recv().await?;
            Some((Ok(entry(text)), Some(rx)))
        });
        Ok(history.chain(live).boxed())
    }

    async fn restart(&self, name: &ModuleId) -> Result<(), ControlError> {
        self.known(name)?;
        self.restarted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name.clone());
        Ok(())
    }

    async fn status(&self) -> Result<DaemonStatus, ControlError> {
        Ok(DaemonStatus {
            device_id: DeviceId::parse("edge1").expect("device id"),
            hub_hostname: "hub.local".into(),
            upstream_connected: true,
            deployment: Some(DeploymentSummary {
                version: 7,
                status: DeploymentStatus::ok(),
            }),
            uptime: Duration::from_hours(1),
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    server: ManagementServer,
    daemon: Arc<FakeDaemon>,
    live: mpsc::Sender<&'static str>,
}

fn start() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let (live, rx) = mpsc::channel(4);
    let daemon = Arc::new(FakeDaemon::new(rx));
    let server =
        ManagementServer::bind(&dir.path().join("run/mgmt.sock"), daemon.clone()).expect("bind");
    Harness {
        _dir: dir,
        server,
        daemon,
        live,
    }
}

async fn request(socket: &Path, method: Method, target: &str) -> Response<Incoming> {
    let stream = UnixStream::connect(socket).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "mgmt.sock")
        .body(Empty::<Bytes>::new())
        .expect("request");
    sender.send_request(request).await.expect("response")
}

async fn body(response: Response<Incoming>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

async fn get_json(socket: &Path, target: &str) -> (StatusCode, Value) {
    let response = request(socket, Method::GET, target).await;
    let status = response.status();
    let body = body(response).await;
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[tokio::test]
async fn socket_is_group_only_and_removed_on_drop() {
    let harness = start();
    let path = harness.server.path().to_owned();
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    drop(harness.server);
    assert!(!path.exists());
}

#[tokio::test]
async fn lists_modules_in_azures_shape() {
    let harness = start();
    let (status, body) = get_json(harness.server.path(), "/modules?api-version=2022-08-03").await;
    assert_eq!(status, StatusCode::OK);
    let list: ModuleList = serde_json::from_value(body.clone()).expect("ModuleList");
    let names: Vec<&str> = list.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["$edgeHub", "tempSensor"]);
    assert_eq!(
        body["modules"][1]["config"]["settings"]["image"],
        "registry/temp:1.0"
    );
    assert_eq!(
        body["modules"][0]["status"]["runtimeStatus"]["status"],
        "backoff"
    );
    assert_eq!(
        body["modules"][0]["status"]["exitStatus"]["statusCode"],
        "1"
    );

    let (status, body) = get_json(harness.server.path(), "/modules/%24edgeHub").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["type"], "process");
}

#[tokio::test]
async fn unknown_modules_and_paths_are_404_with_a_message() {
    let harness = start();
    let socket = harness.server.path();
    for (method, target) in [
        (Method::GET, "/modules/ghost"),
        (Method::GET, "/modules/ghost/logs?tail=1"),
        (Method::POST, "/modules/ghost/restart"),
        (Method::GET, "/nothing/here"),
    ] {
        let response = request(socket, method, target).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{target}");
        let body: Value = serde_json::from_slice(&body(response).await).expect("JSON");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{target}: {body}"
        );
    }
    let (status, body) = get_json(socket, "/modules/tempSensor/logs?tail=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("tail")));
}

#[tokio::test]
async fn logs_with_tail_and_since() {
    let harness = start();
    let response = request(
        harness.server.path(),
        Method::GET,
        "/modules/tempSensor/logs?tail=2&since=1700000000",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(body(response).await, "two\nthree\n");
    let asked = harness
        .daemon
        .asked_logs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(
        asked,
        [LogOptions {
            tail: Some(2),
            since: OffsetDateTime::from_unix_timestamp(1_700_000_000).ok(),
            follow: false,
        }]
    );
}

#[tokio::test]
async fn followed_logs_stream_until_the_module_stops() {
    let harness = start();
    let response = request(
        harness.server.path(),
        Method::GET,
        "/modules/tempSensor/logs?tail=1&follow=true",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut next = async || {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a chunk in time");
        frame.map(|f| f.expect("frame").into_data().expect("data"))
    };
    assert_eq!(next().await.as_deref(), Some(&b"three\n"[..]));
    harness.live.send("four").await.expect("live line");
    assert_eq!(next().await.as_deref(), Some(&b"four\n"[..]));
    harness.live.send("five").await.expect("live line");
    assert_eq!(next().await.as_deref(), Some(&b"five\n"[..]));
    drop(harness.live);
    assert_eq!(next().await, None);
}

#[tokio::test]
async fn restart_is_204() {
    let harness = start();
    let response = request(
        harness.server.path(),
        Method::POST,
        "/modules/tempSensor/restart?api-version=2020-07-07",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(body(response).await.is_empty());
    let restarted = harness
        .daemon
        .restarted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(restarted, [id("tempSensor")]);

    let response = request(
        harness.server.path(),
        Method::GET,
        "/modules/tempSensor/restart",
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn status_counts_modules() {
    let harness = start();
    let (status, body) = get_json(harness.server.path(), "/status").await;
    assert_eq!(status, StatusCode::OK);
    let status: StatusResponse = serde_json::from_value(body).expect("StatusResponse");
    assert_eq!(status.device_id, "edge1");
    assert_eq!(status.hub_host_name, "hub.local");
    assert!(status.upstream_connected);
    assert_eq!(status.uptime_secs, 3600);
    let deployment = status.deployment.expect("deployment");
    assert_eq!((deployment.version, deployment.code), (7, 200));
    assert_eq!(
        (
            status.modules.total,
            status.modules.running,
            status.modules.backoff
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mgmt.sock");
    let (_live, rx) = mpsc::channel(1);
    let daemon = Arc::new(FakeDaemon::new(rx));
    // A daemon that died leaves its socket file behind.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    let second = ManagementServer::bind(&path, daemon).expect("rebind over a stale socket");
    let (status, _) = get_json(second.path(), "/modules").await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(dir.path().join("file"), "x").expect("file");
    let (_live, rx) = mpsc::channel(1);
    assert!(
        ManagementServer::bind(&dir.path().join("file"), Arc::new(FakeDaemon::new(rx))).is_err()
    );
}
