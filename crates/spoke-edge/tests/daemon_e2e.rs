//! `spoke-edge` end to end: a real Spoke Hub (in-process, on its own loopback address and the
//! standard ports, which the Python SDK hard-codes), the daemon running process modules from a
//! deployment applied to the hub, and an unchanged azure-iot-device module
//! (`ModuleClient.create_from_edge_environment()`) signing through the workload API and
//! connecting to the edge hub on the edge device's own address, its output routed upstream.

mod support;

use serde_json::{Value, json};
use support::{TestHub, deployment, management_get, process_module, python};

const HUB_IP: &str = "127.0.0.71";
/// The edge device's own address: its edge hub listens there on 8883, as the SDK expects.
const EDGE_IP: &str = "127.0.0.72";

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
    let mut hub = TestHub::start(HUB_IP).await;
    let key = hub.service.edge_device("edge1").await;
    let edge_dir = tempfile::tempdir().unwrap();
    let script = edge_dir.path().join("module.py");
    std::fs::write(&script, PY_MODULE).unwrap();
    let config = hub.edge_config("edge1", &key, EDGE_IP, &edge_dir.path().join("data"), "");
    let service = &hub.service;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(spoke_edge::daemon::run(config, async move {
        let _ = stop_rx.await;
    }));

    let since = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
    let modules = json!({
        "sleeper": process_module(&["/bin/sh".into(), "-c".into(), "echo hello-log; exec sleep 1000".into()]),
        "pymod": process_module(&[python.display().to_string(), script.display().to_string()]),
    });
    let routes = json!({"up": "FROM /messages/* INTO $upstream"});
    service.deploy("edge1", deployment(&modules, &routes)).await;

    let running = |r: &Value, m: &str| r["modules"][m]["runtimeStatus"] == "running";
    let reported = service
        .wait_reported("edge1", |r| {
            r["lastDesiredStatus"]["code"] == 200 && running(r, "sleeper") && running(r, "pymod")
        })
        .await;
    assert_eq!(reported["lastDesiredVersion"], 2);

    // The Python module authenticated with a SAS token signed by the workload API: its
    // message reaches the hub from its own identity.
    let event = service.events("edge1", since, 1).await.remove(0);
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

    service.remove_modules("edge1").await;
    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    hub.stop().await;
}
