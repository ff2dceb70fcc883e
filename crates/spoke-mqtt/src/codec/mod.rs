//! MQTT 3.1.1 packets and their wire encoding (OASIS MQTT 3.1.1, chapters 2 and 3).
//!
//! This module owns the bytes ↔ [`Packet`] conversion and nothing else: no I/O, no session
//! state. [`decode`] is incremental (it returns `Ok(None)` until a whole packet is buffered),
//! enforces the maximum packet size as soon as the fixed header is readable (before the body is
//! buffered), and splits PUBLISH payloads out of the read buffer without copying.
//!
//! Invariants of every decoded packet (so that encoding it again is always possible and
//! decoding that gives the same packet):
//! - strings are UTF-8 without U+0000 and at most 65,535 bytes (§1.5.3);
//! - PUBLISH topics are valid topic names, SUBSCRIBE/UNSUBSCRIBE filters valid filters (§4.7);
//! - packet identifiers of QoS > 0 PUBLISH, SUBSCRIBE and UNSUBSCRIBE are non-zero (§2.3.1);
//! - SUBSCRIBE and UNSUBSCRIBE carry at least one filter (§3.8.3, §3.10.3).

mod decode;
mod encode;

use std::num::NonZeroU16;

use bytes::Bytes;

pub use decode::{DecodeError, decode, frame_length};
pub(crate) use encode::encode_publish;

/// The largest Remaining Length the variable-length encoding can express (MQTT 3.1.1 §2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Quality of service levels (MQTT 3.1.1 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0: at most once.
    AtMostOnce = 0,
    /// QoS 1: at least once.
    AtLeastOnce = 1,
    /// QoS 2: exactly once (decoded only so that it can be refused).
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value 0-2.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A non-zero packet identifier (MQTT 3.1.1 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The identifier for `value`, or `None` for 0 (which MQTT forbids).
    pub fn new(value: u16) -> Option<Self> {
        NonZeroU16::new(value).map(Self)
    }

    /// The wire value.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

/// The QoS of a PUBLISH together with its packet identifier, present exactly when QoS > 0
/// (MQTT 3.1.1 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosPid {
    /// QoS 0, no packet identifier.
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS level.
    pub fn qos(self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce(_) => QoS::AtLeastOnce,
            Self::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, if QoS > 0.
    pub fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce(id) | Self::ExactlyOnce(id) => Some(id),
        }
    }
}

/// CONNACK return codes (MQTT 3.1.1 §3.2.2.3, table 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: malformed user name or password.
    BadUsernameOrPassword = 4,
    /// 5: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a wire value 0-5.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUsernameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The Will message of a CONNECT (MQTT 3.1.1 §3.1.2.5-§3.1.2.7, §3.1.3.2-§3.1.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Will topic (a topic name).
    pub topic: String,
    /// Will message.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
}

/// CONNECT (MQTT 3.1.1 §3.1). Only protocol name `MQTT` level 4 decodes to this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// CleanSession flag (§3.1.2.4).
    pub clean_session: bool,
    /// Keep-alive in seconds, 0 = none (§3.1.2.10).
    pub keep_alive: u16,
    /// Client identifier, possibly empty (§3.1.3.1).
    pub client_id: String,
    /// Will message, if the Will flag is set.
    pub will: Option<Will>,
    /// User name (§3.1.3.4).
    pub username: Option<String>,
    /// Password: binary data, only present with a user name (§3.1.2.9, §3.1.3.5).
    pub password: Option<Bytes>,
}

/// CONNACK (MQTT 3.1.1 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connack {
    /// Session Present flag; always false unless the code is `Accepted` (§3.2.2.2).
    pub session_present: bool,
    /// Return code.
    pub code: ConnectReturnCode,
}

/// PUBLISH (MQTT 3.1.1 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag; always false for QoS 0 (§3.3.1.1).
    pub dup: bool,
    /// QoS and packet identifier.
    pub qos_pid: QosPid,
    /// RETAIN flag (§3.3.1.3).
    pub retain: bool,
    /// Topic name.
    pub topic: String,
    /// Application message, split out of the read buffer without copying.
    pub payload: Bytes,
}

/// A SUBACK return code (MQTT 3.1.1 §3.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubackCode {
    /// Subscription granted at this maximum QoS.
    Granted(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

/// SUBSCRIBE (MQTT 3.1.1 §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Topic filters with their requested QoS, in order; never empty.
    pub filters: Vec<(String, QoS)>,
}

/// SUBACK (MQTT 3.1.1 §3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suback {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One code per filter, in the order of the SUBSCRIBE.
    pub codes: Vec<SubackCode>,
}

/// UNSUBSCRIBE (MQTT 3.1.1 §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Topic filters; never empty.
    pub filters: Vec<String>,
}

/// An MQTT 3.1.1 control packet (§2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (§3.1).
    Connect(Connect),
    /// CONNACK (§3.2).
    Connack(Connack),
    /// PUBLISH (§3.3).
    Publish(Publish),
    /// PUBACK (§3.4).
    Puback(PacketId),
    /// PUBREC (§3.5); QoS 2 is refused, so this exists to be recognised and rejected.
    Pubrec(PacketId),
    /// PUBREL (§3.6); see `Pubrec`.
    Pubrel(PacketId),
    /// PUBCOMP (§3.7); see `Pubrec`.
    Pubcomp(PacketId),
    /// SUBSCRIBE (§3.8).
    Subscribe(Subscribe),
    /// SUBACK (§3.9).
    Suback(Suback),
    /// UNSUBSCRIBE (§3.10).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (§3.11).
    Unsuback(PacketId),
    /// PINGREQ (§3.12).
    Pingreq,
    /// PINGRESP (§3.13).
    Pingresp,
    /// DISCONNECT (§3.14).
    Disconnect,
}

impl Packet {
    /// The packet's name as in the specification, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connect(_) => "CONNECT",
            Self::Connack(_) => "CONNACK",
            Self::Publish(_) => "PUBLISH",
            Self::Puback(_) => "PUBACK",
            Self::Pubrec(_) => "PUBREC",
            Self::Pubrel(_) => "PUBREL",
            Self::Pubcomp(_) => "PUBCOMP",
            Self::Subscribe(_) => "SUBSCRIBE",
            Self::Suback(_) => "SUBACK",
            Self::Unsubscribe(_) => "UNSUBSCRIBE",
            Self::Unsuback(_) => "UNSUBACK",
            Self::Pingreq => "PINGREQ",
            Self::Pingresp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
        }
    }
}
