//! A routed message as stored in a queue entry: `bag_len: u32 LE | property bag | body`.
//!
//! The property bag is the wire encoding of [`Message::property_bag`] (spec §3.5), so system
//! properties — the sender's `$.cdid`/`$.cmid` among them — and application properties are
//! kept exactly as they will be sent. Decoding never panics: a damaged entry is an error the
//! delivery loop logs and drops.

use bytes::{BufMut as _, Bytes, BytesMut};
use spoke_core::message::{Message, PropError};

/// Why a stored entry could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than its header says.
    #[error("truncated queue entry")]
    Truncated,
    /// The property bag is not valid.
    #[error("invalid property bag in queue entry")]
    Bag(#[source] PropError),
    /// The property bag is not UTF-8.
    #[error("property bag in queue entry is not UTF-8")]
    Utf8,
}

/// Encodes `message` for a queue.
pub fn encode(message: &Message) -> Bytes {
    let bag = message.property_bag();
    let mut out = BytesMut::with_capacity(4 + bag.len() + message.body.len());
    out.put_u32_le(u32::try_from(bag.len()).unwrap_or(u32::MAX));
    out.put_slice(bag.as_bytes());
    out.put_slice(&message.body);
    out.freeze()
}

/// Decodes a queue entry.
pub fn decode(entry: &[u8]) -> Result<Message, EnvelopeError> {
    let (len, rest) = entry
        .split_first_chunk::<4>()
        .ok_or(EnvelopeError::Truncated)?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| EnvelopeError::Truncated)?;
    if rest.len() < len {
        return Err(EnvelopeError::Truncated);
    }
    let (bag, body) = rest.split_at(len);
    let bag = std::str::from_utf8(bag).map_err(|_| EnvelopeError::Utf8)?;
    Message::from_property_bag(body.to_vec(), bag).map_err(EnvelopeError::Bag)
}

/// Fuzz entry point: decoding arbitrary bytes never panics, and what decodes re-encodes to
/// something that decodes to the same message.
pub fn fuzz_envelope(data: &[u8]) {
    if let Ok(message) = decode(data) {
        let again = decode(&encode(&message)).expect("an encoded message decodes");
        assert_eq!(again, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_system_and_application_properties() {
        let mut message = Message::new(b"{\"t\":1}".to_vec());
        message.system.content_type = Some("application/json".into());
        message.system.connection_module_id = Some("sensor".into());
        message.app.push(("alert".into(), Some("yes & no".into())));
        let decoded = decode(&encode(&message)).unwrap();
        assert_eq!(decoded, message);
    }

    #[test]
    fn damaged_entries_are_errors() {
        assert!(matches!(decode(b"\x01"), Err(EnvelopeError::Truncated)));
        assert!(matches!(
            decode(b"\x09\0\0\0abc"),
            Err(EnvelopeError::Truncated)
        ));
        assert!(matches!(
            decode(b"\x01\0\0\0\xff"),
            Err(EnvelopeError::Utf8)
        ));
        for input in [&b""[..], b"\x03\0\0\0a=%", b"\0\0\0\0body"] {
            fuzz_envelope(input);
        }
    }
}
