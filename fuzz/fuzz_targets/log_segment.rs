#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_store::log::fuzzing::fuzz_segment_recovery(data));
