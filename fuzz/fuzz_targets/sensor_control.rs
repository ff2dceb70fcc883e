#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| simulated_temperature_sensor::fuzzing::fuzz_control(data));
