//! Reconnection after a hub restart, and SAS token renewal by reconnecting.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use spoke_core::message::Message;
use spoke_sdk::{Client, DisconnectReason, Event};

use crate::support::{TestHub, connected, wait_for};

#[tokio::test]
async fn reconnects_after_the_hub_restarts() {
    let mut hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;

    hub.restart().await;
    let reason = wait_for(&mut events, |e| match e {
        Event::Disconnected { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(matches!(reason, DisconnectReason::Lost(_)), "{reason:?}");
    connected(&mut events).await;

    // Subscriptions hold on the new connection: a desired patch still arrives.
    let (status, _) = hub
        .rest(
            Method::PATCH,
            "/twins/dev1",
            Some(json!({"properties": {"desired": {"after": "restart"}}})),
        )
        .await;
    assert_eq!(status, 200);
    let patch = wait_for(&mut events, |e| match e {
        Event::DesiredPatch(patch) => Some(patch),
        _ => None,
    })
    .await;
    assert_eq!(patch["after"], "restart");
    client.send_event(Message::new("still here")).await.unwrap();
    assert_eq!(
        hub.first_event("dev1").await["event"]["payload"],
        "still here"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn requests_made_while_disconnected_go_out_after_reconnecting() {
    let mut hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let (client, mut events) = Client::connect(hub.device_config("dev1", &key))
        .await
        .unwrap();
    connected(&mut events).await;

    hub.stop().await;
    wait_for(&mut events, |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    let send = tokio::spawn({
        let client = client.clone();
        async move { client.send_event(Message::new("queued")).await }
    });
    hub.restart().await;
    connected(&mut events).await;
    send.await.unwrap().unwrap();
    assert_eq!(hub.first_event("dev1").await["event"]["payload"], "queued");
    client.close().await.unwrap();
}

#[tokio::test]
async fn renews_the_token_before_it_expires() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let mut config = hub.device_config("dev1", &key);
    config.token_ttl = Duration::from_secs(3);
    config.renewal_margin = Duration::from_secs(2);
    let (client, mut events) = Client::connect(config).await.unwrap();
    connected(&mut events).await;

    // Three renewals span more than one token lifetime.
    for _ in 0..3 {
        let reason = wait_for(&mut events, |e| match e {
            Event::Disconnected { reason } => Some(reason),
            _ => None,
        })
        .await;
        assert!(
            matches!(reason, DisconnectReason::TokenRenewal),
            "{reason:?}"
        );
        connected(&mut events).await;
    }
    let twin = client.get_twin().await.unwrap();
    assert!(twin["reported"].is_object());
    client.close().await.unwrap();
}

#[tokio::test]
async fn pings_keep_an_idle_connection_open() {
    let hub = TestHub::start().await;
    let key = hub.create_device("dev1").await;
    let mut config = hub.device_config("dev1", &key);
    config.keep_alive = Duration::from_secs(1);
    let (client, mut events) = Client::connect(config).await.unwrap();
    connected(&mut events).await;

    // The hub drops a client silent for 1.5 keep-alive periods (MQTT 3.1.1 §3.1.2.10); idle
    // for three periods, the connection must survive on PINGREQs alone.
    let idle = tokio::time::timeout(Duration::from_secs(3), events.recv()).await;
    assert!(idle.is_err(), "unexpected event while idle: {idle:?}");
    assert!(client.get_twin().await.unwrap()["desired"].is_object());
    client.close().await.unwrap();
}
