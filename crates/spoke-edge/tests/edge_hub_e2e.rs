//! The edge hub end to end, with unchanged Azure SDK modules
//! (`ModuleClient.create_from_edge_environment()`) run as process modules by the daemon: a
//! sender's output is routed through a `WHERE` clause to a receiver's input; the receiver
//! forwards what it gets to `$upstream`, where the hub sees it as coming from the receiver.
//! Module twins (reported and desired), a cloud-to-module and a module-to-module direct method
//! go through the edge hub and its one upstream connection, and its metrics count what was
//! routed. The sender connects with
//! MQTT over WebSocket (`bind:443`, `websockets=True`), the receiver with MQTT over TLS (8883).

mod support;

use serde_json::{Value, json};
use support::{TestHub, deployment, process_module, python};

const HUB_IP: &str = "127.0.0.73";
const EDGE_IP: &str = "127.0.0.74";

/// Over MQTT over WebSocket: sends five JSON readings to output `temps`, calls the receiver's
/// method `hello` through the edge hub (module to module, HTTPS) and reports the answer, then
/// idles.
const SENDER: &str = r#"
import json, os, threading, time
from azure.iot.device import IoTHubModuleClient, Message
client = IoTHubModuleClient.create_from_edge_environment(websockets=True)
client_id_device = os.environ["IOTEDGE_DEVICEID"]
client.connect()
for i, t in enumerate([10, 40, 20, 50, 35]):
    m = Message(json.dumps({"seq": i, "temperature": t}), content_encoding="utf-8", content_type="application/json")
    m.custom_properties["kind"] = "reading"
    client.send_message_to_output(m, "temps")
while True:  # the receiver may not be connected yet: the edge hub answers 404 until it is
    try:
        result = client.invoke_method({"methodName": "hello", "payload": "from-sender", "responseTimeoutInSeconds": 20}, client_id_device, "receiver")
        break
    except Exception:
        time.sleep(0.2)
client.patch_twin_reported_properties({"invoked": result})
threading.Event().wait()
"#;

/// Forwards input `in1` to output `fwd`, reports how many it got, echoes desired `echo` into
/// reported properties, and answers method `hello`.
const RECEIVER: &str = r#"
import threading
from azure.iot.device import IoTHubModuleClient, Message, MethodResponse
client = IoTHubModuleClient.create_from_edge_environment()
count = 0
def on_message(message):
    global count
    if message.input_name != "in1":
        return
    count += 1
    out = Message(message.data, content_encoding="utf-8", content_type="application/json")
    out.custom_properties["from"] = message.custom_properties.get("kind", "")
    client.send_message_to_output(out, "fwd")
    client.patch_twin_reported_properties({"received": count})
def on_desired(patch):
    if "echo" in patch:
        client.patch_twin_reported_properties({"echo": patch["echo"]})
def on_method(request):
    client.send_method_response(MethodResponse.create_from_method_request(request, 200, {"hi": request.payload}))
client.on_message_received = on_message
client.on_twin_desired_properties_patch_received = on_desired
client.on_method_request_received = on_method
client.connect()
twin = client.get_twin()
client.patch_twin_reported_properties({"started": True, "sawDesired": "threshold" in twin["desired"]})
threading.Event().wait()
"#;

