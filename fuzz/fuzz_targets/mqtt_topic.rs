#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_mqtt::fuzzing::fuzz_topic_match(data));
