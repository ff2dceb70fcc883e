//! Stable smoke runs of the store's fuzz targets: every committed corpus file, then
//! deterministic mutations of them and random inputs from a seeded generator
//! (`spoke-fuzz-smoke`).
//!
//! Each input of the log target opens a real log (a scratch directory, the writer thread, a
//! runtime, an `fdatasync` for the append after recovery), so that target runs fewer generated
//! inputs than the pure parsers' smoke tests to stay within a few seconds.

use spoke_fuzz_smoke::Smoke;
use spoke_store::log::fuzzing::fuzz_segment_recovery;
use spoke_store::queue::fuzzing::fuzz_queue_files;

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

/// Bytes that matter to the queue's files: the cursor magic, `%XX` escapes, record kinds.
const QUEUE_INTERESTING: &[u8] = b"SPKQCUR1%0123456789ABCDEF\x00\x01\x02\xff";

#[test]
fn queue_files_smoke() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "queue_files")
        .alphabet(QUEUE_INTERESTING)
        .min_corpus(7)
        .run(0x5eed_0107, fuzz_queue_files);
}