#[tokio::test]
async fn azure_sdk_modules_route_through_the_edge_hub() {
    let Some(python) = python() else {
        eprintln!("skipped: no .venv with the Azure SDK (run scripts/setup.sh)");
        return;
    };
    let mut hub = TestHub::start(HUB_IP).await;
    let key = hub.service.edge_device("edge2").await;
    let edge_dir = tempfile::tempdir().unwrap();
    let module = |name: &str, source: &str| {
        let script = edge_dir.path().join(format!("{name}.py"));
        std::fs::write(&script, source).unwrap();
        process_module(&[python.display().to_string(), script.display().to_string()])
    };
    let (sender, receiver) = (module("sender", SENDER), module("receiver", RECEIVER));
    let config = hub.edge_config("edge2", &key, EDGE_IP, &edge_dir.path().join("data"), "");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(spoke_edge::daemon::run(config, async move {
        let _ = stop_rx.await;
    }));
    let service = &hub.service;
    let since = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
    let routes = json!({
        "hot": "FROM /messages/modules/sender/outputs/temps WHERE $body.temperature > 30 AND kind = 'reading' INTO BrokeredEndpoint(\"/modules/receiver/inputs/in1\")",
        "up": {"route": "FROM /messages/modules/receiver/outputs/* INTO $upstream", "priority": 1, "timeToLiveSecs": 3600}
    });
    let mut manifest = deployment(&json!({"sender": sender, "receiver": receiver}), &routes);
    manifest["modulesContent"]["receiver"] = json!({"properties.desired": {"threshold": 30}});
    service.deploy("edge2", manifest).await;

    // The three readings above 30 arrive, in order, as sent upstream by the receiver.
    let events = service.events("edge2", since, 3).await;
    let temps: Vec<Value> = events
        .iter()
        .map(|e| e["event"]["payload"]["temperature"].clone())
        .collect();
    assert_eq!(temps, [json!(40), json!(50), json!(35)], "{events:#?}");
    for event in &events {
        assert_eq!(event["event"]["module"], "receiver", "{event:#}");
        assert_eq!(
            event["event"]["annotations"]["iothub-connection-module-id"],
            "receiver"
        );
        assert_eq!(
            event["event"]["properties"]["application"]["from"],
            "reading"
        );
    }

    // Twins through the edge hub: GET saw the desired threshold, reported patches arrived,
    // and a desired patch reaches the module.
    let twin_path = "/twins/edge2/modules/receiver";
    let reported = service
        .wait_twin(twin_path, |r| r["received"] == 3 && r["sawDesired"] == true)
        .await;
    assert_eq!(reported["started"], true);
    service
        .call(
            reqwest::Method::PATCH,
            twin_path,
            Some(json!({"properties": {"desired": {"echo": "ping-42"}}})),
        )
        .await;
    service
        .wait_twin(twin_path, |r| r["echo"] == "ping-42")
        .await;

    // A direct method from the cloud reaches the module through the edge hub.
    let answer = service
        .json(
            reqwest::Method::POST,
            "/twins/edge2/modules/receiver/methods",
            Some(
                json!({"methodName": "hello", "payload": "there", "responseTimeoutInSeconds": 20}),
            ),
        )
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["payload"], json!({"hi": "there"}));

    // All of it went over one connection of the edge device (its upstream link); besides it
    // only the system modules `$edgeAgent` and `$edgeHub` have their own. The modules have
    // none to the hub, yet show as connected through the link (both are connected to the
    // edge hub; the sender has no method handler).
    let stats = service
        .json(reqwest::Method::GET, "/statistics/service", None)
        .await;
    assert_eq!(
        stats["connectedDeviceCount"], 3,
        "edge2, edge2/$edgeAgent and edge2/$edgeHub"
    );
    for module in ["receiver", "sender"] {
        let path = format!("/devices/edge2/modules/{module}");
        let identity = service.json(reqwest::Method::GET, &path, None).await;
        assert_eq!(identity["connectionState"], "Connected", "{identity}");
    }

    // Module to module: the sender's `invoke_method` reached the receiver through the edge hub.
    let sender_twin = service
        .wait_twin("/twins/edge2/modules/sender", |r| {
            r.get("invoked").is_some()
        })
        .await;
    assert_eq!(
        sender_twin["invoked"],
        json!({"status": 200, "payload": {"hi": "from-sender"}})
    );

    // The edge hub's metrics count the routed messages.
    let metrics = reqwest::get(format!("http://{EDGE_IP}:9600/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "spoke_edgehub_messages_routed_total{route=\"hot\"} 3",
        "spoke_edgehub_messages_routed_total{route=\"up\"} 3",
        "spoke_edgehub_upstream_connected 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }

    service.remove_modules("edge2").await;
    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    hub.stop().await;
}
