//! Stable smoke run of the MQTT fuzz targets: every committed corpus file, then deterministic
//! mutations of them and random inputs from a seeded generator (`spoke-fuzz-smoke`). Fast
//! enough for every `cargo test`.

use spoke_fuzz_smoke::Smoke;
use spoke_mqtt::fuzzing::{fuzz_decode, fuzz_topic_match};

/// Bytes that matter to MQTT: packet type bytes, small lengths, wildcards, separators.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x04, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x30, 0x32, 0x34, 0x3b, 0x40, 0x62, 0x82,
    0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0, b'/', b'+', b'#', b'$', b'M', b'Q', b'T', b'a',
];

fn smoke(target: &str, seed: u64, run: fn(&[u8])) {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), target)
        .alphabet(INTERESTING)
        .max_len(48)
        .run(seed, run);
}

#[test]
fn decode_smoke() {
    smoke("mqtt_codec", 0x5eed_0001, fuzz_decode);
}

#[test]
fn topic_match_smoke() {
    smoke("mqtt_topic", 0x5eed_0002, fuzz_topic_match);
}
