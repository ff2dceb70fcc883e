#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_edge::management::fuzzing::fuzz_management_request(data));
