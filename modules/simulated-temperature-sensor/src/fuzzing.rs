//! Fuzz entry points (`fuzz/fuzz_targets/sensor_control.rs`); each must never panic.

use crate::control::{Command, parse_control};

/// Parses a `control` input message body; whatever parses re-encodes to the same commands.
pub fn fuzz_control(data: &[u8]) {
    if let Ok(commands) = parse_control(data) {
        let encoded: Vec<_> = commands
            .iter()
            .map(|c| {
                let name = match c {
                    Command::Reset => "Reset",
                    Command::NoOperation => "NoOperation",
                };
                serde_json::json!({ "command": name })
            })
            .collect();
        let text = serde_json::to_vec(&encoded).expect("commands encode");
        assert_eq!(parse_control(&text).expect("re-parses"), commands);
    }
}
