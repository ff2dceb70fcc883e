//! Stable smoke run of the edge hub's queue-entry fuzz target: every committed corpus file in
//! `fuzz/corpus/edge_envelope/`, then deterministic mutations of them and random inputs from a
//! seeded generator (`spoke-fuzz-smoke`).

use spoke_edge::edgehub::envelope::fuzz_envelope;
use spoke_fuzz_smoke::Smoke;

/// Bytes that matter to an entry: small lengths, the property bag's syntax and system keys.
const ALPHABET: &[u8] =
    b"\x00\x01\x02\x05\x10\xff$.mid=cid&on%24%2Fcdid cmid ct ce a=b&&==%zz\xc3\xa9{}";

#[test]
fn edge_envelope_survives_corpus_and_random_inputs() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "edge_envelope")
        .alphabet(ALPHABET)
        .max_len(64)
        .min_corpus(5)
        .run(0x5eed_e4e1, fuzz_envelope);
}
