#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_edge::workload::fuzzing::fuzz_workload_request(data));
