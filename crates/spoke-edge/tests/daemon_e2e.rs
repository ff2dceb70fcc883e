//! `spoke-edge` end to end: a real Spoke Hub (in-process, on its own loopback address and the
//! standard ports, which the Python SDK hard-codes), the daemon running process modules from a
//! deployment applied to the hub, and an unchanged azure-iot-device module
//! (`ModuleClient.create_from_edge_environment()`) signing through the workload API.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use spoke_core::connstr::ConnectionString;
use spoke_core::sas::service_token;
use spoke_edge::config::EdgeConfig;
use spoke_hub::HubConfig;

const HUB_IP: &str = "127.0.0.71";
const WAIT: Duration = Duration::from_mins(1);

struct Service {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Service {
    fn new(dir: &Path, port: u16) -> Self {
        let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        let cs = std::fs::read_to_string(dir.join("service.connstr")).unwrap();
        let cs = ConnectionString::parse(cs.trim()).unwrap();
        let token = service_token(
            HUB_IP,
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
            base: format!("https://{HUB_IP}:{port}"),
            token,
        }
    }

    async fn call(
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

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let response = self.call(method, path, body).await;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Value::Null;
        }
        response.json().await.unwrap()
    }

    /// Polls the `$edgeAgent` reported properties until `done` holds (the agent reports
    /// asynchronously; this is readiness polling with a deadline, not a sleep).
    async fn wait_reported(&self, device: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let twin = self
                .json(
                    reqwest::Method::GET,
                    &format!("/twins/{device}/modules/%24edgeAgent"),
                    None,
                )
                .await;
            let reported = twin["properties"]["reported"].clone();
            if done(&reported) {
                return reported;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; last reported: {reported:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A GET on the management socket; returns the raw HTTP response.
async fn management_get(socket: &Path, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: spoke-edge\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    venv.exists().then_some(venv)
}

const PY_MODULE: &str = r#"
import sys, threading
from azure.iot.device import IoTHubModuleClient, Message
client = IoTHubModuleClient.create_from_edge_environment()
client.connect()
client.patch_twin_reported_properties({"alive": True})
client.send_message_to_output(Message("hello from python"), "out1")
threading.Event().wait()
"#;

#[tokio::test]
async fn deploys_process_modules_including_an_unchanged_azure_sdk_module() {
    let Some(python) = python() else {
        eprintln!("skipped: no .venv with the Azure SDK (run scripts/setup.sh)");
        return;
    };
    let hub_dir = tempfile::tempdir().unwrap();
    let config = HubConfig {
        hostname: HUB_IP.into(),
        bind: HUB_IP.parse::<IpAddr>().unwrap(),
        ..HubConfig::new(hub_dir.path().to_owned())
    };
    let hub = spoke_hub::start(config).await.unwrap();
    let service = Service::new(hub_dir.path(), hub.https_addr().port());
    let device = service
        .json(
            reqwest::Method::PUT,
            "/devices/edge1",
            Some(json!({"deviceId": "edge1", "capabilities": {"iotEdge": true}, "authentication": {"type": "sas", "symmetricKey": {}}})),
        )
        .await;
    let key = device["authentication"]["symmetricKey"]["primaryKey"]
        .as_str()
        .unwrap();

    let edge_dir = tempfile::tempdir().unwrap();
    let script = edge_dir.path().join("module.py");
    std::fs::write(&script, PY_MODULE).unwrap();
    let config_text = format!(
        "hostname = \"edge1.local\"\ntrust_bundle_cert = \"file://{ca}\"\ndata_dir = \"{data}\"\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName={HUB_IP};DeviceId=edge1;SharedAccessKey={key}\"\n[runtime]\nkind = \"process\"\n",
        ca = hub_dir.path().join("ca.pem").display(),
        data = edge_dir.path().join("data").display(),
    );
    let config = EdgeConfig::parse(&config_text, Path::new("config.toml")).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(spoke_edge::daemon::run(config, async move {
        let _ = stop_rx.await;
    }));

    let since = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
    let process = |command: Vec<String>| {
        json!({"version": "1.0", "type": "process", "status": "running", "restartPolicy": "always",
               "settings": {"command": command}})
    };
    let manifest = json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5"}}
            },
            "modules": {
                "sleeper": process(vec!["/bin/sh".into(), "-c".into(), "echo hello-log; exec sleep 1000".into()]),
                "pymod": process(vec![python.display().to_string(), script.display().to_string()]),
            }
        }},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}, "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}
    }});
    service
        .call(
            reqwest::Method::POST,
            "/devices/edge1/applyConfigurationContent",
            Some(manifest),
        )
        .await;

    let running = |r: &Value, m: &str| r["modules"][m]["runtimeStatus"] == "running";
    let reported = service
        .wait_reported("edge1", |r| {
            r["lastDesiredStatus"]["code"] == 200 && running(r, "sleeper") && running(r, "pymod")
        })
        .await;
    assert_eq!(reported["lastDesiredVersion"], 2);

    // The Python module authenticated with a SAS token signed by the workload API: its
    // message reaches the hub from its own identity.
    let response = service
        .call(
            reqwest::Method::GET,
            &format!("/events?enqueuedTime={since}&deviceId=edge1"),
            None,
        )
        .await;
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let event = tokio::time::timeout(WAIT, async {
        while let Some(chunk) = body.next().await {
            buffer.extend_from_slice(&chunk.unwrap());
            if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                return serde_json::from_slice::<Value>(&buffer[..end]).unwrap();
            }
        }
        panic!("events stream ended");
    })
    .await
    .expect("the Python module's message");
    assert_eq!(event["event"]["module"], "pymod");
    assert_eq!(event["event"]["payload"], "hello from python");
    assert_eq!(event["event"]["annotations"]["iothub-outputname"], "out1");
    let pymod_twin = service
        .json(reqwest::Method::GET, "/twins/edge1/modules/pymod", None)
        .await;
    assert_eq!(pymod_twin["properties"]["reported"]["alive"], true);

    // Removing a module from the deployment stops it; the other keeps running untouched.
    let started = reported["modules"]["sleeper"]["lastStartTimeUtc"].clone();
    let patch = json!({"properties": {"desired": {"modules": {"pymod": null}}}});
    service
        .call(
            reqwest::Method::PATCH,
            "/twins/edge1/modules/%24edgeAgent",
            Some(patch),
        )
        .await;
    let reported = service
        .wait_reported("edge1", |r| {
            r["modules"].get("pymod").is_none() && r["lastDesiredVersion"] == 3
        })
        .await;
    assert!(running(&reported, "sleeper"));
    assert_eq!(
        reported["modules"]["sleeper"]["lastStartTimeUtc"], started,
        "sleeper was not restarted"
    );

    // The management API lists the modules (what `spoke edge list` shows).
    let listing = management_get(&edge_dir.path().join("data/mgmt.sock"), "/modules").await;
    assert!(listing.contains("\"sleeper\""), "{listing}");
    assert!(listing.contains("running"), "{listing}");

    // $edgeAgent direct methods (spec §5.2).
    let invoke = |name: &str, payload: Value| {
        let body = json!({"methodName": name, "payload": payload, "responseTimeoutInSeconds": 10});
        service.json(
            reqwest::Method::POST,
            "/twins/edge1/modules/%24edgeAgent/methods",
            Some(body),
        )
    };
    assert_eq!(invoke("ping", Value::Null).await["status"], 200);
    let logs = invoke(
        "GetModuleLogs",
        json!({"schemaVersion": "1.0", "items": [{"id": "sleep.*", "filter": {"tail": 10}}], "encoding": "none", "contentType": "text"}),
    )
    .await;
    assert_eq!(logs["status"], 200);
    assert_eq!(logs["payload"][0]["id"], "sleeper");
    assert!(
        logs["payload"][0]["payload"]
            .as_str()
            .unwrap()
            .contains("hello-log"),
        "{logs}"
    );
    let restart = invoke(
        "RestartModule",
        json!({"schemaVersion": "1.0", "id": "sleeper"}),
    )
    .await;
    assert_eq!(restart["status"], 200, "{restart}");
    let unknown = invoke("reboot", Value::Null).await;
    assert_eq!(unknown["status"], 400);

    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    hub.stop().await;
}
