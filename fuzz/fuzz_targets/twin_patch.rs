#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_core::twin::fuzzing::fuzz_twin_patch(data));
