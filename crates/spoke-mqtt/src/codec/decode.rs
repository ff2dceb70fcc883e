//! Incremental decoding of MQTT 3.1.1 packets from a read buffer.
//!
//! [`decode`] looks at the fixed header first (MQTT 3.1.1 §2.2): it rejects reserved packet
//! types, wrong reserved flags and oversized packets before the body has arrived, so a peer
//! cannot make the caller buffer more than `max_packet_size` bytes. Only when the whole packet
//! is buffered is it split off (zero-copy) and parsed.

use bytes::{Buf, Bytes, BytesMut};

use super::{
    Connack, Connect, ConnectReturnCode, Packet, PacketId, Publish, QoS, QosPid, Suback,
    SubackCode, Subscribe, Unsubscribe, Will,
};
use crate::topic::{self, TopicError};

/// Why bytes are not a valid MQTT 3.1.1 packet. Every variant except
/// [`DecodeError::UnacceptableProtocolLevel`] means "close the connection without a reply".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The Remaining Length field uses more than four bytes (MQTT 3.1.1 §2.2.3).
    #[error("malformed remaining length")]
    MalformedRemainingLength,
    /// The packet is larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the whole packet (fixed header included).
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Packet type 0 or 15 (MQTT 3.1.1 §2.2.1).
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    /// Fixed-header flags that §2.2.2 reserves (or DUP set on QoS 0, §3.3.1.1).
    #[error("invalid flags {flags:#06b} for packet type {packet_type}")]
    InvalidFlags {
        /// Packet type (upper nibble of the first byte).
        packet_type: u8,
        /// Flags (lower nibble).
        flags: u8,
    },
    /// A QoS value of 3, or reserved bits set in a requested QoS byte (§3.3.1.2, §3.8.3.1).
    #[error("invalid QoS byte {0:#04x}")]
    InvalidQoS(u8),
    /// CONNECT with protocol `MQTT` (or `MQIsdp`) at a level other than 4: answer with CONNACK
    /// return code 1 and close (MQTT 3.1.1 §3.1.2.2).
    #[error("unacceptable protocol level {0}")]
    UnacceptableProtocolLevel(u8),
    /// CONNECT with a protocol name other than `MQTT` (MQTT 3.1.1 §3.1.2.1).
    #[error("invalid protocol name")]
    InvalidProtocolName,
    /// Inconsistent CONNECT flags (MQTT 3.1.1 §3.1.2.3-§3.1.2.9).
    #[error("invalid CONNECT flags: {0}")]
    InvalidConnectFlags(&'static str),
    /// A field runs past the end of the packet.
    #[error("packet truncated")]
    Truncated,
    /// Bytes left over after the last field.
    #[error("trailing bytes after the packet's fields")]
    TrailingBytes,
    /// A string is not well-formed UTF-8 (MQTT 3.1.1 §1.5.3).
    #[error("invalid UTF-8 string")]
    InvalidUtf8,
    /// A string contains U+0000 (MQTT 3.1.1 §1.5.3).
    #[error("string contains U+0000")]
    NullCharacter,
    /// Packet identifier 0 (MQTT 3.1.1 §2.3.1).
    #[error("packet identifier 0")]
    ZeroPacketId,
    /// Invalid PUBLISH or Will topic name (MQTT 3.1.1 §4.7).
    #[error("invalid topic name")]
    InvalidTopicName(#[source] TopicError),
    /// Invalid SUBSCRIBE or UNSUBSCRIBE topic filter (MQTT 3.1.1 §4.7).
    #[error("invalid topic filter")]
    InvalidTopicFilter(#[source] TopicError),
    /// SUBSCRIBE, UNSUBSCRIBE or SUBACK without entries (MQTT 3.1.1 §3.8.3, §3.10.3).
    #[error("empty payload")]
    EmptyPayload,
    /// Reserved CONNACK flags, or Session Present with a refusal (MQTT 3.1.1 §3.2.2).
    #[error("invalid CONNACK flags")]
    InvalidConnackFlags,
    /// CONNACK return code above 5 (MQTT 3.1.1 §3.2.2.3).
    #[error("invalid CONNACK return code {0}")]
    InvalidReturnCode(u8),
    /// SUBACK return code other than 0, 1, 2 or 0x80 (MQTT 3.1.1 §3.9.3).
    #[error("invalid SUBACK return code {0:#04x}")]
    InvalidSubackCode(u8),
}

impl DecodeError {
    /// Whether the server should answer CONNACK 1 ("unacceptable protocol version") before
    /// closing, rather than just closing.
    pub fn is_unacceptable_protocol(&self) -> bool {
        matches!(self, Self::UnacceptableProtocolLevel(_))
    }
}

/// Decodes one packet from the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed (nothing is consumed), `Ok(Some(packet))`
/// after removing the packet's bytes from `buf`, or an error as soon as the buffered bytes
/// prove the packet invalid or larger than `max_packet_size` (whole packet, fixed header
/// included). PUBLISH payloads share `buf`'s allocation.
pub fn decode(buf: &mut BytesMut, max_packet_size: usize) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = fixed_header(buf)? else {
        return Ok(None);
    };
    let total = header.len + header.remaining;
    if total > max_packet_size {
        return Err(DecodeError::TooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    if buf.len() < total {
        return Ok(None);
    }
    let mut body = buf.split_to(total).freeze();
    body.advance(header.len);
    parse(header.byte1, Reader(body)).map(Some)
}

/// The length of the packet at the front of `buf` (fixed header included), once its fixed
/// header is complete; lets a reader reserve room for the rest of the packet.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    Ok(fixed_header(buf)?.map(|h| h.len + h.remaining))
}

struct FixedHeader {
    byte1: u8,
    /// Length of the fixed header itself (2-5 bytes).
    len: usize,
    /// Remaining Length.
    remaining: usize,
}

/// Parses the fixed header and checks the packet type and flags (MQTT 3.1.1 §2.2).
fn fixed_header(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    check_type_and_flags(byte1)?;
    let mut remaining = 0usize;
    // §2.2.3: at most four bytes, 7 bits each, least significant group first.
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(FixedHeader {
                byte1,
                len: 2 + i,
                remaining,
            }));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

fn check_type_and_flags(byte1: u8) -> Result<(), DecodeError> {
    let packet_type = byte1 >> 4;
    let flags = byte1 & 0x0f;
    let expected = match packet_type {
        0 | 15 => return Err(DecodeError::ReservedPacketType(packet_type)),
        3 => {
            // §3.3.1.2: QoS 3 is malformed; §3.3.1.1: DUP is 0 for QoS 0.
            let qos = (flags >> 1) & 0x03;
            if qos == 3 {
                return Err(DecodeError::InvalidQoS(qos));
            }
            if qos == 0 && flags & 0x08 != 0 {
                return Err(DecodeError::InvalidFlags { packet_type, flags });
            }
            return Ok(());
        }
        // §2.2.2: PUBREL, SUBSCRIBE and UNSUBSCRIBE have flags 0010.
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags == expected {
        Ok(())
    } else {
        Err(DecodeError::InvalidFlags { packet_type, flags })
    }
}

fn parse(byte1: u8, mut r: Reader) -> Result<Packet, DecodeError> {
    let packet = match byte1 >> 4 {
        1 => Packet::Connect(parse_connect(&mut r)?),
        2 => Packet::Connack(parse_connack(&mut r)?),
        3 => Packet::Publish(parse_publish(byte1, &mut r)?),
        4 => Packet::Puback(r.packet_id()?),
        5 => Packet::Pubrec(r.packet_id()?),
        6 => Packet::Pubrel(r.packet_id()?),
        7 => Packet::Pubcomp(r.packet_id()?),
        8 => Packet::Subscribe(parse_subscribe(&mut r)?),
        9 => Packet::Suback(parse_suback(&mut r)?),
        10 => Packet::Unsubscribe(parse_unsubscribe(&mut r)?),
        11 => Packet::Unsuback(r.packet_id()?),
        12 => Packet::Pingreq,
        13 => Packet::Pingresp,
        // 14; 0 and 15 were rejected with the fixed header.
        _ => Packet::Disconnect,
    };
    r.finish()?;
    Ok(packet)
}

/// CONNECT (MQTT 3.1.1 §3.1.2, §3.1.3).
fn parse_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    match (&name[..], level) {
        (b"MQTT", 4) => {}
        // §3.1.2.2: a level we do not support gets CONNACK 1. MQTT 3.1 ("MQIsdp") too.
        (b"MQTT" | b"MQIsdp", _) => return Err(DecodeError::UnacceptableProtocolLevel(level)),
        _ => return Err(DecodeError::InvalidProtocolName),
    }
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::InvalidConnectFlags("reserved flag set")); // §3.1.2.3
    }
    let has_will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !has_will && (will_qos != 0 || will_retain) {
        // §3.1.2.6, §3.1.2.7
        return Err(DecodeError::InvalidConnectFlags(
            "Will QoS or Will Retain without a Will",
        ));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQoS(will_qos))?;
    if has_password && !has_username {
        return Err(DecodeError::InvalidConnectFlags(
            "password without user name",
        )); // §3.1.2.9
    }
    let keep_alive = r.u16()?;
    let client_id = r.string()?;
    let will = if has_will {
        let topic = r.string()?;
        topic::validate_name(&topic).map_err(DecodeError::InvalidTopicName)?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        clean_session: flags & 0x02 != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

/// CONNACK (MQTT 3.1.1 §3.2.2).
fn parse_connack(r: &mut Reader) -> Result<Connack, DecodeError> {
    let flags = r.u8()?;
    let code = r.u8()?;
    let code = ConnectReturnCode::from_u8(code).ok_or(DecodeError::InvalidReturnCode(code))?;
    let session_present = flags == 1;
    if flags > 1 || (session_present && code != ConnectReturnCode::Accepted) {
        return Err(DecodeError::InvalidConnackFlags);
    }
    Ok(Connack {
        session_present,
        code,
    })
}

/// PUBLISH (MQTT 3.1.1 §3.3.1-§3.3.3); flags were checked with the fixed header.
fn parse_publish(byte1: u8, r: &mut Reader) -> Result<Publish, DecodeError> {
    let topic = r.string()?;
    topic::validate_name(&topic).map_err(DecodeError::InvalidTopicName)?;
    let qos_pid = match (byte1 >> 1) & 0x03 {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(r.packet_id()?),
        _ => QosPid::ExactlyOnce(r.packet_id()?),
    };
    Ok(Publish {
        dup: byte1 & 0x08 != 0,
        qos_pid,
        retain: byte1 & 0x01 != 0,
        topic,
        payload: r.rest(),
    })
}

/// SUBSCRIBE (MQTT 3.1.1 §3.8.2-§3.8.3).
fn parse_subscribe(r: &mut Reader) -> Result<Subscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut filters = Vec::new();
    while r.has_remaining() {
        let filter = r.string()?;
        topic::validate_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
        let options = r.u8()?;
        // §3.8.3.1: upper six bits reserved, QoS 3 malformed.
        let qos = QoS::from_u8(options).ok_or(DecodeError::InvalidQoS(options))?;
        filters.push((filter, qos));
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyPayload);
    }
    Ok(Subscribe { packet_id, filters })
}

