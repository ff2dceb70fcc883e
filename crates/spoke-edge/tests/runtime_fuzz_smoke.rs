//! Stable smoke run of the runtime fuzz entry points (`spoke_edge::runtime::fuzzing`): every
//! committed corpus file under `fuzz/corpus/runtime_*`, then deterministic mutations of them
//! and random inputs from a seeded generator (`spoke-fuzz-smoke`). Fast enough for every
//! `cargo test`.

use spoke_edge::runtime::fuzzing::{
    fuzz_docker_log_message, fuzz_proc_stat, fuzz_process_log_record,
};
use spoke_fuzz_smoke::Smoke;

/// Bytes that matter to the three formats, so random inputs reach deep states.
const ALPHABET: &[u8] = b"0123456789-:.TZ+ OE()SRZ\n\xff\xc3\xa9az";

fn smoke(target: &str, seed: u64, fuzz: fn(&[u8])) {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), target)
        .alphabet(ALPHABET)
        .max_len(80)
        .min_corpus(5)
        .run(seed, fuzz);
}

#[test]
fn process_log_records_never_panic_and_round_trip() {
    smoke("runtime_log_record", 0x5eed_0001, fuzz_process_log_record);
}

#[test]
fn proc_stat_lines_never_panic() {
    smoke("runtime_proc_stat", 0x5eed_0002, fuzz_proc_stat);
}

#[test]
fn docker_log_messages_never_panic() {
    smoke("runtime_docker_log", 0x5eed_0003, fuzz_docker_log_message);
}
