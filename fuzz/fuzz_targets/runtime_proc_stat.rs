#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_edge::runtime::fuzzing::fuzz_proc_stat(data));
