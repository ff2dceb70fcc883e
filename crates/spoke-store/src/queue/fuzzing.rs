//! Fuzz entry point for everything the queue parses from disk: cursor files, the record
//! header and endpoint directory names.
//!
//! It must never panic, whatever its input; it asserts round trips instead. Driven by the
//! `queue_files` fuzz target and by `tests/fuzz_smoke.rs`.

use bytes::Bytes;

use super::codec::{self, CursorState};
use super::core::Lane;

/// Parses `data` as a cursor file, as a log record of the queue and as a directory name, and
/// builds a cursor from its bytes.
///
/// Asserts that whatever parses re-encodes to exactly `data` (each format has one encoding),
/// that every well-formed cursor survives a round trip, and that restoring a priority from a
/// cursor, whatever it says, keeps the cursor within the log's retained range and counts as
/// pending exactly the retained offsets the cursor does not mark done.
pub fn fuzz_queue_files(data: &[u8]) {
    let (start, end) = retained_range(data);
    if let Ok(state) = codec::decode_cursor(data) {
        assert_eq!(codec::encode_cursor(&state), data, "cursor round trip");
        check_restore(&state, start, end);
    }
    let built = cursor_from_bytes(data);
    let encoded = codec::encode_cursor(&built);
    assert_eq!(codec::decode_cursor(&encoded).as_ref(), Ok(&built));
    check_restore(&built, start, end);

    let record = Bytes::copy_from_slice(data);
    if let Some((expires_at_ms, message)) = codec::decode_record(&record) {
        assert_eq!(
            codec::encode_record(expires_at_ms, &message),
            record,
            "record round trip"
        );
    }
    if let Ok(dir) = std::str::from_utf8(data)
        && let Some(name) = codec::decode_name(dir)
    {
        assert_eq!(
            codec::encode_name(&name).as_deref(),
            Ok(dir),
            "name round trip"
        );
    }
}

/// A small retained range `start..end` of a log, from the last two bytes.
fn retained_range(data: &[u8]) -> (u64, u64) {
    let byte = |back: usize| {
        data.len()
            .checked_sub(back)
            .map_or(0, |i| u64::from(data[i]) % 64)
    };
    let start = byte(1);
    (start, start + byte(2))
}

/// A well-formed cursor over small offsets: the first byte is the cursor, the others the
/// done offsets (sorted, deduplicated, above the cursor).
fn cursor_from_bytes(data: &[u8]) -> CursorState {
    let acked = data.first().map_or(0, |&b| u64::from(b) % 96);
    let mut done: Vec<u64> = data
        .iter()
        .skip(1)
        .map(|&b| u64::from(b) % 160)
        .filter(|&o| o > acked)
        .collect();
    done.sort_unstable();
    done.dedup();
    CursorState { acked, done }
}

fn check_restore(state: &CursorState, start: u64, end: u64) {
    let lane = Lane::restore(Some(state.clone()), start, end);
    assert!((start..=end).contains(&lane.acked()), "cursor clamped");
    assert_eq!(lane.position(), lane.acked());
    let pending = (start.max(state.acked)..end)
        .filter(|o| state.done.binary_search(o).is_err())
        .count();
    assert_eq!(lane.depth(end), pending as u64, "pending entries");
}
