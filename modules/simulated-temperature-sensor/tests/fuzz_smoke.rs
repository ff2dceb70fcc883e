//! Stable smoke run of the `sensor_control` fuzz target: the committed corpus, then seeded
//! mutations and random inputs.

use simulated_temperature_sensor::fuzzing::fuzz_control;

/// Bytes that matter to the control grammar, so random inputs reach deep parser states.
const ALPHABET: &[u8] = br#"{}[],:" command reset Reset NoOperation 0 1 -1 2.5 null true"#;

#[test]
fn sensor_control() {
    spoke_fuzz_smoke::Smoke::new(env!("CARGO_MANIFEST_DIR"), "sensor_control")
        .alphabet(ALPHABET)
        .run(0x5eed, fuzz_control);
}
