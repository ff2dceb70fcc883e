//! What the module twin controls: `SendInterval` (seconds between readings, default 5) and
//! `SendData` (whether readings are sent, default true), the desired properties of Azure's
//! `SimulatedTemperatureSensor`, reported back under the same names. And what the environment
//! controls: `MessageCount`, the number of messages to send.
//!
//! Invariant: [`Settings::send_interval`] is always a valid non-negative [`Duration`].

use std::time::Duration;

use serde_json::{Map, Value, json};
use spoke_module_util::json_number;

/// Desired property: seconds between readings.
pub const SEND_INTERVAL: &str = "SendInterval";
/// Desired property: whether readings are sent.
pub const SEND_DATA: &str = "SendData";

/// Default of [`SEND_INTERVAL`], seconds (Azure's `MessageDelay` default).
const DEFAULT_SEND_INTERVAL: f64 = 5.0;

/// The twin-controlled settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    send_interval_secs: f64,
    send_data: bool,
}

/// A desired property that was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("desired property {key} must be {expected}; keeping the current value")]
pub struct SettingError {
    /// The property.
    pub key: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            send_interval_secs: DEFAULT_SEND_INTERVAL,
            send_data: true,
        }
    }
}

impl Settings {
    /// The time between two readings.
    pub fn send_interval(&self) -> Duration {
        Duration::from_secs_f64(self.send_interval_secs)
    }

    /// Whether readings are sent.
    pub fn send_data(&self) -> bool {
        self.send_data
    }

    /// Applies the known keys of a desired document or patch: a valid value replaces the
    /// current one, `null` (a deleted property) restores the default, and an invalid value
    /// is returned as an error and ignored. Other keys (`$version` among them) are ignored.
    pub fn apply(&mut self, desired: &Map<String, Value>) -> Vec<SettingError> {
        let mut errors = Vec::new();
        match desired.get(SEND_INTERVAL) {
            None => {}
            Some(Value::Null) => self.send_interval_secs = DEFAULT_SEND_INTERVAL,
            Some(value) => match value
                .as_f64()
                .filter(|s| Duration::try_from_secs_f64(*s).is_ok())
            {
                Some(secs) => self.send_interval_secs = secs,
                None => errors.push(SettingError {
                    key: SEND_INTERVAL,
                    expected: "a non-negative number of seconds",
                }),
            },
        }
        match desired.get(SEND_DATA) {
            None => {}
            Some(Value::Null) => self.send_data = true,
            Some(Value::Bool(send)) => self.send_data = *send,
            Some(_) => errors.push(SettingError {
                key: SEND_DATA,
                expected: "true or false",
            }),
        }
        errors
    }

    /// The reported-properties patch: `{"SendData": bool, "SendInterval": seconds}`.
    pub fn reported(&self) -> Value {
        json!({SEND_DATA: self.send_data, SEND_INTERVAL: json_number(self.send_interval_secs)})
    }
}

/// How many messages to send (`MessageCount`): a limit, or unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCount(Option<u64>);

impl MessageCount {
    /// No limit.
    pub const UNLIMITED: Self = Self(None);

    /// From Azure's convention: a negative count means unlimited.
    pub fn from_signed(count: i64) -> Self {
        Self(u64::try_from(count).ok())
    }

    /// The limit, `None` when unlimited.
    pub fn limit(self) -> Option<u64> {
        self.0
    }

    /// Whether `sent` messages reach the limit.
    pub fn reached(self, sent: u64) -> bool {
        self.0.is_some_and(|limit| sent >= limit)
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
    fn defaults_and_report() {
        let settings = Settings::default();
        assert_eq!(settings.send_interval(), Duration::from_secs(5));
        assert!(settings.send_data());
        assert_eq!(
            settings.reported().to_string(),
            r#"{"SendData":true,"SendInterval":5}"#
        );
    }

    #[test]
    fn desired_values_apply_and_null_restores_the_default() {
        let mut settings = Settings::default();
        let errors = settings.apply(&object(
            json!({"SendInterval": 0.25, "SendData": false, "$version": 4, "other": 1}),
        ));
        assert!(errors.is_empty());
        assert_eq!(settings.send_interval(), Duration::from_millis(250));
        assert!(!settings.send_data());
        assert_eq!(
            settings.reported(),
            json!({"SendData": false, "SendInterval": 0.25})
        );

        settings.apply(&object(json!({"SendInterval": 2})));
        assert_eq!(settings.send_interval(), Duration::from_secs(2));
        assert!(!settings.send_data(), "absent keys keep their value");

        settings.apply(&object(json!({"SendInterval": null, "SendData": null})));
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn invalid_values_are_named_and_ignored() {
        let mut settings = Settings::default();
        let cases = [
            (json!({"SendInterval": -1}), SEND_INTERVAL),
            (json!({"SendInterval": "5"}), SEND_INTERVAL),
            (json!({"SendInterval": 1e300}), SEND_INTERVAL),
            (json!({"SendData": "yes"}), SEND_DATA),
            (json!({"SendData": 1}), SEND_DATA),
        ];
        for (desired, key) in cases {
            let errors = settings.apply(&object(desired.clone()));
            assert_eq!(errors.len(), 1, "{desired}");
            assert_eq!(errors[0].key, key);
            assert_eq!(settings, Settings::default(), "{desired}");
        }
    }

    #[test]
    fn message_count() {
        assert_eq!(MessageCount::from_signed(-1), MessageCount::UNLIMITED);
        assert_eq!(MessageCount::from_signed(-5).limit(), None);
        assert!(!MessageCount::UNLIMITED.reached(u64::MAX));
        let three = MessageCount::from_signed(3);
        assert_eq!(three.limit(), Some(3));
        assert!(!three.reached(2));
        assert!(three.reached(3));
        assert!(MessageCount::from_signed(0).reached(0));
    }
}
