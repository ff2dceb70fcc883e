#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_core::query::fuzzing::fuzz_query(data));