/// SUBACK (MQTT 3.1.1 §3.9.2-§3.9.3).
fn parse_suback(r: &mut Reader) -> Result<Suback, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut codes = Vec::new();
    while r.has_remaining() {
        let code = r.u8()?;
        codes.push(match code {
            0x80 => SubackCode::Failure,
            _ => {
                SubackCode::Granted(QoS::from_u8(code).ok_or(DecodeError::InvalidSubackCode(code))?)
            }
        });
    }
    if codes.is_empty() {
        return Err(DecodeError::EmptyPayload);
    }
    Ok(Suback { packet_id, codes })
}

/// UNSUBSCRIBE (MQTT 3.1.1 §3.10.2-§3.10.3).
fn parse_unsubscribe(r: &mut Reader) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut filters = Vec::new();
    while r.has_remaining() {
        let filter = r.string()?;
        topic::validate_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyPayload);
    }
    Ok(Unsubscribe { packet_id, filters })
}

/// A cursor over one packet's variable header and payload.
struct Reader(Bytes);

impl Reader {
    fn has_remaining(&self) -> bool {
        !self.0.is_empty()
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.0.is_empty() {
            return Err(DecodeError::Truncated);
        }
        Ok(self.0.get_u8())
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.0.len() < 2 {
            return Err(DecodeError::Truncated);
        }
        Ok(self.0.get_u16())
    }

    fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::ZeroPacketId)
    }

    /// Two-byte length then that many bytes (MQTT 3.1.1 §1.5.3 strings, §3.1.3 binary).
    fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        if self.0.len() < len {
            return Err(DecodeError::Truncated);
        }
        Ok(self.0.split_to(len))
    }

    /// A UTF-8 encoded string (MQTT 3.1.1 §1.5.3): well-formed, no U+0000.
    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.binary()?;
        let s = std::str::from_utf8(&bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::NullCharacter);
        }
        Ok(s.to_owned())
    }

    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.0)
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
