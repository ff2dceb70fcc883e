//! The `control` input and the `reset` direct method of Azure's `SimulatedTemperatureSensor`.
//!
//! A control message body is one command object or an array of them: `{"command": C}` where
//! C names `Reset` or `NoOperation`, by name (any case, as Json.NET reads enums) or by number
//! (0 and 1). Any `Reset` in the body resets the machine temperature.

use serde_json::Value;

/// The input control messages arrive on.
pub const CONTROL_INPUT: &str = "control";

/// The direct method that resets the machine temperature.
pub const RESET_METHOD: &str = "reset";

/// A control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Cool the machine back to its minimum temperature.
    Reset,
    /// Nothing.
    NoOperation,
}

/// Why a control message was not understood.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The body is not JSON.
    #[error("a control message must be JSON")]
    NotJson(#[source] serde_json::Error),
    /// The body is not a command object or an array of command objects.
    #[error("a control message must be {{\"command\": ..}} or an array of them")]
    Shape,
    /// A command names neither `Reset` nor `NoOperation`.
    #[error("unknown control command {command}")]
    UnknownCommand {
        /// The command as sent.
        command: Value,
    },
}

fn command(value: &Value) -> Option<Command> {
    match value {
        Value::String(name) if name.eq_ignore_ascii_case("reset") => Some(Command::Reset),
        Value::String(name) if name.eq_ignore_ascii_case("nooperation") => {
            Some(Command::NoOperation)
        }
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(Command::Reset),
            Some(1) => Some(Command::NoOperation),
            _ => None,
        },
        _ => None,
    }
}

/// The commands of a control message body, in order.
pub fn parse_control(body: &[u8]) -> Result<Vec<Command>, ControlError> {
    let value: Value = serde_json::from_slice(body).map_err(ControlError::NotJson)?;
    let entries = match &value {
        Value::Array(entries) => entries.iter().collect(),
        entry => vec![entry],
    };
    entries
        .into_iter()
        .map(|entry| {
            let value = entry.get("command").ok_or(ControlError::Shape)?;
            command(value).ok_or_else(|| ControlError::UnknownCommand {
                command: value.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_commands_and_arrays() {
        let cases: [(&str, &[Command]); 6] = [
            (r#"{"command":"reset"}"#, &[Command::Reset]),
            (r#"{"command":"Reset","extra":1}"#, &[Command::Reset]),
            (r#"{"command":0}"#, &[Command::Reset]),
            (r#"{"command":"NoOperation"}"#, &[Command::NoOperation]),
            (
                r#"[{"command":1},{"command":"RESET"}]"#,
                &[Command::NoOperation, Command::Reset],
            ),
            ("[]", &[]),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_control(body.as_bytes()).unwrap(), expected, "{body}");
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in ["", "reset", "{\"command\""] {
            assert!(
                matches!(
                    parse_control(body.as_bytes()),
                    Err(ControlError::NotJson(_))
                ),
                "{body}"
            );
        }
        for body in ["{}", r#"{"cmd":"reset"}"#, "[1]", "[[0]]", "null", "7"] {
            assert!(
                matches!(parse_control(body.as_bytes()), Err(ControlError::Shape)),
                "{body}"
            );
        }
        for body in [
            r#"{"command":"reboot"}"#,
            r#"{"command":2}"#,
            r#"{"command":-1}"#,
        ] {
            assert!(
                matches!(
                    parse_control(body.as_bytes()),
                    Err(ControlError::UnknownCommand { .. })
                ),
                "{body}"
            );
        }
    }
}
