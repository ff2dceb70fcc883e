#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_edge::edgehub::envelope::fuzz_envelope(data));
