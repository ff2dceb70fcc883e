//! Fuzz entry points (called by the `fuzz/` targets and by `tests/fuzz_smoke.rs`). They must
//! never panic on any input; they assert round-trip properties.

use bytes::BytesMut;

use crate::codec::{self, MAX_REMAINING_LENGTH};
use crate::topic;

/// Decodes packets from `data` until it is exhausted or invalid; every decoded packet must
/// encode and decode back to an equal packet, consuming exactly its encoding.
pub fn fuzz_decode(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = codec::decode(&mut buf, MAX_REMAINING_LENGTH + 5) {
        let mut encoded = BytesMut::new();
        packet.encode(&mut encoded);
        let again = codec::decode(&mut encoded, MAX_REMAINING_LENGTH + 5);
        assert_eq!(
            again,
            Ok(Some(packet)),
            "re-encoded packet decodes differently"
        );
        assert!(encoded.is_empty(), "re-encoded packet has trailing bytes");
    }
}

/// Splits `data` at the first NUL into a filter and a topic and checks matching invariants:
/// a valid topic name matches itself, `#` matches every topic not starting with `$`.
pub fn fuzz_topic_match(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (filter, name) = text.split_once('\0').unwrap_or((&text, &text));
    let _ = topic::matches(filter, name);
    if topic::validate_name(name).is_ok() {
        assert!(topic::matches(name, name), "a topic name must match itself");
        assert_eq!(topic::matches("#", name), !name.starts_with('$'));
    }
}
