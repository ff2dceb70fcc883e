//! Module clients: by connection string, and by the edge environment with a workload API.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use spoke_core::message::Message;
use spoke_sdk::{Client, ClientConfig, Credentials};
use tokio::net::UnixListener;

use crate::support::{HOST, TestHub, connected};

#[tokio::test]
async fn module_sends_output_and_reads_its_twin() {
    let hub = TestHub::start().await;
    hub.create_device("edge1").await;
    let key = hub.create_module("edge1", "filter").await;
    let config = hub.config(&format!(
        "HostName={HOST};DeviceId=edge1;ModuleId=filter;SharedAccessKey={key}"
    ));
    let (client, mut events) = Client::connect(config).await.unwrap();
    connected(&mut events).await;

    client
        .send_output("alerts", Message::new(r#"{"level":"high"}"#))
        .await
        .unwrap();
    let event = hub.first_event("edge1").await;
    let event = &event["event"];
    assert_eq!(event["module"], "filter");
    assert_eq!(event["annotations"]["iothub-outputname"], "alerts");
    assert_eq!(event["payload"], json!({"level": "high"}));

    let version = client
        .patch_reported(&json!({"ready": true}))
        .await
        .unwrap();
    let twin = client.get_twin().await.unwrap();
    assert_eq!(twin["reported"]["ready"], true);
    assert_eq!(twin["reported"]["$version"], version);
    client.close().await.unwrap();
}

/// A workload API double: serves the trust bundle and signs with the module's key, and
/// records every request line.
async fn serve_workload(
    listener: UnixListener,
    ca_pem: String,
    key: Vec<u8>,
    log: Arc<Mutex<Vec<String>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (ca_pem, key, log) = (ca_pem.clone(), key.clone(), log.clone());
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let (ca_pem, key, log) = (ca_pem.clone(), key.clone(), log.clone());
            async move {
                let line = format!("{} {}", request.method(), request.uri());
                log.lock().unwrap().push(line);
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let reply = if path == "/trust-bundle" {
                    json!({"certificate": ca_pem})
                } else {
                    let sign: Value = serde_json::from_slice(&body).unwrap();
                    let data = BASE64.decode(sign["data"].as_str().unwrap()).unwrap();
                    let text = String::from_utf8(data).unwrap();
                    json!({"digest": spoke_core::sas::signature(&key, &text)})
                };
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(reply.to_string()))))
            }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        );
    }
}

#[tokio::test]
async fn module_from_edge_environment_signs_through_the_workload_api() {
    let hub = TestHub::start().await;
    hub.create_device("edge1").await;
    let key = hub.create_module("edge1", "filter").await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("filter.sock");
    let log = Arc::new(Mutex::new(Vec::new()));
    let workload = tokio::spawn(serve_workload(
        UnixListener::bind(&socket).unwrap(),
        hub.ca_pem.clone(),
        spoke_core::sas::decode_key(&key).unwrap(),
        log.clone(),
    ));

    let vars: HashMap<&str, String> = HashMap::from([
        ("IOTEDGE_IOTHUBHOSTNAME", HOST.to_owned()),
        ("IOTEDGE_DEVICEID", "edge1".to_owned()),
        ("IOTEDGE_MODULEID", "filter".to_owned()),
        ("IOTEDGE_GATEWAYHOSTNAME", HOST.to_owned()),
        ("IOTEDGE_MODULEGENERATIONID", "gen1".to_owned()),
        (
            "IOTEDGE_WORKLOADURI",
            format!("unix://{}", socket.display()),
        ),
        ("IOTEDGE_APIVERSION", "2022-08-03".to_owned()),
    ]);
    let mut config: ClientConfig =
        ClientConfig::from_edge_variables(|name| vars.get(name).cloned())
            .await
            .unwrap();
    assert!(matches!(config.credentials, Credentials::Signer(_)));
    assert_eq!(config.ca_pem, hub.ca_pem);
    config.port = hub.mqtt_addr.port();
    let (client, mut events) = Client::connect(config).await.unwrap();
    connected(&mut events).await;
    client
        .send_output("out1", Message::new("from the edge"))
        .await
        .unwrap();
    let event = hub.first_event("edge1").await;
    assert_eq!(event["event"]["module"], "filter");
    assert_eq!(event["event"]["payload"], "from the edge");
    client.close().await.unwrap();

    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "GET /trust-bundle?api-version=2022-08-03",
            "POST /modules/filter/genid/gen1/sign?api-version=2022-08-03",
        ]
    );
    workload.abort();
}
