#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_core::route::fuzzing::fuzz_route(data));
