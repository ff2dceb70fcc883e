//! Stable smoke run of the management API fuzz target: every committed corpus file in
//! `fuzz/corpus/management_request/`, then deterministic mutations of them and random inputs
//! from a seeded generator (`spoke-fuzz-smoke`). Fast enough for every `cargo test`.

use spoke_edge::management::fuzzing::fuzz_management_request;
use spoke_fuzz_smoke::Smoke;

/// Bytes that matter to the request grammar, so random inputs reach deep states.
const ALPHABET: &[u8] = b"GET POST PUT DELETE /modules/%24edgeHub$edgeHub/logs/restart/status\
?api-version=2018-06-28&2022-08-03&tail=all&since=&follow=true+-:TZ.1d90m5s\n0123456789\xff\xc3\xa9";

#[test]
fn management_request_survives_corpus_and_random_inputs() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "management_request")
        .alphabet(ALPHABET)
        .max_len(96)
        .min_corpus(5)
        .run(0x5eed_3a9e, fuzz_management_request);
}
