//! Fuzz entry points (`fuzz/fuzz_targets/filter_message.rs`); each must never panic.

use crate::decision::{Decision, decide};

/// Decides on a message body at a few thresholds: whatever parses is an alert exactly when
/// its temperature exceeds the threshold.
pub fn fuzz_message(data: &[u8]) {
    for threshold in [f64::NEG_INFINITY, -40.0, 0.0, 25.0, 1e300] {
        match decide(data, threshold) {
            Ok(Decision::Alert { temperature }) => assert!(temperature > threshold),
            Ok(Decision::Pass { temperature }) => assert!(temperature <= threshold),
            Err(_) => {}
        }
    }
}
