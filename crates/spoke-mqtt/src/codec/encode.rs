//! Encoding of MQTT 3.1.1 packets into a write buffer.
//!
//! Each packet's Remaining Length is computed first, so the bytes are written once, straight
//! into the caller's buffer (no intermediate allocation).

use bytes::{BufMut, BytesMut};

use super::{
    Connack, Connect, MAX_REMAINING_LENGTH, Packet, PacketId, Publish, QosPid, Suback, SubackCode,
    Subscribe, Unsubscribe,
};

impl Packet {
    /// Appends the packet's wire form to `out`.
    ///
    /// # Panics
    ///
    /// If a string or binary field is longer than 65,535 bytes, or the packet longer than MQTT
    /// allows (§2.2.3, §1.5.3). Decoded packets never are; callers building packets from
    /// application input check the sizes first (as `Server::publish` does).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Connect(c) => encode_connect(c, out),
            Self::Connack(c) => encode_connack(*c, out),
            Self::Publish(p) => p.encode(out),
            Self::Puback(id) => encode_ack(0x40, *id, out),
            Self::Pubrec(id) => encode_ack(0x50, *id, out),
            Self::Pubrel(id) => encode_ack(0x62, *id, out),
            Self::Pubcomp(id) => encode_ack(0x70, *id, out),
            Self::Subscribe(s) => encode_subscribe(s, out),
            Self::Suback(s) => encode_suback(s, out),
            Self::Unsubscribe(u) => encode_unsubscribe(u, out),
            Self::Unsuback(id) => encode_ack(0xb0, *id, out),
            Self::Pingreq => out.put_slice(&[0xc0, 0]),
            Self::Pingresp => out.put_slice(&[0xd0, 0]),
            Self::Disconnect => out.put_slice(&[0xe0, 0]),
        }
    }
}

impl Publish {
    /// Appends the PUBLISH's wire form to `out`; see [`Packet::encode`].
    pub fn encode(&self, out: &mut BytesMut) {
        encode_publish(
            out,
            self.dup,
            self.qos_pid,
            self.retain,
            &self.topic,
            &self.payload,
        );
    }
}

/// PUBLISH from borrowed parts (MQTT 3.1.1 §3.3), so outbound messages held in a session are
/// encoded without cloning their topic.
pub(crate) fn encode_publish(
    out: &mut BytesMut,
    dup: bool,
    qos_pid: QosPid,
    retain: bool,
    topic: &str,
    payload: &[u8],
) {
    let id_len = if qos_pid.packet_id().is_some() { 2 } else { 0 };
    let remaining = str_len(topic) + id_len + payload.len();
    let byte1 = 0x30 | (u8::from(dup) << 3) | (qos_pid.qos().as_u8() << 1) | u8::from(retain);
    out.reserve(5 + remaining);
    put_header(out, byte1, remaining);
    put_binary(out, topic.as_bytes());
    if let Some(id) = qos_pid.packet_id() {
        out.put_u16(id.get());
    }
    out.put_slice(payload);
}

/// CONNECT (MQTT 3.1.1 §3.1), always protocol `MQTT` level 4.
fn encode_connect(c: &Connect, out: &mut BytesMut) {
    let mut remaining = str_len("MQTT") + 1 + 1 + 2 + str_len(&c.client_id);
    let mut flags = u8::from(c.clean_session) << 1;
    if let Some(will) = &c.will {
        remaining += str_len(&will.topic) + 2 + will.payload.len();
        flags |= 0x04 | (will.qos.as_u8() << 3) | (u8::from(will.retain) << 5);
    }
    if let Some(username) = &c.username {
        remaining += str_len(username);
        flags |= 0x80;
    }
    if let Some(password) = &c.password {
        remaining += 2 + password.len();
        flags |= 0x40;
    }
    out.reserve(5 + remaining);
    put_header(out, 0x10, remaining);
    put_binary(out, b"MQTT");
    out.put_u8(4);
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    put_binary(out, c.client_id.as_bytes());
    if let Some(will) = &c.will {
        put_binary(out, will.topic.as_bytes());
        put_binary(out, &will.payload);
    }
    if let Some(username) = &c.username {
        put_binary(out, username.as_bytes());
    }
    if let Some(password) = &c.password {
        put_binary(out, password);
    }
}

