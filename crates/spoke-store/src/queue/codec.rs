//! The queue's byte formats, with no I/O: the header inside each log record, the cursor file
//! and the endpoint directory names. See "Layout on disk" in the module doc of
//! [`crate::queue`].

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Record kind byte: no expiry, the message follows.
const KIND_PLAIN: u8 = 1;
/// Record kind byte: `expires_at_ms` (i64 LE) follows, then the message.
const KIND_EXPIRING: u8 = 2;

/// The most header bytes a record adds to the message.
pub(crate) const RECORD_HEADER_MAX: usize = 9;

/// Magic prefix of a cursor file, version included.
const CURSOR_MAGIC: &[u8; 8] = b"SPKQCUR1";
/// Magic, cursor, count.
const CURSOR_FIXED: usize = 8 + 8 + 4;
/// Trailing CRC-32.
const CURSOR_CRC: usize = 4;

/// An encoded endpoint name longer than this is refused: it must fit a file name (255 bytes)
/// with room for the prefix used while it is being removed.
pub(crate) const MAX_DIR_NAME: usize = 200;

/// The log record payload of a queued message: the kind byte, the expiry if any, the message.
pub(crate) fn encode_record(expires_at_ms: Option<i64>, message: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(RECORD_HEADER_MAX + message.len());
    match expires_at_ms {
        None => buf.put_u8(KIND_PLAIN),
        Some(at) => {
            buf.put_u8(KIND_EXPIRING);
            buf.put_i64_le(at);
        }
    }
    buf.put_slice(message);
    buf.freeze()
}

/// Splits a log record payload into the expiry and the message (a slice of `record`, not a
/// copy); `None` when it is not a queue record.
pub(crate) fn decode_record(record: &Bytes) -> Option<(Option<i64>, Bytes)> {
    match *record.first()? {
        KIND_PLAIN => Some((None, record.slice(1..))),
        KIND_EXPIRING => {
            let at = record.get(1..RECORD_HEADER_MAX)?;
            let at = i64::from_le_bytes(at.try_into().ok()?);
            Some((Some(at), record.slice(RECORD_HEADER_MAX..)))
        }
        _ => None,
    }
}

/// The persisted delivery state of one priority: every offset below `acked` is done
/// (acknowledged, expired or unreadable), and so is every offset in `done`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CursorState {
    /// The first offset not known to be done.
    pub acked: u64,
    /// Done offsets above `acked`, strictly increasing.
    pub done: Vec<u64>,
}

/// Why bytes are not a valid cursor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorDamage {
    /// Shorter than the fixed part, or the length disagrees with the count.
    Length,
    /// The magic (or its version) is not ours.
    Magic,
    /// The checksum does not match.
    Checksum,
    /// The done offsets are not strictly increasing above the cursor.
    Order,
}

impl fmt::Display for CursorDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "wrong length",
            Self::Magic => "unknown magic",
            Self::Checksum => "checksum mismatch",
            Self::Order => "done offsets out of order",
        })
    }
}

/// The bytes of a cursor file.
pub(crate) fn encode_cursor(state: &CursorState) -> Vec<u8> {
    let mut buf = Vec::with_capacity(CURSOR_FIXED + 8 * state.done.len() + CURSOR_CRC);
    buf.extend_from_slice(CURSOR_MAGIC);
    buf.extend_from_slice(&state.acked.to_le_bytes());
    buf.extend_from_slice(&(state.done.len() as u32).to_le_bytes());
    for offset in &state.done {
        buf.extend_from_slice(&offset.to_le_bytes());
    }
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Parses a cursor file; exactly the outputs of [`encode_cursor`] are accepted.
pub(crate) fn decode_cursor(bytes: &[u8]) -> Result<CursorState, CursorDamage> {
    if bytes.len() < CURSOR_FIXED + CURSOR_CRC {
        return Err(CursorDamage::Length);
    }
    let (body, crc) = bytes.split_at(bytes.len() - CURSOR_CRC);
    if !body.starts_with(CURSOR_MAGIC) {
        return Err(CursorDamage::Magic);
    }
    if crc32fast::hash(body) != u32::from_le_bytes(le(crc)) {
        return Err(CursorDamage::Checksum);
    }
    let acked = u64::from_le_bytes(le(&body[8..16]));
    let count = u32::from_le_bytes(le(&body[16..CURSOR_FIXED])) as usize;
    let list = &body[CURSOR_FIXED..];
    if list.len() / 8 != count || list.len() % 8 != 0 {
        return Err(CursorDamage::Length);
    }
    let done: Vec<u64> = list
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(le(c)))
        .collect();
    let increasing = done.windows(2).all(|w| w[0] < w[1]);
    if !increasing || done.first().is_some_and(|&first| first <= acked) {
        return Err(CursorDamage::Order);
    }
    Ok(CursorState { acked, done })
}

