#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| spoke_edge::agent::fuzzing::fuzz_agent_state(data));
