//! Codec properties (encode → decode round trips, incremental decoding) and a table of
//! malformed packets with the error each must produce.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use spoke_mqtt::codec::{
    Connack, Connect, ConnectReturnCode, DecodeError, Packet, PacketId, Publish, QoS, QosPid,
    Suback, SubackCode, Subscribe, Unsubscribe, Will, decode, frame_length,
};
use spoke_mqtt::topic::TopicError;

const MAX: usize = 1 << 20;

fn qos() -> impl Strategy<Value = QoS> {
    (0u8..3).prop_map(|q| QoS::from_u8(q).unwrap())
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|v| PacketId::new(v).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn topic_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9$/%=&.é]{1,24}".prop_filter("no wildcards", |t| !t.contains(['+', '#']))
}

fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("+".to_owned()), "[a-z$]{0,4}"];
    (prop::collection::vec(level, 1..4), any::<bool>())
        .prop_map(|(levels, hash)| {
            let mut filter = levels.join("/");
            if hash {
                filter.push_str("/#");
            }
            filter
        })
        .prop_filter("non-empty", |f| !f.is_empty())
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn connect() -> impl Strategy<Value = Connect> {
    let will = prop::option::of((topic_name(), payload(), qos(), any::<bool>()).prop_map(
        |(topic, payload, qos, retain)| Will {
            topic,
            payload,
            qos,
            retain,
        },
    ));
    let credentials = prop::option::of((text(), prop::option::of(payload())));
    (any::<bool>(), any::<u16>(), text(), will, credentials).prop_map(
        |(clean_session, keep_alive, client_id, will, credentials)| {
            let (username, password) = match credentials {
                Some((user, password)) => (Some(user), password),
                None => (None, None),
            };
            Connect {
                clean_session,
                keep_alive,
                client_id,
                will,
                username,
                password,
            }
        },
    )
}

fn publish() -> impl Strategy<Value = Publish> {
    let qos_pid = prop_oneof![
        Just(QosPid::AtMostOnce),
        packet_id().prop_map(QosPid::AtLeastOnce),
        packet_id().prop_map(QosPid::ExactlyOnce),
    ];
    (
        qos_pid,
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        payload(),
    )
        .prop_map(|(qos_pid, dup, retain, topic, payload)| Publish {
            dup: dup && qos_pid != QosPid::AtMostOnce,
            qos_pid,
            retain,
            topic,
            payload,
        })
}

fn return_code() -> impl Strategy<Value = ConnectReturnCode> {
    (0u8..6).prop_map(|c| ConnectReturnCode::from_u8(c).unwrap())
}

fn packet() -> impl Strategy<Value = Packet> {
    let suback_code = prop_oneof![
        qos().prop_map(SubackCode::Granted),
        Just(SubackCode::Failure)
    ];
    prop_oneof![
        connect().prop_map(Packet::Connect),
        (any::<bool>(), return_code()).prop_map(|(sp, code)| Packet::Connack(Connack {
            session_present: sp && code == ConnectReturnCode::Accepted,
            code
        })),
        publish().prop_map(Packet::Publish),
        packet_id().prop_map(Packet::Puback),
        packet_id().prop_map(Packet::Pubrec),
        packet_id().prop_map(Packet::Pubrel),
        packet_id().prop_map(Packet::Pubcomp),
        (
            packet_id(),
            prop::collection::vec((topic_filter(), qos()), 1..4)
        )
            .prop_map(|(packet_id, filters)| Packet::Subscribe(Subscribe { packet_id, filters })),
        (packet_id(), prop::collection::vec(suback_code, 1..4))
            .prop_map(|(packet_id, codes)| Packet::Suback(Suback { packet_id, codes })),
        (packet_id(), prop::collection::vec(topic_filter(), 1..4)).prop_map(
            |(packet_id, filters)| Packet::Unsubscribe(Unsubscribe { packet_id, filters })
        ),
        packet_id().prop_map(Packet::Unsuback),
        Just(Packet::Pingreq),
        Just(Packet::Pingresp),
        Just(Packet::Disconnect),
    ]
}

fn encode_all(packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(&mut out);
    }
    out
}

