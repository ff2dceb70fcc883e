//! An IoT Edge device's one connection acting for its modules (`docs/protocol.md`): module
//! twins read and patched, desired patches and method calls received, all on module-scoped
//! topics; what other devices and unknown modules get.

use reqwest::Method;
use serde_json::json;
use spoke_core::ids::ModuleId;
use spoke_sdk::{Client, ConnectionError, Error, Event, Events};

use crate::support::{TestHub, connected, wait_for};

/// Creates an IoT Edge device; returns its primary key.
async fn create_edge_device(hub: &TestHub, id: &str) -> String {
    let body = json!({"deviceId": id, "capabilities": {"iotEdge": true},
        "authentication": {"type": "sas", "symmetricKey": {}}});
    let (status, device) = hub
        .rest(Method::PUT, &format!("/devices/{id}"), Some(body))
        .await;
    assert_eq!(status, 200, "{device}");
    device["authentication"]["symmetricKey"]["primaryKey"]
        .as_str()
        .expect("primary key")
        .to_owned()
}

async fn edge_link(hub: &TestHub, id: &str, key: &str) -> (Client, Events) {
    let mut config = hub.device_config(id, key);
    config.edge_modules = true;
    let (client, mut events) = Client::connect(config).await.expect("edge link");
    connected(&mut events).await;
    (client, events)
}

fn module(id: &str) -> ModuleId {
    ModuleId::parse(id).unwrap()
}

#[tokio::test]
async fn edge_link_carries_module_twins_and_methods() {
    let hub = TestHub::start().await;
    let key = create_edge_device(&hub, "edge1").await;
    hub.create_module("edge1", "filter").await;
    let (link, mut events) = edge_link(&hub, "edge1", &key).await;
    let filter = module("filter");

    let version = link
        .patch_module_reported(&filter, &json!({"ready": true}))
        .await
        .unwrap();
    let twin = link.get_module_twin(&filter).await.unwrap();
    assert_eq!(twin["reported"]["ready"], true);
    assert_eq!(twin["reported"]["$version"], version);
    let state = async || {
        let (status, twin) = hub
            .rest(Method::GET, "/twins/edge1/modules/filter", None)
            .await;
        assert_eq!(status, 200, "{twin}");
        assert_eq!(twin["properties"]["reported"]["ready"], true);
        twin["connectionState"].as_str().unwrap().to_owned()
    };
    assert_eq!(state().await, "Disconnected", "not followed yet");
    let invoke = |timeout: u64| {
        hub.rest(
            Method::POST,
            "/twins/edge1/modules/filter/methods",
            Some(json!({"methodName": "reset", "payload": {"hard": false},
                "responseTimeoutInSeconds": 20, "connectTimeoutInSeconds": timeout})),
        )
    };
    let (status, answer) = invoke(0).await;
    assert_eq!(status, 404, "not online: {answer}");

    let (status, _) = hub
        .rest(
            Method::PATCH,
            "/twins/edge1/modules/filter",
            Some(json!({"properties": {"desired": {"threshold": 30}}})),
        )
        .await;
    assert_eq!(status, 200);
    let (to, patch) = wait_for(&mut events, |e| match e {
        Event::ModuleDesiredPatch { module, patch } => Some((module, patch)),
        _ => None,
    })
    .await;
    assert_eq!((to.as_str(), &patch["threshold"]), ("filter", &json!(30)));

    // Followed: the call waits for the SUBSCRIBE (connect timeout) and goes over the link.
    link.follow_module_methods(&filter, true).await.unwrap();
    let respond = async {
        let (to, name, rid, payload) = wait_for(&mut events, |e| match e {
            Event::ModuleMethod {
                module,
                name,
                rid,
                payload,
            } => Some((module, name, rid, payload)),
            _ => None,
        })
        .await;
        assert_eq!((to.as_str(), name.as_str()), ("filter", "reset"));
        assert_eq!(payload, json!({"hard": false}));
        link.respond_module_method(&to, &rid, 200, &json!({"done": true}))
            .await
            .unwrap();
    };
    let ((status, answer), ()) = tokio::join!(invoke(20), respond);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"status": 200, "payload": {"done": true}}));
    assert_eq!(
        state().await,
        "Connected",
        "reachable through its edge device"
    );

    // Unfollowed: the module is offline again; an UNSUBSCRIBE then a twin request on the same
    // connection are handled in order.
    link.follow_module_methods(&filter, false).await.unwrap();
    link.get_module_twin(&filter).await.unwrap();
    assert_eq!(state().await, "Disconnected");
    assert_eq!(invoke(0).await.0, 404);
    link.close().await.unwrap();
}

#[tokio::test]
async fn unknown_modules_get_404_and_the_link_stays() {
    let hub = TestHub::start().await;
    let key = create_edge_device(&hub, "edge1").await;
    hub.create_module("edge1", "filter").await;
    let (link, mut events) = edge_link(&hub, "edge1", &key).await;

    let error = link.get_module_twin(&module("ghost")).await.unwrap_err();
    assert!(
        matches!(error, Error::TwinStatus { status: 404, .. }),
        "{error}"
    );
    let error = link
        .patch_module_reported(&module("ghost"), &json!({"a": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::TwinStatus { status: 404, .. }),
        "{error}"
    );
    // The same connection still serves the edge device's real module.
    let twin = link.get_module_twin(&module("filter")).await.unwrap();
    assert!(twin["desired"].is_object(), "{twin}");
    let (status, answer) = hub
        .rest(
            Method::POST,
            "/twins/edge1/modules/ghost/methods",
            Some(json!({"methodName": "m", "responseTimeoutInSeconds": 5})),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    link.close().await.unwrap();
    while let Some(event) = events.recv().await {
        assert!(
            !matches!(event, Event::Disconnected { .. }),
            "the link was never dropped"
        );
    }
}

#[tokio::test]
async fn only_iot_edge_devices_may_subscribe_for_modules() {
    let hub = TestHub::start().await;
    let key = hub.create_device("plain").await;
    let mut config = hub.device_config("plain", &key);
    config.edge_modules = true;
    let error = Client::connect(config).await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Connection(ConnectionError::SubscriptionRefused { filter })
                if filter.starts_with("$iothub/modules/+/")
        ),
        "{error}"
    );
}

/// Module twins of another device are not reachable: the scoped topic names a module of the
/// connection's own device, so `ghost` here is looked up under `edge2`.
#[tokio::test]
async fn an_edge_device_reaches_only_its_own_modules() {
    let hub = TestHub::start().await;
    let key = create_edge_device(&hub, "edge2").await;
    create_edge_device(&hub, "edge1").await;
    hub.create_module("edge1", "filter").await;
    let (link, _events) = edge_link(&hub, "edge2", &key).await;
    let error = link.get_module_twin(&module("filter")).await.unwrap_err();
    assert!(
        matches!(error, Error::TwinStatus { status: 404, .. }),
        "{error}"
    );
    link.close().await.unwrap();
}
