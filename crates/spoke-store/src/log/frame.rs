//! Record framing: bytes ↔ records, with no I/O.
//!
//! One frame on disk (all integers little-endian, see the module doc of [`crate::log`]):
//!
//! ```text
//! | len: u32 | crc32: u32 | offset: u64 | timestamp_ms: i64 | payload: len bytes |
//! ```
//!
//! The CRC-32 (IEEE, as zlib) covers `len`, `offset`, `timestamp_ms` and the payload, so a
//! torn or bit-flipped frame — including a damaged length — is detected.

use std::fmt;

/// Bytes of the fixed frame header that precedes every payload.
pub(crate) const HEADER_LEN: usize = 24;

/// The largest payload a frame may carry. A length field above it is corruption, which keeps
/// a damaged length from making a reader allocate or skip gigabytes.
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;

/// Why bytes at some position are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptReason {
    /// The file ends inside the frame header or payload.
    Truncated,
    /// The length field exceeds [`MAX_PAYLOAD_LEN`].
    LengthTooLarge(u32),
    /// The stored checksum does not match the frame's contents.
    BadChecksum,
    /// The frame is intact but carries another offset than its position implies.
    OffsetMismatch {
        /// The offset the position implies.
        expected: u64,
        /// The offset stored in the frame.
        found: u64,
    },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated frame"),
            Self::LengthTooLarge(len) => {
                write!(f, "length {len} exceeds the maximum of {MAX_PAYLOAD_LEN}")
            }
            Self::BadChecksum => f.write_str("checksum mismatch"),
            Self::OffsetMismatch { expected, found } => {
                write!(f, "expected offset {expected}, found {found}")
            }
        }
    }
}

/// A frame decoded from the front of a buffer; the payload is `buf[HEADER_LEN..frame_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub offset: u64,
    pub timestamp_ms: i64,
    /// Total bytes of the frame, header included.
    pub frame_len: usize,
}

/// The outcome of decoding the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A complete, checksum-valid frame.
    Frame(FrameHeader),
    /// The buffer holds only the first part of a frame whose total length is this many bytes
    /// (or, when the header itself is incomplete, at least this many).
    Incomplete(usize),
    /// The bytes cannot start a valid frame.
    Corrupt(CorruptReason),
}

/// Total frame length for a payload of `payload_len` bytes.
pub(crate) const fn frame_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len
}

/// Appends one frame to `buf`. The caller has checked `payload.len() <= MAX_PAYLOAD_LEN`.
pub(crate) fn encode(buf: &mut Vec<u8>, offset: u64, timestamp_ms: i64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    let len = (payload.len() as u32).to_le_bytes();
    let offset = offset.to_le_bytes();
    let timestamp = timestamp_ms.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&offset);
    crc.update(&timestamp);
    crc.update(payload);
    buf.reserve(frame_len(payload.len()));
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&offset);
    buf.extend_from_slice(&timestamp);
    buf.extend_from_slice(payload);
}

/// Decodes the frame at the front of `buf`. Never panics, whatever the bytes.
pub(crate) fn decode(buf: &[u8]) -> Decoded {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Decoded::Incomplete(HEADER_LEN);
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3, rest @ ..] = *header;
    let (offset, timestamp): ([u8; 8], [u8; 8]) = split_words(rest);
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    if len as usize > MAX_PAYLOAD_LEN {
        return Decoded::Corrupt(CorruptReason::LengthTooLarge(len));
    }
    let total = frame_len(len as usize);
    let Some(frame) = buf.get(..total) else {
        return Decoded::Incomplete(total);
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[..4]);
    crc.update(&frame[8..]);
    if crc.finalize() != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Decoded::Corrupt(CorruptReason::BadChecksum);
    }
    Decoded::Frame(FrameHeader {
        offset: u64::from_le_bytes(offset),
        timestamp_ms: i64::from_le_bytes(timestamp),
        frame_len: total,
    })
}

/// Splits the 16 header bytes after the checksum into the offset and timestamp words.
fn split_words(rest: [u8; 16]) -> ([u8; 8], [u8; 8]) {
    let [
        o0,
        o1,
        o2,
        o3,
        o4,
        o5,
        o6,
        o7,
        t0,
        t1,
        t2,
        t3,
        t4,
        t5,
        t6,
        t7,
    ] = rest;
    (
        [o0, o1, o2, o3, o4, o5, o6, o7],
        [t0, t1, t2, t3, t4, t5, t6, t7],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(offset: u64, ts: i64, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, offset, ts, payload);
        buf
    }

    #[test]
    fn round_trip() {
        let buf = frame(42, -7, b"hello");
        assert_eq!(buf.len(), frame_len(5));
        let Decoded::Frame(h) = decode(&buf) else {
            panic!("not a frame")
        };
        assert_eq!((h.offset, h.timestamp_ms, h.frame_len), (42, -7, buf.len()));
        assert_eq!(&buf[HEADER_LEN..h.frame_len], b"hello");
    }

    #[test]
    fn empty_payload_round_trips() {
        let buf = frame(0, 0, b"");
        assert!(matches!(decode(&buf), Decoded::Frame(h) if h.frame_len == HEADER_LEN));
    }

    #[test]
    fn decodes_only_the_first_frame() {
        let mut buf = frame(1, 1, b"a");
        buf.extend(frame(2, 2, b"bb"));
        assert!(matches!(decode(&buf), Decoded::Frame(h) if h.offset == 1 && h.frame_len == 25));
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let buf = frame(9, 9, b"payload");
        for cut in 0..buf.len() {
            match decode(&buf[..cut]) {
                Decoded::Incomplete(n) => assert!(n > cut),
                other => panic!("prefix {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let buf = frame(3, 1_700_000_000_000, b"some payload");
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    !matches!(decode(&bad), Decoded::Frame(_)),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn oversized_length_is_corrupt_not_incomplete() {
        let mut buf = frame(0, 0, b"x");
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&buf),
            Decoded::Corrupt(CorruptReason::LengthTooLarge(u32::MAX))
        );
    }
}
