#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_edge::runtime::fuzzing::fuzz_docker_log_message(data));
