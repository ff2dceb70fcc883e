//! Stable smoke run of the workload API fuzz target: every committed corpus file in
//! `fuzz/corpus/workload_request/`, then deterministic mutations of them and random inputs from
//! a seeded generator (`spoke-fuzz-smoke`). Fast enough for every `cargo test`.

use spoke_edge::workload::fuzzing::fuzz_workload_request;
use spoke_fuzz_smoke::Smoke;

/// Bytes that matter to the request grammar, so random inputs reach deep states.
const ALPHABET: &[u8] = b"GET POST PUT /modules/%24edgeHub$edgeHub/genid/1/sign/encrypt/decrypt/certificate/\
server/identity/trust-bundle/manifest-trust-bundle?api-version=2018-06-28&2022-08-03%2D\n\
{\"data\":\"plaintext\",\"ciphertext\":\"initializationVector\":\"commonName\":}[]=+AQaz09\xff\xc3\xa9";

#[test]
fn workload_request_survives_corpus_and_random_inputs() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "workload_request")
        .alphabet(ALPHABET)
        .max_len(96)
        .min_corpus(5)
        .run(0x5eed_0f3d, fuzz_workload_request);
}
