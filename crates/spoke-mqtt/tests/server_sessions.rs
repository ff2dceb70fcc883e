//! Session lifecycle: persistence across reconnects and restarts, clean sessions, takeover,
//! server-initiated disconnects.

mod common;

use bytes::Bytes;
use common::{TestHooks, WAIT, connect, server, subscribe_packet};
use spoke_mqtt::codec::{Packet, QoS, QosPid};
use spoke_mqtt::{DisconnectReason, Gone, MemorySessionStore, Server, ServerConfig};

const C2D: &str = "devices/dev1/messages/devicebound/#";
const C2D_TOPIC: &str = "devices/dev1/messages/devicebound/";

#[tokio::test]
async fn subscriptions_survive_reconnects_and_restarts() {
    let store = MemorySessionStore::new();
    let first = server(TestHooks::with_store(store.clone()));
    let (mut raw, _task, present) = connect(&first, "dev1", false).await;
    assert!(!present);
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;
    raw.send(&Packet::Disconnect).await;
    raw.expect_closed().await;

    // Reconnect: no SUBSCRIBE (the Azure SDK never re-subscribes), still subscribed.
    let (mut raw, _task, present) = connect(&first, "dev1", false).await;
    assert!(present);
    first
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"a"),
            QoS::AtMostOnce,
        )
        .unwrap();
    assert!(matches!(raw.expect().await, Packet::Publish(p) if p.payload == "a"));
    drop(raw);

    // "Restart": a new server on the same store.
    let second = Server::new(TestHooks::with_store(store), ServerConfig::default());
    assert!(
        !second.is_subscribed("dev1", C2D_TOPIC),
        "nothing in memory before CONNECT"
    );
    let (mut raw, _task, present) = connect(&second, "dev1", false).await;
    assert!(present);
    assert!(second.is_subscribed("dev1", C2D_TOPIC));
    second
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"b"),
            QoS::AtMostOnce,
        )
        .unwrap();
    assert!(matches!(raw.expect().await, Packet::Publish(p) if p.payload == "b"));
}

#[tokio::test]
async fn clean_session_discards_the_stored_session() {
    let server = server(TestHooks::default());
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;
    let pending = server.publish(
        "dev1",
        C2D_TOPIC.into(),
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
    );
    raw.expect().await;
    drop(raw);
    server.hooks().disconnected("dev1").await;

    let (raw, task, present) = connect(&server, "dev1", true).await;
    assert!(
        !present,
        "MQTT 3.1.1 §3.2.2.2: no session with CleanSession = 1"
    );
    assert!(!server.is_subscribed("dev1", C2D_TOPIC));
    assert_eq!(server.hooks().store.get("dev1"), None);
    assert_eq!(pending.unwrap().await, Err(Gone));
    // A clean session ends with its connection.
    drop(raw);
    assert_eq!(task.await.unwrap(), DisconnectReason::ConnectionLost);
    let (_raw, _task, present) = connect(&server, "dev1", false).await;
    assert!(!present);
}

#[tokio::test]
async fn a_new_connection_takes_the_session_over() {
    let server = server(TestHooks::default());
    let (mut old, old_task, _) = connect(&server, "dev1", false).await;
    old.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    old.expect().await;
    let delivery = server.publish(
        "dev1",
        C2D_TOPIC.into(),
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
    );
    let Packet::Publish(sent) = old.expect().await else {
        panic!("PUBLISH expected")
    };

    let (mut new, _new_task, present) = connect(&server, "dev1", false).await;
    assert!(present);
    old.expect_closed().await;
    assert_eq!(old_task.await.unwrap(), DisconnectReason::Takeover);
    assert!(server.hooks().disconnected("dev1").await.is_takeover());
    assert_eq!(server.connected_count(), 1);
    assert!(server.is_connected("dev1"));

    // The unacknowledged message moves to the new connection.
    let Packet::Publish(resent) = new.expect().await else {
        panic!("PUBLISH expected")
    };
    assert_eq!((resent.qos_pid, resent.dup), (sent.qos_pid, true));
    let QosPid::AtLeastOnce(id) = resent.qos_pid else {
        panic!("QoS 1 expected")
    };
    new.send(&Packet::Puback(id)).await;
    assert_eq!(
        tokio::time::timeout(WAIT, delivery.unwrap()).await.unwrap(),
        Ok(())
    );
    new.send(&Packet::Pingreq).await;
    assert_eq!(new.expect().await, Packet::Pingresp);
}

#[tokio::test]
async fn server_disconnect_keeps_the_session() {
    let server = server(TestHooks::default());
    let (mut raw, task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;
    assert!(server.disconnect("dev1"));
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::ServerDisconnect);
    assert!(!server.is_connected("dev1"));
    assert!(server.is_subscribed("dev1", C2D_TOPIC));
    assert!(!server.disconnect("dev1"));
    assert_eq!(server.connected_count(), 0);
}

#[tokio::test]
async fn disconnect_all_closes_every_connection_and_keeps_sessions() {
    let server = server(TestHooks::default());
    let (mut first, first_task, _) = connect(&server, "dev1", false).await;
    let (mut second, second_task, _) = connect(&server, "dev2", true).await;
    first
        .send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    first.expect().await;
    assert_eq!(server.disconnect_all(), 2);
    first.expect_closed().await;
    second.expect_closed().await;
    assert_eq!(
        first_task.await.unwrap(),
        DisconnectReason::ServerDisconnect
    );
    assert_eq!(
        second_task.await.unwrap(),
        DisconnectReason::ServerDisconnect
    );
    assert_eq!(server.connected_count(), 0);
    assert!(
        server.is_subscribed("dev1", C2D_TOPIC),
        "persistent sessions stay"
    );
    assert_eq!(server.disconnect_all(), 0);
}

#[tokio::test]
async fn remove_session_forgets_everything() {
    let server = server(TestHooks::default());
    let (mut raw, task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;
    let delivery = server.publish(
        "dev1",
        C2D_TOPIC.into(),
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
    );
    server.remove_session("dev1").await.unwrap();
    assert_eq!(delivery.unwrap().await, Err(Gone));
    assert_eq!(task.await.unwrap(), DisconnectReason::ServerDisconnect);
    assert!(!server.is_subscribed("dev1", C2D_TOPIC));
    assert_eq!(server.hooks().store.get("dev1"), None);
    let (_raw, _task, present) = connect(&server, "dev1", false).await;
    assert!(!present);
}
