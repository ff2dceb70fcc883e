//! Packet flow on an established connection: keep-alive, inbound PUBLISH (ordering, `QoS` 2,
//! rejection, back-pressure), SUBSCRIBE policy, outbound `QoS` 0/1 delivery.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::{
    Event, TestHooks, WAIT, connect, connect_packet, pid, publish_packet, server, start,
    subscribe_packet,
};
use futures_util::FutureExt;
use spoke_mqtt::codec::{Packet, PacketId, Publish, QoS, QosPid, Suback, SubackCode, Unsubscribe};
use spoke_mqtt::{DeliverError, DisconnectReason, Server, ServerConfig};
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn keep_alive_timeout_is_one_and_a_half_times_the_client_value() {
    let server = server(TestHooks::default());
    let (raw, task) = start(&server);
    let mut raw = raw.patient();
    raw.send(&connect_packet("dev1", false, 10)).await;
    assert!(matches!(raw.expect().await, Packet::Connack(_)));
    let started = Instant::now();
    // A PINGREQ at 14 s (before 15 s) keeps the connection alive (MQTT 3.1.1 §3.1.2.10).
    tokio::time::sleep(Duration::from_secs(14)).await;
    raw.send(&Packet::Pingreq).await;
    assert_eq!(raw.expect().await, Packet::Pingresp);
    raw.expect_closed().await;
    assert_eq!(started.elapsed(), Duration::from_secs(29));
    assert_eq!(task.await.unwrap(), DisconnectReason::KeepAliveTimeout);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_is_capped() {
    let config = ServerConfig {
        max_keepalive: Duration::from_secs(100),
        ..ServerConfig::default()
    };
    let server = Server::new(TestHooks::default(), config);
    let (raw, task) = start(&server);
    let mut raw = raw.patient();
    raw.send(&connect_packet("dev1", false, 1000)).await;
    assert!(matches!(raw.expect().await, Packet::Connack(_)));
    let started = Instant::now();
    raw.expect_closed().await;
    assert_eq!(started.elapsed(), Duration::from_secs(150));
    assert_eq!(task.await.unwrap(), DisconnectReason::KeepAliveTimeout);
}

#[tokio::test]
async fn qos2_publish_closes_the_connection() {
    let server = server(TestHooks::default());
    let (mut raw, task, _) = connect(&server, "dev1", false).await;
    raw.send(&Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::ExactlyOnce(pid(1)),
        retain: false,
        topic: "devices/dev1/messages/events/".into(),
        payload: Bytes::from_static(b"x"),
    }))
    .await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::QoS2Refused);
    assert!(server.hooks().record().published.is_empty());
}

#[tokio::test]
async fn inbound_publishes_are_acked_in_order_and_keep_retain_as_a_flag() {
    let server = server(TestHooks::default());
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&publish_packet("t/1", Some(10), b"a")).await;
    raw.send(&publish_packet("t/2", None, b"b")).await;
    let mut retained = publish_packet("t/3", Some(11), b"c");
    if let Packet::Publish(p) = &mut retained {
        p.retain = true;
    }
    raw.send(&retained).await;
    raw.send(&publish_packet("t/4", Some(12), b"d")).await;
    for id in [10, 11, 12] {
        assert_eq!(raw.expect().await, Packet::Puback(pid(id)));
    }
    let record = server.hooks().record();
    let topics: Vec<_> = record
        .published
        .iter()
        .map(|(_, p)| p.topic.as_str())
        .collect();
    assert_eq!(topics, ["t/1", "t/2", "t/3", "t/4"]);
    assert!(record.published[2].1.retain);
    assert!(record.published.iter().all(|(client, _)| client == "dev1"));
}

#[tokio::test]
async fn a_rejected_publish_closes_without_puback() {
    let server = server(TestHooks::default());
    let (mut raw, task, _) = connect(&server, "dev1", false).await;
    raw.send(&publish_packet("reject/x", Some(1), b"a")).await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::PublishRejected);
}

