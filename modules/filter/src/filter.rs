//! The filter's synchronous core: it owns the threshold and the counters, takes input
//! messages and desired properties, and returns the alert to send and the properties to
//! report, without any I/O; the [`spoke_module_util::Driver`] does the I/O.
//!
//! Invariant: only messages on [`INPUT`] are considered; every alert goes to [`OUTPUT`].

use serde_json::{Map, Value};
use spoke_core::message::Message;
use spoke_module_util::{ModuleCore, Output};

use crate::decision::{Decision, alert, decide};
use crate::threshold::{Threshold, ThresholdError};

/// The input readings arrive on.
pub const INPUT: &str = "input1";
/// The output alerts are sent on.
pub const OUTPUT: &str = "output1";

/// The filter's state.
#[derive(Debug, Clone)]
pub struct Filter {
    threshold: Threshold,
    received: u64,
    forwarded: u64,
}

impl Filter {
    /// A filter with `default_threshold` until the twin sets one.
    pub fn new(default_threshold: f64) -> Self {
        Self {
            threshold: Threshold::new(default_threshold),
            received: 0,
            forwarded: 0,
        }
    }

    /// The threshold in force, °C.
    pub fn threshold(&self) -> f64 {
        self.threshold.value()
    }

    /// Messages received on [`INPUT`].
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Alerts produced.
    pub fn forwarded(&self) -> u64 {
        self.forwarded
    }

    fn settled(&self, errors: &[ThresholdError]) -> Value {
        for error in errors {
            tracing::warn!(%error, "ignoring a desired property");
        }
        tracing::info!(threshold = self.threshold.value(), "temperature threshold");
        self.threshold.reported()
    }
}

impl ModuleCore for Filter {
    fn load_desired(&mut self, desired: &Map<String, Value>) -> Value {
        let errors = self.threshold.load(desired);
        self.settled(&errors)
    }

    fn patch_desired(&mut self, patch: &Map<String, Value>) -> Value {
        let errors = self.threshold.patch(patch);
        self.settled(&errors)
    }

    /// A reading on [`INPUT`] above the threshold becomes an alert on [`OUTPUT`].
    fn message(&mut self, input: Option<&str>, message: &Message) -> Option<Output> {
        if input != Some(INPUT) {
            tracing::debug!(?input, "ignoring a message on an unknown input");
            return None;
        }
        self.received += 1;
        match decide(&message.body, self.threshold.value()) {
            Ok(Decision::Alert { temperature }) => {
                tracing::info!(
                    temperature,
                    threshold = self.threshold.value(),
                    "machine temperature exceeds the threshold"
                );
                self.forwarded += 1;
                Some(Output {
                    name: OUTPUT,
                    message: alert(message),
                })
            }
            Ok(Decision::Pass { .. }) => None,
            Err(error) => {
                tracing::warn!(%error, "dropping a message without a reading");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reading(temperature: f64) -> Message {
        Message::new(json!({"machine": {"temperature": temperature, "pressure": 1.0}}).to_string())
    }

    fn object(value: &Value) -> &Map<String, Value> {
        value.as_object().unwrap()
    }

    #[test]
    fn forwards_readings_above_the_threshold_from_input1_only() {
        let mut filter = Filter::new(25.0);
        let Output { name, message } = filter.message(Some(INPUT), &reading(26.0)).unwrap();
        assert_eq!(name, OUTPUT);
        assert_eq!(message.app_property("MessageType"), Some("Alert"));
        assert_eq!(filter.message(Some(INPUT), &reading(25.0)), None);
        assert_eq!(filter.message(Some(INPUT), &Message::new("junk")), None);
        assert_eq!(filter.message(Some("input2"), &reading(90.0)), None);
        assert_eq!(filter.message(None, &reading(90.0)), None);
        assert_eq!((filter.received(), filter.forwarded()), (3, 1));
        assert_eq!(filter.tick_interval(), None, "no timer");
    }

    #[test]
    fn the_twin_moves_the_threshold() {
        let mut filter = Filter::new(25.0);
        let reported = filter.load_desired(object(&json!({"threshold": 30})));
        assert_eq!(reported, json!({"TemperatureThreshold": 30}));
        assert_eq!(filter.message(Some(INPUT), &reading(29.0)), None);
        let reported = filter.patch_desired(object(&json!({"TemperatureThreshold": 28.5})));
        assert_eq!(reported, json!({"TemperatureThreshold": 28.5}));
        assert!(filter.message(Some(INPUT), &reading(29.0)).is_some());
        let reported = filter.patch_desired(object(&json!({"TemperatureThreshold": "x"})));
        assert_eq!(reported, json!({"TemperatureThreshold": 28.5}));
        let reported = filter.load_desired(object(&json!({})));
        assert_eq!(reported, json!({"TemperatureThreshold": 25}));
    }

    #[test]
    fn methods_are_not_implemented() {
        let (status, _) = Filter::new(25.0).method("reset", &Value::Null);
        assert_eq!(status, spoke_module_util::driver::METHOD_NOT_IMPLEMENTED);
    }
}
