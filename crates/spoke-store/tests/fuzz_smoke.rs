//! Stable smoke run of the log's fuzz target: every committed corpus file, then deterministic
//! mutations of them and random inputs from a seeded generator (`spoke-fuzz-smoke`).
//!
//! Each input opens a real log (a scratch directory, the writer thread, a runtime, an
//! `fdatasync` for the append after recovery), so this target runs fewer generated inputs than
//! the pure parsers' smoke tests to stay within a few seconds.

use spoke_fuzz_smoke::Smoke;
use spoke_store::log::fuzzing::fuzz_segment_recovery;

/// Generated inputs.
const ITERATIONS: usize = 4_000;

/// Bytes that matter to the frame header: zero, small lengths, all-ones.
const INTERESTING: &[u8] = &[0x00, 0x01, 0x02, 0x05, 0x18, 0x7f, 0x80, 0xfe, 0xff];

#[test]
fn segment_recovery_smoke() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "log_segment")
        .alphabet(INTERESTING)
        .max_len(96)
        .iterations(ITERATIONS)
        .run(0x5eed_0106, fuzz_segment_recovery);
}