#[tokio::test]
async fn back_pressure_bounds_the_inbound_pipeline() {
    let gate = Arc::new(Semaphore::new(0));
    let hooks = TestHooks {
        gate: Some(Arc::clone(&gate)),
        ..TestHooks::default()
    };
    let config = ServerConfig {
        max_inflight_in: 8,
        ..ServerConfig::default()
    };
    let server = Server::new(hooks, config);
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    for id in 1..=100 {
        raw.send(&publish_packet(
            "devices/dev1/messages/events/",
            Some(id),
            b"payload",
        ))
        .await;
    }
    let started = &server.hooks().publishes_started;
    let deadline = Instant::now() + WAIT;
    while started.load(Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "pipeline never filled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        8,
        "more than 8 publishes in progress"
    );
    gate.add_permits(100);
    for id in 1..=100 {
        assert_eq!(raw.expect().await, Packet::Puback(pid(id)));
    }
    assert_eq!(server.hooks().record().published.len(), 100);
}

#[tokio::test]
async fn subscribe_policy_caps_qos_and_notifies_after_suback() {
    let server = server(TestHooks::default());
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(
        5,
        &[
            ("a/#", QoS::ExactlyOnce),
            ("forbidden/x", QoS::AtLeastOnce),
            ("b", QoS::AtMostOnce),
        ],
    ))
    .await;
    assert_eq!(
        raw.expect().await,
        Packet::Suback(Suback {
            packet_id: pid(5),
            codes: vec![
                SubackCode::Granted(QoS::AtLeastOnce),
                SubackCode::Failure,
                SubackCode::Granted(QoS::AtMostOnce),
            ],
        })
    );
    let subscribed = server
        .hooks()
        .wait_for(|r| {
            let s: Vec<_> = r
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Subscribed(_, f) => Some(f.clone()),
                    _ => None,
                })
                .collect();
            (s.len() == 2).then_some(s)
        })
        .await;
    assert_eq!(subscribed, ["a/#", "b"]);
    assert!(server.is_subscribed("dev1", "a/x/y"));
    assert!(!server.is_subscribed("dev1", "forbidden/x"));
    assert_eq!(
        server.hooks().store.get("dev1"),
        Some(vec![
            ("a/#".into(), QoS::AtLeastOnce),
            ("b".into(), QoS::AtMostOnce)
        ])
    );

    raw.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(6),
        filters: vec!["a/#".into()],
    }))
    .await;
    assert_eq!(raw.expect().await, Packet::Unsuback(pid(6)));
    assert!(!server.is_subscribed("dev1", "a/x"));
    assert_eq!(
        server.hooks().store.get("dev1"),
        Some(vec![("b".into(), QoS::AtMostOnce)])
    );
}

#[tokio::test]
async fn subscription_limit() {
    let config = ServerConfig {
        max_subscriptions: 2,
        ..ServerConfig::default()
    };
    let server = Server::new(TestHooks::default(), config);
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(
        1,
        &[("a", QoS::AtLeastOnce), ("b", QoS::AtLeastOnce)],
    ))
    .await;
    raw.expect().await;
    raw.send(&subscribe_packet(
        2,
        &[("a", QoS::AtMostOnce), ("c", QoS::AtLeastOnce)],
    ))
    .await;
    assert_eq!(
        raw.expect().await,
        Packet::Suback(Suback {
            packet_id: pid(2),
            codes: vec![SubackCode::Granted(QoS::AtMostOnce), SubackCode::Failure],
        })
    );
}

