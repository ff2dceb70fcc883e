//! The filter decision and the alert it forwards, as in Azure's filter module tutorial: a
//! message whose `machine.temperature` exceeds the threshold is forwarded unchanged with the
//! application property `MessageType=Alert` added.
//!
//! The body is the simulated temperature sensor's
//! `{"machine":{"temperature":..,..},..}`; only `machine.temperature` (a JSON number) is read,
//! everything else may be anything.

use serde_json::Value;
use spoke_core::message::Message;

/// The application property an alert carries, and its value.
pub const MESSAGE_TYPE: (&str, &str) = ("MessageType", "Alert");

/// What to do with a reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Above the threshold: forward as an alert.
    Alert {
        /// The machine temperature read.
        temperature: f64,
    },
    /// At or below the threshold: drop.
    Pass {
        /// The machine temperature read.
        temperature: f64,
    },
}

/// Why a body holds no reading.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is not JSON.
    #[error("the message body is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The JSON has no numeric `machine.temperature`.
    #[error("the message body has no numeric machine.temperature")]
    NoTemperature,
}

/// Decides on a message body: [`Decision::Alert`] when its machine temperature exceeds
/// `threshold`.
pub fn decide(body: &[u8], threshold: f64) -> Result<Decision, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(BodyError::NotJson)?;
    let temperature = value
        .get("machine")
        .and_then(|machine| machine.get("temperature"))
        .and_then(Value::as_f64)
        .ok_or(BodyError::NoTemperature)?;
    Ok(if temperature > threshold {
        Decision::Alert { temperature }
    } else {
        Decision::Pass { temperature }
    })
}

/// The alert for `message`: the same body, content type and encoding, and application
/// properties, with `MessageType` set to `Alert`.
pub fn alert(message: &Message) -> Message {
    let mut alert = Message::new(message.body.clone());
    alert
        .system
        .content_type
        .clone_from(&message.system.content_type);
    alert
        .system
        .content_encoding
        .clone_from(&message.system.content_encoding);
    alert.app = message
        .app
        .iter()
        .filter(|(key, _)| key != MESSAGE_TYPE.0)
        .cloned()
        .collect();
    alert
        .app
        .push((MESSAGE_TYPE.0.into(), Some(MESSAGE_TYPE.1.into())));
    alert
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENSOR_BODY: &str = r#"{"machine":{"temperature":25.5,"pressure":1.5},"ambient":{"temperature":21.1,"humidity":25},"timeCreated":"2024-01-02T03:04:05Z"}"#;

    #[test]
    fn decisions_as_a_table() {
        let cases: [(&str, f64, Option<Decision>); 8] = [
            (
                SENSOR_BODY,
                25.0,
                Some(Decision::Alert { temperature: 25.5 }),
            ),
            (
                SENSOR_BODY,
                25.5,
                Some(Decision::Pass { temperature: 25.5 }),
            ),
            (
                SENSOR_BODY,
                30.0,
                Some(Decision::Pass { temperature: 25.5 }),
            ),
            (
                r#"{"machine":{"temperature":26}}"#,
                25.0,
                Some(Decision::Alert { temperature: 26.0 }),
            ),
            (
                r#"{"machine":{"temperature":-5}}"#,
                -10.0,
                Some(Decision::Alert { temperature: -5.0 }),
            ),
            (r#"{"machine":{"temperature":"30"}}"#, 25.0, None),
            (r#"{"ambient":{"temperature":30}}"#, 25.0, None),
            (r#"[{"machine":{"temperature":30}}]"#, 25.0, None),
        ];
        for (body, threshold, expected) in cases {
            let decision = decide(body.as_bytes(), threshold).ok();
            assert_eq!(decision, expected, "{body} > {threshold}");
        }
        assert!(matches!(decide(b"hot", 25.0), Err(BodyError::NotJson(_))));
        assert!(matches!(decide(b"{}", 25.0), Err(BodyError::NoTemperature)));
    }

    #[test]
    fn alert_keeps_body_and_properties_and_marks_the_type() {
        let mut message = Message::new(SENSOR_BODY);
        message.system.content_type = Some("application/json".into());
        message.system.content_encoding = Some("utf-8".into());
        message.system.message_id = Some("m1".into());
        message.system.output_name = Some("temperatureOutput".into());
        message.app = vec![
            ("sequenceNumber".into(), Some("7".into())),
            ("MessageType".into(), Some("Telemetry".into())),
            ("empty".into(), None),
        ];
        let alert = alert(&message);
        assert_eq!(alert.body, message.body);
        assert_eq!(
            alert.system.content_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(alert.system.content_encoding.as_deref(), Some("utf-8"));
        assert_eq!(alert.system.message_id, None, "a new message");
        assert_eq!(
            alert.system.output_name, None,
            "the driver names the output"
        );
        assert_eq!(
            alert.app,
            vec![
                ("sequenceNumber".into(), Some("7".into())),
                ("empty".into(), None),
                ("MessageType".into(), Some("Alert".into())),
            ]
        );
    }
}
