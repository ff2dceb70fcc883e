#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_sdk::fuzzing::fuzz_hub_topic(data));