/// The PUBLISH a raw client received, as (topic, `qos_pid`, dup).
fn received(packet: Packet) -> (String, QosPid, bool) {
    match packet {
        Packet::Publish(p) => {
            assert!(!p.retain, "RETAIN is 0 on delivery (MQTT 3.1.1 §3.3.1.3)");
            (p.topic, p.qos_pid, p.dup)
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

const C2D: &str = "devices/dev1/messages/devicebound/#";
const C2D_TOPIC: &str = "devices/dev1/messages/devicebound/%24.mid=1";

#[tokio::test]
async fn outbound_qos1_resolves_on_puback_and_is_redelivered_with_dup() {
    let server = server(TestHooks::default());
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;

    let first = server.publish(
        "dev1",
        C2D_TOPIC.into(),
        Bytes::from_static(b"m1"),
        QoS::AtLeastOnce,
    );
    let mut first = first.unwrap();
    let (topic, qos_pid, dup) = received(raw.expect().await);
    assert_eq!((topic.as_str(), dup), (C2D_TOPIC, false));
    let QosPid::AtLeastOnce(first_id) = qos_pid else {
        panic!("QoS 1 expected")
    };

    // The connection drops without a PUBACK: the delivery stays pending.
    drop(raw);
    server.hooks().disconnected("dev1").await;
    assert!((&mut first).now_or_never().is_none());
    // A QoS 1 message for the offline session is queued; QoS 0 is refused.
    let second = server
        .publish(
            "dev1",
            C2D_TOPIC.into(),
            Bytes::from_static(b"m2"),
            QoS::AtLeastOnce,
        )
        .unwrap();
    assert_eq!(
        server
            .publish("dev1", C2D_TOPIC.into(), Bytes::new(), QoS::AtMostOnce)
            .unwrap_err(),
        DeliverError::NotConnected
    );

    let (mut raw, _task, present) = connect(&server, "dev1", false).await;
    assert!(present);
    // §4.4: the unacknowledged message again, same id, DUP set; then the queued one.
    assert_eq!(
        received(raw.expect().await),
        (C2D_TOPIC.into(), QosPid::AtLeastOnce(first_id), true)
    );
    let (_, qos_pid, dup) = received(raw.expect().await);
    assert!(!dup);
    let second_id = qos_pid.packet_id().unwrap();
    assert_ne!(second_id, first_id);
    raw.send(&Packet::Puback(first_id)).await;
    raw.send(&Packet::Puback(second_id)).await;
    assert_eq!(tokio::time::timeout(WAIT, first).await.unwrap(), Ok(()));
    assert_eq!(tokio::time::timeout(WAIT, second).await.unwrap(), Ok(()));
}

#[tokio::test]
async fn outbound_qos_is_the_minimum_of_requested_and_granted() {
    let server = server(TestHooks::default());
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[("q0/#", QoS::AtMostOnce)]))
        .await;
    raw.expect().await;
    // Granted QoS 0: delivered at QoS 0, and the delivery resolves at once.
    let delivery = server.publish(
        "dev1",
        "q0/x".into(),
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
    );
    assert_eq!(delivery.unwrap().now_or_never(), Some(Ok(())));
    assert_eq!(
        received(raw.expect().await),
        ("q0/x".into(), QosPid::AtMostOnce, false)
    );
}

#[tokio::test]
async fn outbound_window_is_bounded_and_the_queue_refuses_when_full() {
    let config = ServerConfig {
        max_inflight_out: 2,
        max_queued_out: 3,
        ..ServerConfig::default()
    };
    let server = Server::new(TestHooks::default(), config);
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;
    let mut deliveries = Vec::new();
    for i in 0..2 {
        let payload = Bytes::from(format!("m{i}"));
        deliveries.push(server.publish("dev1", C2D_TOPIC.into(), payload, QoS::AtLeastOnce));
    }
    let mut ids: Vec<PacketId> = Vec::new();
    for _ in 0..2 {
        ids.push(received(raw.expect().await).1.packet_id().unwrap());
    }
    // The window (2) is full: the next 3 queue, the one after is refused.
    for i in 2..5 {
        let payload = Bytes::from(format!("m{i}"));
        deliveries.push(server.publish("dev1", C2D_TOPIC.into(), payload, QoS::AtLeastOnce));
    }
    assert_eq!(
        server
            .publish("dev1", C2D_TOPIC.into(), Bytes::new(), QoS::AtLeastOnce)
            .unwrap_err(),
        DeliverError::Full
    );
    raw.send(&Packet::Puback(ids[0])).await;
    let (_, qos_pid, _) = received(raw.expect().await);
    assert!(qos_pid.packet_id().is_some());
    assert!(deliveries.iter().all(Result::is_ok));
}

#[tokio::test]
async fn publish_errors() {
    let server = server(TestHooks::default());
    let payload = Bytes::from_static(b"x");
    assert_eq!(
        server
            .publish(
                "nobody",
                C2D_TOPIC.into(),
                payload.clone(),
                QoS::AtLeastOnce
            )
            .unwrap_err(),
        DeliverError::NotSubscribed
    );
    let (mut raw, _task, _) = connect(&server, "dev1", false).await;
    raw.send(&subscribe_packet(1, &[(C2D, QoS::AtLeastOnce)]))
        .await;
    raw.expect().await;
    assert_eq!(
        server
            .publish(
                "dev1",
                "other/topic".into(),
                payload.clone(),
                QoS::AtLeastOnce
            )
            .unwrap_err(),
        DeliverError::NotSubscribed
    );
    assert!(matches!(
        server.publish("dev1", "devices/+".into(), payload, QoS::AtLeastOnce),
        Err(DeliverError::InvalidTopic(_))
    ));
}
