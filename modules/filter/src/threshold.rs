//! The temperature threshold from the module twin: desired property `TemperatureThreshold`
//! (Azure's name) or `threshold` (the short name deployment manifests use), the former
//! winning when both are set; without either, the default (the `TemperatureThreshold`
//! environment variable, else 25). Reported back as `TemperatureThreshold`.
//!
//! Invariant: the threshold is always a finite number. Both names are tracked separately, so
//! deleting one falls back to the other, as a merged desired document would.

use serde_json::{Map, Value, json};
use spoke_module_util::json_number;

/// Desired (and reported) property: the threshold, °C.
pub const TEMPERATURE_THRESHOLD: &str = "TemperatureThreshold";
/// Desired property: the short name of the threshold.
pub const THRESHOLD: &str = "threshold";

/// The default threshold, °C (Azure's `DefaultTemperatureThreshold`).
pub const DEFAULT_THRESHOLD: f64 = 25.0;

/// A desired threshold that is not a finite number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("desired property {key} must be a number; keeping the current threshold")]
pub struct ThresholdError {
    /// The property.
    pub key: &'static str,
}

/// The twin-controlled threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    default: f64,
    /// The value under `TemperatureThreshold`.
    long_name: Option<f64>,
    /// The value under `threshold`.
    short_name: Option<f64>,
}

impl Threshold {
    /// A threshold of `default` until the twin sets one.
    pub fn new(default: f64) -> Self {
        Self {
            default,
            long_name: None,
            short_name: None,
        }
    }

    /// The threshold in force, °C.
    pub fn value(&self) -> f64 {
        self.long_name.or(self.short_name).unwrap_or(self.default)
    }

    /// Applies a desired-properties patch: a number sets a name, `null` deletes it, and
    /// anything else is returned as an error and ignored.
    pub fn patch(&mut self, patch: &Map<String, Value>) -> Vec<ThresholdError> {
        let mut errors = Vec::new();
        for (key, slot) in [
            (TEMPERATURE_THRESHOLD, &mut self.long_name),
            (THRESHOLD, &mut self.short_name),
        ] {
            match patch.get(key) {
                None => {}
                Some(Value::Null) => *slot = None,
                Some(value) => match value.as_f64().filter(|v| v.is_finite()) {
                    Some(v) => *slot = Some(v),
                    None => errors.push(ThresholdError { key }),
                },
            }
        }
        errors
    }

    /// Loads a whole desired document: names it does not hold are deleted.
    pub fn load(&mut self, desired: &Map<String, Value>) -> Vec<ThresholdError> {
        self.long_name = None;
        self.short_name = None;
        self.patch(desired)
    }

    /// The reported-properties patch: `{"TemperatureThreshold": value}`.
    pub fn reported(&self) -> Value {
        json!({TEMPERATURE_THRESHOLD: json_number(self.value())})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn names_defaults_and_precedence() {
        let mut t = Threshold::new(DEFAULT_THRESHOLD);
        assert!((t.value() - 25.0).abs() < f64::EPSILON);
        assert_eq!(t.reported().to_string(), r#"{"TemperatureThreshold":25}"#);

        assert!(
            t.patch(&object(json!({"threshold": 30, "$version": 2})))
                .is_empty()
        );
        assert!((t.value() - 30.0).abs() < f64::EPSILON);
        t.patch(&object(json!({"TemperatureThreshold": 27.5})));
        assert!(
            (t.value() - 27.5).abs() < f64::EPSILON,
            "the long name wins"
        );
        assert_eq!(t.reported(), json!({"TemperatureThreshold": 27.5}));
        t.patch(&object(json!({"TemperatureThreshold": null})));
        assert!(
            (t.value() - 30.0).abs() < f64::EPSILON,
            "back to the short name"
        );
        t.patch(&object(json!({"threshold": null})));
        assert!(
            (t.value() - 25.0).abs() < f64::EPSILON,
            "back to the default"
        );
    }

    #[test]
    fn load_replaces_everything_and_bad_values_are_ignored() {
        let mut t = Threshold::new(40.0);
        t.patch(&object(json!({"TemperatureThreshold": 20})));
        assert!(t.load(&object(json!({"threshold": 35}))).is_empty());
        assert!((t.value() - 35.0).abs() < f64::EPSILON);
        assert!(t.load(&object(json!({}))).is_empty());
        assert!((t.value() - 40.0).abs() < f64::EPSILON);

        t.patch(&object(json!({"threshold": 33})));
        let errors = t.patch(&object(
            json!({"TemperatureThreshold": "hot", "threshold": [1]}),
        ));
        assert_eq!(
            errors,
            [
                ThresholdError {
                    key: TEMPERATURE_THRESHOLD
                },
                ThresholdError { key: THRESHOLD }
            ]
        );
        assert!((t.value() - 33.0).abs() < f64::EPSILON);
    }
}
