//! Stable smoke run of the `filter_message` fuzz target: the committed corpus, then seeded
//! mutations and random inputs.

use filter::fuzzing::fuzz_message;

/// Bytes that matter to the body grammar, so random inputs reach deep parser states.
const ALPHABET: &[u8] = br#"{}[],:" machine temperature pressure 0123456789.-+eE null true"#;

#[test]
fn filter_message() {
    spoke_fuzz_smoke::Smoke::new(env!("CARGO_MANIFEST_DIR"), "filter_message")
        .alphabet(ALPHABET)
        .run(0x5eed, fuzz_message);
}