proptest! {
    #[test]
    fn round_trip(packets in prop::collection::vec(packet(), 1..6)) {
        let mut buf = encode_all(&packets);
        for expected in &packets {
            prop_assert_eq!(decode(&mut buf, MAX), Ok(Some(expected.clone())));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decode(&mut buf, MAX), Ok(None));
    }

    #[test]
    fn byte_by_byte(packet in packet()) {
        let whole = encode_all(std::slice::from_ref(&packet));
        let mut buf = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let decoded = decode(&mut buf, MAX);
            if i + 1 < whole.len() {
                prop_assert_eq!(decoded, Ok(None), "complete after {} of {} bytes", i + 1, whole.len());
            } else {
                prop_assert_eq!(decoded, Ok(Some(packet.clone())));
            }
        }
    }
}

fn decode_bytes(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode(&mut BytesMut::from(bytes), MAX)
}

/// A CONNECT body after the protocol name, as `MQTT` level 4 with `flags`.
fn connect_bytes(flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60];
    body.extend_from_slice(rest);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

#[test]
fn malformed_packets() {
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        (
            "reserved type 0",
            vec![0x00, 0],
            DecodeError::ReservedPacketType(0),
        ),
        (
            "reserved type 15",
            vec![0xf0, 0],
            DecodeError::ReservedPacketType(15),
        ),
        (
            "5-byte remaining length",
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            DecodeError::MalformedRemainingLength,
        ),
        (
            "SUBSCRIBE flags 0000",
            vec![0x80, 5, 0, 1, 0, 1, b'a'],
            DecodeError::InvalidFlags {
                packet_type: 8,
                flags: 0,
            },
        ),
        (
            "PUBACK flags",
            vec![0x41, 2, 0, 1],
            DecodeError::InvalidFlags {
                packet_type: 4,
                flags: 1,
            },
        ),
        (
            "PUBLISH QoS 3",
            vec![0x36, 3, 0, 1, b'a'],
            DecodeError::InvalidQoS(3),
        ),
        (
            "DUP on QoS 0",
            vec![0x38, 3, 0, 1, b'a'],
            DecodeError::InvalidFlags {
                packet_type: 3,
                flags: 8,
            },
        ),
        (
            "PUBLISH QoS 1 id 0",
            vec![0x32, 5, 0, 1, b'a', 0, 0],
            DecodeError::ZeroPacketId,
        ),
        (
            "PUBACK id 0",
            vec![0x40, 2, 0, 0],
            DecodeError::ZeroPacketId,
        ),
        (
            "wildcard in PUBLISH topic",
            vec![0x30, 5, 0, 3, b'a', b'/', b'+'],
            DecodeError::InvalidTopicName(TopicError::Wildcard),
        ),
        (
            "empty PUBLISH topic",
            vec![0x30, 2, 0, 0],
            DecodeError::InvalidTopicName(TopicError::Empty),
        ),
        (
            "invalid UTF-8 topic",
            vec![0x30, 4, 0, 2, 0xc3, 0x28],
            DecodeError::InvalidUtf8,
        ),
        (
            "U+0000 in topic",
            vec![0x30, 4, 0, 2, b'a', 0],
            DecodeError::NullCharacter,
        ),
        (
            "string past the end",
            vec![0x30, 3, 0, 5, b'a'],
            DecodeError::Truncated,
        ),
        (
            "PUBACK too long",
            vec![0x40, 3, 0, 1, 0],
            DecodeError::TrailingBytes,
        ),
        (
            "PINGREQ with body",
            vec![0xc0, 1, 0],
            DecodeError::TrailingBytes,
        ),
        (
            "SUBSCRIBE without filters",
            vec![0x82, 2, 0, 1],
            DecodeError::EmptyPayload,
        ),
        (
            "UNSUBSCRIBE without filters",
            vec![0xa2, 2, 0, 1],
            DecodeError::EmptyPayload,
        ),
        (
            "SUBSCRIBE reserved QoS bits",
            vec![0x82, 6, 0, 1, 0, 1, b'a', 0x05],
            DecodeError::InvalidQoS(5),
        ),
        (
            "SUBSCRIBE bad filter",
            vec![0x82, 7, 0, 1, 0, 2, b'a', b'#', 1],
            DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard),
        ),
        (
            "SUBACK code 3",
            vec![0x90, 3, 0, 1, 3],
            DecodeError::InvalidSubackCode(3),
        ),
        (
            "CONNACK code 6",
            vec![0x20, 2, 0, 6],
            DecodeError::InvalidReturnCode(6),
        ),
        (
            "CONNACK SP with refusal",
            vec![0x20, 2, 1, 5],
            DecodeError::InvalidConnackFlags,
        ),
        (
            "MQTT 5 CONNECT",
            vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0],
            DecodeError::UnacceptableProtocolLevel(5),
        ),
        (
            "MQTT 3.1 CONNECT",
            vec![
                0x10, 12, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60,
            ],
            DecodeError::UnacceptableProtocolLevel(3),
        ),
        (
            "unknown protocol name",
            vec![0x10, 12, 0, 4, b'A', b'B', b'C', b'D', 4, 2, 0, 60, 0, 0],
            DecodeError::InvalidProtocolName,
        ),
        (
            "CONNECT reserved flag",
            connect_bytes(0x03, &[0, 1, b'c']),
            DecodeError::InvalidConnectFlags("reserved flag set"),
        ),
        (
            "Will QoS without Will",
            connect_bytes(0x0a, &[0, 1, b'c']),
            DecodeError::InvalidConnectFlags("Will QoS or Will Retain without a Will"),
        ),
        (
            "Will QoS 3",
            connect_bytes(0x1e, &[0, 1, b'c']),
            DecodeError::InvalidQoS(3),
        ),
        (
            "password without user name",
            connect_bytes(0x42, &[0, 1, b'c', 0, 0]),
            DecodeError::InvalidConnectFlags("password without user name"),
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode_bytes(&bytes), Err(expected.clone()), "{name}");
    }
    assert!(DecodeError::UnacceptableProtocolLevel(5).is_unacceptable_protocol());
    assert!(!DecodeError::Truncated.is_unacceptable_protocol());
}