/// A fixed-size array from a slice whose length the caller checked.
fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// Why an endpoint name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    Empty,
    TooLong,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the name is empty"),
            Self::TooLong => write!(f, "the encoded name is longer than {MAX_DIR_NAME} bytes"),
        }
    }
}

/// The directory name of an endpoint: ASCII letters, digits, `-` and `_` as they are, every
/// other byte of the UTF-8 name as `%XX` (upper-case hex). The result never starts with `.`.
pub(crate) fn encode_name(name: &str) -> Result<String, NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0xf));
        }
    }
    if out.len() > MAX_DIR_NAME {
        return Err(NameProblem::TooLong);
    }
    Ok(out)
}

/// The endpoint name of a directory, or `None` when the directory name is not exactly what
/// [`encode_name`] produces for some name.
pub(crate) fn decode_name(dir: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(dir.len());
    let mut rest = dir.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let (hi, lo) = (tail.first()?, tail.get(1)?);
            bytes.push(hex_value(*hi)? << 4 | hex_value(*lo)?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    (encode_name(&name).ok()? == dir).then_some(name)
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble)])
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_and_without_expiry() {
        for expiry in [None, Some(-5), Some(0), Some(i64::MAX)] {
            let record = encode_record(expiry, b"hello");
            assert_eq!(
                decode_record(&record),
                Some((expiry, Bytes::from_static(b"hello")))
            );
        }
        assert_eq!(encode_record(None, b"").len(), 1);
        assert_eq!(encode_record(Some(1), b"").len(), RECORD_HEADER_MAX);
    }

    #[test]
    fn foreign_records_are_refused() {
        for bad in [&b""[..], b"\x00abc", b"\x02short", b"\x09"] {
            assert_eq!(decode_record(&Bytes::copy_from_slice(bad)), None);
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_damage() {
        let state = CursorState {
            acked: 7,
            done: vec![9, 10, 42],
        };
        let bytes = encode_cursor(&state);
        assert_eq!(decode_cursor(&bytes), Ok(state));
        assert_eq!(
            decode_cursor(&encode_cursor(&CursorState::default())),
            Ok(CursorState::default())
        );
        let mut flipped = bytes.clone();
        flipped[9] ^= 1;
        assert_eq!(decode_cursor(&flipped), Err(CursorDamage::Checksum));
        assert_eq!(decode_cursor(&bytes[..10]), Err(CursorDamage::Length));
        let mut other = bytes.clone();
        other[7] = b'9';
        assert_eq!(decode_cursor(&other), Err(CursorDamage::Magic));
        let unordered = encode_cursor(&CursorState {
            acked: 7,
            done: vec![7],
        });
        assert_eq!(decode_cursor(&unordered), Err(CursorDamage::Order));
    }

    #[test]
    fn names_encode_to_safe_directory_names_and_back() {
        let cases = [
            ("$upstream", "%24upstream"),
            ("module/filter/input1", "module%2Ffilter%2Finput1"),
            ("..", "%2E%2E"),
            ("a b_c-D", "a%20b_c-D"),
            ("é", "%C3%A9"),
        ];
        for (name, dir) in cases {
            assert_eq!(encode_name(name).as_deref(), Ok(dir));
            assert_eq!(decode_name(dir).as_deref(), Some(name));
        }
        assert_eq!(encode_name(""), Err(NameProblem::Empty));
        assert_eq!(encode_name(&"/".repeat(67)), Err(NameProblem::TooLong));
        assert!(encode_name(&"a".repeat(MAX_DIR_NAME)).is_ok());
    }

    #[test]
    fn only_canonical_directory_names_decode() {
        for bad in [
            "%61",
            "%2f",
            "%2",
            "%",
            "a.b",
            "%FF",
            "",
            ".removing-x",
            ".lock",
        ] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }
}
