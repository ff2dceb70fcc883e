#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| filter::fuzzing::fuzz_message(data));
