//! Stable smoke run of the `sdk_hub_topic` fuzz target: every committed corpus file, then
//! deterministic mutations and random inputs from a seeded generator (`spoke-fuzz-smoke`).

use spoke_fuzz_smoke::Smoke;
use spoke_sdk::fuzzing::fuzz_hub_topic;

/// Characters that matter to the topic grammar, so random inputs reach deep parser states.
const ALPHABET: &[u8] = b"/?&=%$+#.-_~ 0129aAfF%24%2F%20$rid=$version=devices/dev1/mod1/modules/\
inputs/messages/devicebound/$iothub/twin/res/PATCH/properties/desired/methods/POST/\xff\xc3\xa9";

#[test]
fn hub_topic() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "sdk_hub_topic")
        .alphabet(ALPHABET)
        .run(0x51_7CC1_B727_220A, fuzz_hub_topic);
}
