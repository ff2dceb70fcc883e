//! Stable smoke run of the basic fuzz targets (connection strings, SAS tokens, property bags,
//! topics): every committed corpus file, then deterministic mutations and random inputs from a
//! seeded generator (`spoke-fuzz-smoke`). Fast enough for every `cargo test`.

use spoke_core::fuzzing::{fuzz_connection_string, fuzz_property_bag, fuzz_sas_token, fuzz_topic};
use spoke_fuzz_smoke::Smoke;

/// Characters that matter to these grammars, so random inputs reach deep parser states.
const ALPHABET: &[u8] = b"=;&%/?$#+. :-_~aAzZ09fF24%3D%2F%24HostNameDeviceIdModuleIdSharedAccessKeyx509\
sr=sig=se=skn=SharedAccessSignature devices/messages/events/modules/$iothub/twin/GET/PATCH/properties/\
reported/methods/res/POST/devicebound/inputs/$rid=$version=\xff\xc3\xa9";

fn smoke(target: &str, seed: u64, fuzz: fn(&[u8])) {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), target)
        .alphabet(ALPHABET)
        .run(seed, fuzz);
}

#[test]
fn connection_string() {
    smoke(
        "connection_string",
        0x9E37_79B9_7F4A_7C15,
        fuzz_connection_string,
    );
}

#[test]
fn sas_token() {
    smoke("sas_token", 0xD1B5_4A32_D192_ED03, fuzz_sas_token);
}

#[test]
fn property_bag() {
    smoke("property_bag", 0x8CB9_2BA7_2F3D_8DD7, fuzz_property_bag);
}

#[test]
fn topic() {
    smoke("topic", 0xABC9_8388_FB8F_AC03, fuzz_topic);
}
