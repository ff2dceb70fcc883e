//! A device client: telemetry, twin, direct methods, C2D, refusal and close.

use reqwest::Method;
use serde_json::json;
use spoke_core::message::Message;
use spoke_sdk::{Client, ConnectReturnCode, ConnectionError, Error, Event};

use crate::support::{TestHub, WAIT, connected, wait_for};

#[tokio::test]
async fn telemetry_reaches_the_events_log() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;

    let mut message = Message::new(r#"{"temperature":21.5}"#);
    message.system.message_id = Some("mid1".into());
    message.system.content_type = Some("application/json".into());
    message.app.push(("alert".into(), Some("true".into())));
    client.send_event(message).await.unwrap();

    let event = hub.first_event("dev1").await;
    let event = &event["event"];
    assert_eq!(event["origin"], "dev1");
    assert_eq!(event["module"], "");
    assert_eq!(event["payload"], json!({"temperature": 21.5}));
    assert_eq!(event["properties"]["system"]["message_id"], "mid1");
    assert_eq!(
        event["properties"]["system"]["content_type"],
        "application/json"
    );
    assert_eq!(event["properties"]["application"], json!({"alert": "true"}));

    let too_big = Message::new(vec![0; spoke_sdk::MAX_MESSAGE_SIZE + 1]);
    assert!(matches!(
        client.send_event(too_big).await,
        Err(Error::MessageTooLarge { .. })
    ));
    client.close().await.unwrap();
}

#[tokio::test]
async fn twin_get_reported_and_desired() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;

    let twin = client.get_twin().await.unwrap();
    assert!(twin["desired"]["$version"].is_u64(), "{twin}");
    let before = twin["reported"]["$version"].as_u64().unwrap();

    let version = client
        .patch_reported(&json!({"firmware": "1.2", "gone": null}))
        .await
        .unwrap();
    assert!(version > before);
    let (status, service_twin) = hub.rest(Method::GET, "/twins/dev1", None).await;
    assert_eq!(status, 200);
    assert_eq!(service_twin["properties"]["reported"]["firmware"], "1.2");
    assert_eq!(
        client.get_twin().await.unwrap()["reported"]["$version"],
        version
    );

    let (status, _) = hub
        .rest(
            Method::PATCH,
            "/twins/dev1",
            Some(json!({"properties": {"desired": {"interval": 5}}})),
        )
        .await;
    assert_eq!(status, 200);
    let patch = wait_for(&mut events, |e| match e {
        Event::DesiredPatch(patch) => Some(patch),
        _ => None,
    })
    .await;
    assert_eq!(patch["interval"], 5);
    assert!(patch["$version"].is_u64(), "{patch}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn direct_method_round_trip() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;

    let invoke = hub.rest(
        Method::POST,
        "/twins/dev1/methods",
        Some(json!({"methodName": "reboot", "payload": {"delay": 5}, "responseTimeoutInSeconds": 20})),
    );
    let respond = async {
        let (name, rid, payload) = wait_for(&mut events, |e| match e {
            Event::Method { name, rid, payload } => Some((name, rid, payload)),
            _ => None,
        })
        .await;
        assert_eq!(name, "reboot");
        assert_eq!(payload, json!({"delay": 5}));
        client
            .respond_method(&rid, 299, &json!({"ok": true}))
            .await
            .unwrap();
    };
    let ((status, answer), ()) = tokio::join!(invoke, respond);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"status": 299, "payload": {"ok": true}}));
    client.close().await.unwrap();
}

#[tokio::test]
async fn c2d_message_arrives_with_properties() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;

    let response = hub
        .request(Method::POST, "/devices/dev1/messages/deviceBound")
        .header("iothub-messageid", "c2d-1")
        .header("iothub-app-color", "blue")
        .body("hello device")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (input, message) = wait_for(&mut events, |e| match e {
        Event::Message { input, message } => Some((input, message)),
        _ => None,
    })
    .await;
    assert_eq!(input, None);
    assert_eq!(message.body, b"hello device");
    assert_eq!(message.system.message_id.as_deref(), Some("c2d-1"));
    assert_eq!(message.app_property("color"), Some("blue"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn wrong_key_is_refused_and_close_ends_the_client() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let wrong = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_ne!(key, wrong);
    let refused = Client::connect(hub.device_config("dev1", wrong)).await;
    assert!(
        matches!(
            refused,
            Err(Error::Connection(ConnectionError::Refused {
                code: ConnectReturnCode::NotAuthorized
            }))
        ),
        "{refused:?}"
    );

    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;
    client.close().await.unwrap();
    let end = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    assert!(end.is_none(), "{end:?}");
    assert!(matches!(
        client.send_event(Message::new("late")).await,
        Err(Error::Closed)
    ));
    client.close().await.unwrap();
}
