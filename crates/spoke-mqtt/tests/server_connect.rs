//! The CONNECT handshake: refusals, protocol checks, timeouts, malformed input.

mod common;

use std::time::Duration;

use common::{Event, TestHooks, connect, connect_packet, server, start};
use spoke_mqtt::DisconnectReason;
use spoke_mqtt::codec::{Connack, ConnectReturnCode, Packet};

#[tokio::test]
async fn refusal_codes_from_the_hooks_are_sent_in_connack() {
    let server = server(TestHooks::default());
    for code in 1..=5u8 {
        let (mut raw, task) = start(&server);
        raw.send(&connect_packet(&format!("refuse-{code}"), false, 60))
            .await;
        let expected = ConnectReturnCode::from_u8(code).unwrap();
        assert_eq!(
            raw.expect().await,
            Packet::Connack(Connack {
                session_present: false,
                code: expected
            })
        );
        raw.expect_closed().await;
        assert_eq!(task.await.unwrap(), DisconnectReason::Refused(expected));
    }
    // An `Accepted` error from the hooks is sent as "not authorized".
    let (mut raw, _task) = start(&server);
    raw.send(&connect_packet("refuse-0", false, 60)).await;
    assert_eq!(
        raw.expect().await,
        Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::NotAuthorized
        })
    );
    assert!(
        server.hooks().record().events.is_empty(),
        "refused clients are not connected"
    );
    assert_eq!(server.connected_count(), 0);
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_1() {
    let server = server(TestHooks::default());
    let (mut raw, task) = start(&server);
    // An MQTT 5 CONNECT (level 5, empty properties).
    raw.send_bytes(&[
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 1, b'c',
    ])
    .await;
    assert_eq!(
        raw.expect().await,
        Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::UnacceptableProtocolVersion
        })
    );
    raw.expect_closed().await;
    assert_eq!(
        task.await.unwrap(),
        DisconnectReason::Refused(ConnectReturnCode::UnacceptableProtocolVersion)
    );
}

#[tokio::test]
async fn empty_client_id_needs_clean_session() {
    let server = server(TestHooks::default());
    let (mut raw, _task) = start(&server);
    raw.send(&connect_packet("", false, 60)).await;
    assert_eq!(
        raw.expect().await,
        Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::IdentifierRejected
        })
    );
    // With CleanSession = 1 the application decides (the test hooks accept).
    let (_raw, _task, present) = connect(&server, "", true).await;
    assert!(!present);
}

#[tokio::test]
async fn first_packet_must_be_connect() {
    let server = server(TestHooks::default());
    let (mut raw, task) = start(&server);
    raw.send(&Packet::Pingreq).await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::ProtocolError);
}

#[tokio::test]
async fn a_second_connect_is_a_protocol_violation() {
    let server = server(TestHooks::default());
    let (mut raw, task, _) = connect(&server, "dev1", false).await;
    raw.send(&connect_packet("dev1", false, 60)).await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::ProtocolError);
    assert_eq!(
        server.hooks().disconnected("dev1").await,
        DisconnectReason::ProtocolError
    );
}

#[tokio::test]
async fn malformed_packet_closes_only_that_connection() {
    let server = server(TestHooks::default());
    let (mut good, _good_task, _) = connect(&server, "good", false).await;
    let (mut bad, bad_task, _) = connect(&server, "bad", false).await;
    // PUBLISH with a wildcard in its topic (MQTT 3.1.1 §3.3.2.1).
    bad.send_bytes(&[0x30, 5, 0, 3, b'a', b'/', b'#']).await;
    bad.expect_closed().await;
    assert_eq!(bad_task.await.unwrap(), DisconnectReason::ProtocolError);
    good.send(&Packet::Pingreq).await;
    assert_eq!(good.expect().await, Packet::Pingresp);
    assert_eq!(server.connected_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn connect_must_arrive_in_time() {
    let server = server(TestHooks::default());
    let started = tokio::time::Instant::now();
    let (raw, task) = start(&server);
    raw.patient().expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::ConnectTimeout);
    assert_eq!(started.elapsed(), server.config().connect_timeout);
}

#[tokio::test]
async fn oversized_packet_closes_the_connection() {
    let server = server(TestHooks::default());
    let (mut raw, task, _) = connect(&server, "dev1", false).await;
    // The fixed header of a 1 MiB PUBLISH; the body never needs to arrive.
    raw.send_bytes(&[0x30, 0x80, 0x80, 0x40]).await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::ProtocolError);
}

#[tokio::test]
async fn connected_and_disconnected_hooks() {
    let server = server(TestHooks::default());
    let (mut raw, task, present) = connect(&server, "dev1", false).await;
    assert!(!present);
    assert!(server.is_connected("dev1"));
    assert_eq!(server.connected_count(), 1);
    raw.send(&Packet::Disconnect).await;
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::ClientDisconnect);
    assert_eq!(
        server.hooks().record().events,
        vec![
            Event::Connected("dev1".into(), false),
            Event::Disconnected("dev1".into(), DisconnectReason::ClientDisconnect),
        ]
    );
    assert!(!server.is_connected("dev1"));
    assert_eq!(server.connected_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn token_expiry_closes_the_connection() {
    let hooks = TestHooks {
        expires_in: Some(Duration::from_hours(1)),
        ..TestHooks::default()
    };
    let server = server(hooks);
    let started = tokio::time::Instant::now();
    let (raw, task) = start(&server);
    let mut raw = raw.patient();
    // No keep-alive, so only the expiry can end the connection.
    raw.send(&connect_packet("dev1", false, 0)).await;
    assert!(matches!(raw.expect().await, Packet::Connack(_)));
    raw.expect_closed().await;
    assert_eq!(task.await.unwrap(), DisconnectReason::TokenExpired);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3599) && elapsed <= Duration::from_hours(1),
        "{elapsed:?}"
    );
}
