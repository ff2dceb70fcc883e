//! The workload API against the real azure-iot-device Python SDK (azure-iot-edge-contracts.md
//! §2.3): `IoTEdgeHsm` signs and fetches the trust bundle, and
//! `ModuleClient.create_from_edge_environment()` builds its SAS token through our socket.
//! Skipped (with a note) when the repository's `.venv` is absent.

mod workload_common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use spoke_core::sas::SasToken;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;
use workload_common::{DEVICE, Daemon, HUB, module};

/// The script runs as a process that is not yet one of `$edgeHub`'s: its first call must be
/// refused. Then it waits for a line on stdin (sent once its PID is registered) and does the
/// real work, printing one JSON line.
const SCRIPT: &str = r#"
import json, os, sys
from azure.iot.device.iothub import edge_hsm
import azure.iot.device.iothub.abstract_clients as clients
from azure.iot.device import IoTHubModuleClient

hsm = edge_hsm.IoTEdgeHsm(
    module_id=os.environ["IOTEDGE_MODULEID"],
    generation_id=os.environ["IOTEDGE_MODULEGENERATIONID"],
    workload_uri=os.environ["IOTEDGE_WORKLOADURI"],
    api_version=os.environ["IOTEDGE_APIVERSION"],
)
try:
    hsm.get_certificate()
    print("allowed", flush=True)
except edge_hsm.IoTEdgeError as e:
    print("denied " + str(e.__cause__.response.status_code), flush=True)
sys.stdin.readline()

captured = {}
Original = clients.pipeline.IoTHubPipelineConfig
class Capture(Original):
    def __init__(self, *args, **kwargs):
        captured["token"] = str(kwargs["sastoken"])
        captured["server_verification_cert"] = kwargs["server_verification_cert"]
        super().__init__(*args, **kwargs)
clients.pipeline.IoTHubPipelineConfig = Capture
client = IoTHubModuleClient.create_from_edge_environment()

print(json.dumps({
    "trust_bundle": hsm.get_certificate(),
    "digest": hsm.sign("hello workload"),
    **captured,
}), flush=True)
"#;

fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    python.exists().then_some(python)
}

#[tokio::test]
async fn real_python_sdk_signs_and_trusts_through_the_workload_socket() {
    let Some(python) = python() else {
        eprintln!("skipped: no .venv with azure-iot-device at the repository root");
        return;
    };
    let key = b"edge hub primary key";
    let daemon = Daemon::new();
    daemon
        .keys
        .0
        .lock()
        .unwrap()
        .insert("$edgeHub".into(), key.to_vec());
    let socket = daemon.api.bind(module("$edgeHub")).unwrap();

    let mut child = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .env("IOTEDGE_IOTHUBHOSTNAME", HUB)
        .env("IOTEDGE_DEVICEID", DEVICE)
        .env("IOTEDGE_MODULEID", "$edgeHub")
        .env("IOTEDGE_GATEWAYHOSTNAME", "edge-1.local")
        .env("IOTEDGE_MODULEGENERATIONID", "637512345678901234")
        .env(
            "IOTEDGE_WORKLOADURI",
            format!("unix://{}", socket.path().display()),
        )
        .env("IOTEDGE_APIVERSION", "2022-08-03")
        .env("IOTEDGE_AUTHSCHEME", "sasToken")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_mins(1), lines.next_line())
            .await
            .expect("python answers within 60 s")
            .unwrap()
            .expect("a line from python")
    };

    assert_eq!(next_line().await, "denied 403");
    daemon.pids.allow("$edgeHub", child.id().unwrap());
    stdin.write_all(b"go\n").await.unwrap();
    let out: serde_json::Value = serde_json::from_str(&next_line().await).unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status}");

    assert_eq!(out["trust_bundle"], daemon.ca.cert_pem);
    assert_eq!(out["server_verification_cert"], daemon.ca.cert_pem);
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        b"hello workload",
    );
    assert_eq!(out["digest"], BASE64.encode(tag.as_ref()));

    let token = SasToken::parse(out["token"].as_str().unwrap()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    token.verify(key, now).unwrap();
    assert_eq!(
        token.sr,
        "hub.example.net%2Fdevices%2Fedge-1%2Fmodules%2F%24edgeHub"
    );
}
