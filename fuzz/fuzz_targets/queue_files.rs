#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_store::queue::fuzzing::fuzz_queue_files(data));
