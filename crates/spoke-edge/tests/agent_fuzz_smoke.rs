//! Stable smoke run of the agent fuzz entry points (`spoke_edge::agent::fuzzing`): every
//! committed corpus file under `fuzz/corpus/agent_state`, then deterministic mutations of
//! them and random inputs from a seeded generator (`spoke-fuzz-smoke`). Fast enough for every
//! `cargo test`.

use spoke_edge::agent::fuzzing::fuzz_agent_state;
use spoke_fuzz_smoke::Smoke;

/// Bytes that matter to the stored-state JSON, so random inputs reach deep states.
const ALPHABET: &[u8] = b"{}[]\":,0123456789-.TZ trueflsn\\format";

#[test]
fn agent_state_smoke() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "agent_state")
        .alphabet(ALPHABET)
        .min_corpus(3)
        .run(0x5EED_A6E7, fuzz_agent_state);
}