/// CONNACK (MQTT 3.1.1 §3.2).
fn encode_connack(c: Connack, out: &mut BytesMut) {
    out.put_slice(&[0x20, 2, u8::from(c.session_present), c.code.as_u8()]);
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet identifier only.
fn encode_ack(byte1: u8, id: PacketId, out: &mut BytesMut) {
    out.reserve(4);
    out.put_u8(byte1);
    out.put_u8(2);
    out.put_u16(id.get());
}

/// SUBSCRIBE (MQTT 3.1.1 §3.8).
fn encode_subscribe(s: &Subscribe, out: &mut BytesMut) {
    let remaining = 2 + s.filters.iter().map(|(f, _)| str_len(f) + 1).sum::<usize>();
    out.reserve(5 + remaining);
    put_header(out, 0x82, remaining);
    out.put_u16(s.packet_id.get());
    for (filter, qos) in &s.filters {
        put_binary(out, filter.as_bytes());
        out.put_u8(qos.as_u8());
    }
}

/// SUBACK (MQTT 3.1.1 §3.9).
fn encode_suback(s: &Suback, out: &mut BytesMut) {
    let remaining = 2 + s.codes.len();
    out.reserve(5 + remaining);
    put_header(out, 0x90, remaining);
    out.put_u16(s.packet_id.get());
    for code in &s.codes {
        out.put_u8(match code {
            SubackCode::Granted(qos) => qos.as_u8(),
            SubackCode::Failure => 0x80,
        });
    }
}

/// UNSUBSCRIBE (MQTT 3.1.1 §3.10).
fn encode_unsubscribe(u: &Unsubscribe, out: &mut BytesMut) {
    let remaining = 2 + u.filters.iter().map(|f| str_len(f)).sum::<usize>();
    out.reserve(5 + remaining);
    put_header(out, 0xa2, remaining);
    out.put_u16(u.packet_id.get());
    for filter in &u.filters {
        put_binary(out, filter.as_bytes());
    }
}

/// Fixed header: first byte and the variable-length Remaining Length (MQTT 3.1.1 §2.2.3).
fn put_header(out: &mut BytesMut, byte1: u8, remaining: usize) {
    assert!(
        remaining <= MAX_REMAINING_LENGTH,
        "MQTT packets hold at most {MAX_REMAINING_LENGTH} bytes after the fixed header"
    );
    out.put_u8(byte1);
    let mut value = remaining;
    loop {
        let digit = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.put_u8(digit);
            return;
        }
        out.put_u8(digit | 0x80);
    }
}

/// Encoded size of a string: two length bytes plus the UTF-8 bytes (MQTT 3.1.1 §1.5.3).
fn str_len(s: &str) -> usize {
    2 + s.len()
}

/// Two-byte big-endian length then the bytes (MQTT 3.1.1 §1.5.3, §3.1.3.5).
fn put_binary(out: &mut BytesMut, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("MQTT strings hold at most 65,535 bytes");
    out.put_u16(len);
    out.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_boundaries() {
        // MQTT 3.1.1 §2.2.3, table 2.4.
        for (value, bytes) in [
            (0usize, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xff, 0xff, 0xff, 0x7f]),
        ] {
            let mut out = BytesMut::new();
            put_header(&mut out, 0x30, value);
            assert_eq!(&out[1..], bytes, "{value}");
        }
    }

    #[test]
    fn puback_bytes() {
        let mut out = BytesMut::new();
        Packet::Puback(PacketId::new(0x1234).unwrap()).encode(&mut out);
        assert_eq!(&out[..], &[0x40, 0x02, 0x12, 0x34]);
    }
}