#[test]
fn size_limit_applies_before_the_body_arrives() {
    // Only the fixed header of a 300-byte PUBLISH is buffered.
    let mut buf = BytesMut::from(&[0x30, 0xa9, 0x02][..]);
    assert_eq!(frame_length(&buf), Ok(Some(300)));
    assert_eq!(
        decode(&mut buf, 299),
        Err(DecodeError::TooLarge {
            size: 300,
            max: 299
        })
    );
    assert_eq!(decode(&mut buf, 300), Ok(None));
}

#[test]
fn publish_payload_shares_the_read_buffer() {
    let mut buf = BytesMut::new();
    let publish = Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(PacketId::new(7).unwrap()),
        retain: true,
        topic: "devices/d/messages/events/".into(),
        payload: Bytes::from_static(b"hello"),
    };
    Packet::Publish(publish.clone()).encode(&mut buf);
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let Ok(Some(Packet::Publish(decoded))) = decode(&mut buf, MAX) else {
        panic!("not a PUBLISH");
    };
    let at = decoded.payload.as_ptr() as usize;
    assert!(at >= start && at < end, "payload was copied");
    assert_eq!(decoded, publish);
}

#[test]
fn iot_hub_connect_from_the_spec() {
    // Appendix A of the protocol spec: flags 0xc0, keep-alive 60, username and SAS password.
    let connect = Connect {
        clean_session: false,
        keep_alive: 60,
        client_id: "dev1".into(),
        will: None,
        username: Some("localhost/dev1/?api-version=2019-10-01&DeviceClientType=azure-iot-device-iothub-py%2F2.14.0".into()),
        password: Some(Bytes::from_static(b"SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=abc%3D&se=1700000000")),
    };
    let mut buf = BytesMut::new();
    Packet::Connect(connect.clone()).encode(&mut buf);
    assert_eq!(buf[0], 0x10);
    let name_at = buf.windows(4).position(|w| w == b"MQTT").unwrap();
    assert_eq!(
        (buf[name_at + 4], buf[name_at + 5]),
        (4, 0xc0),
        "level 4, flags 0xc0"
    );
    assert_eq!(decode(&mut buf, MAX), Ok(Some(Packet::Connect(connect))));
}
