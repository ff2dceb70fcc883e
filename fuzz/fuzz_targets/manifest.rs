#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_core::manifest::fuzzing::fuzz_manifest(data));
