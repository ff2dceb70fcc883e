//! `$edgeAgent` direct methods (spec §5.2): `ping`, `RestartModule`, `GetModuleLogs`.
//!
//! Requests are parsed here (pure, unit-tested); the daemon loop runs them against its modules.
//! Errors follow edgeAgent: 400 `{"message"}` for an unknown method or a bad payload, 500 for a
//! failure while running it. `GetModuleLogs` supports `encoding: "none"` (gzip answers 400) and
//! `contentType` `text` or `json`, and trims its answer to the 128 KB method limit.

use serde::Deserialize;
use serde_json::{Value, json};
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;

use crate::runtime::{LogEntry, LogOptions, LogSource};

/// The method answer limit (128 KB), less room for the JSON around the payload.
pub const MAX_ANSWER: usize = 120 * 1024;

/// A parsed `$edgeAgent` method call.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMethod {
    /// `ping`.
    Ping,
    /// `RestartModule`.
    Restart(ModuleId),
    /// `GetModuleLogs`: which modules (exact names or `.*`-style patterns), how, in what form.
    Logs {
        /// One entry per `items[]`.
        items: Vec<LogsItem>,
        /// `contentType: "json"` (else text).
        json: bool,
    },
}

/// One `items[]` entry of `GetModuleLogs`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsItem {
    /// The `id` pattern.
    pub pattern: String,
    /// `filter.tail` / `filter.since`.
    pub options: LogOptions,
}

/// A refused call: status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodError {
    /// 400 or 500.
    pub status: i32,
    /// For people.
    pub message: String,
}

impl MethodError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    /// The answer payload.
    pub fn payload(&self) -> Value {
        json!({"message": self.message})
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestartRequest {
    schema_version: String,
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogsRequest {
    schema_version: String,
    items: Vec<LogsItemRequest>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LogsItemRequest {
    id: String,
    #[serde(default)]
    filter: LogsFilter,
}

#[derive(Debug, Default, Deserialize)]
struct LogsFilter {
    tail: Option<usize>,
    since: Option<Value>,
}

fn schema_ok(version: &str) -> Result<(), MethodError> {
    if version.split('.').next() == Some("1") {
        Ok(())
    } else {
        Err(MethodError::bad(format!(
            "schemaVersion {version} is not supported; use 1.0"
        )))
    }
}

fn payload<T: for<'de> Deserialize<'de>>(name: &str, payload: &Value) -> Result<T, MethodError> {
    serde_json::from_value(payload.clone())
        .map_err(|e| MethodError::bad(format!("invalid {name} payload: {e}")))
}

/// A `since` value: seconds since the Unix epoch, RFC 3339, or a duration back from `now`
/// (`90m`, `1d`).
pub fn parse_since(value: &Value, now: OffsetDateTime) -> Result<OffsetDateTime, MethodError> {
    let bad = || MethodError::bad(format!("invalid since {value}"));
    match value {
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(bad),
        Value::String(s) => crate::management::api::parse_since(s, now).map_err(MethodError::bad),
        _ => Err(bad()),
    }
}

/// Parses a method call addressed to `$edgeAgent`.
pub fn parse(name: &str, body: &Value, now: OffsetDateTime) -> Result<AgentMethod, MethodError> {
    match name {
        "ping" => Ok(AgentMethod::Ping),
        "RestartModule" => {
            let request: RestartRequest = payload(name, body)?;
            schema_ok(&request.schema_version)?;
            let id = ModuleId::parse(&request.id)
                .map_err(|e| MethodError::bad(format!("invalid module id: {e}")))?;
            Ok(AgentMethod::Restart(id))
        }
        "GetModuleLogs" => {
            let request: LogsRequest = payload(name, body)?;
            schema_ok(&request.schema_version)?;
            if request
                .encoding
                .as_deref()
                .is_some_and(|e| !e.eq_ignore_ascii_case("none"))
            {
                return Err(MethodError::bad("only encoding \"none\" is supported"));
            }
            let json = match request.content_type.as_deref() {
                None => false,
                Some(t) if t.eq_ignore_ascii_case("text") => false,
                Some(t) if t.eq_ignore_ascii_case("json") => true,
                Some(t) => {
                    return Err(MethodError::bad(format!(
                        "contentType {t} is not json or text"
                    )));
                }
            };
            let items = request
                .items
                .into_iter()
                .map(|item| {
                    Ok(LogsItem {
                        pattern: item.id,
                        options: LogOptions {
                            tail: item.filter.tail,
                            since: item
                                .filter
                                .since
                                .as_ref()
                                .map(|s| parse_since(s, now))
                                .transpose()?,
                            follow: false,
                        },
                    })
                })
                .collect::<Result<_, MethodError>>()?;
            Ok(AgentMethod::Logs { items, json })
        }
        other => Err(MethodError::bad(format!(
            "Command '{other}' not found. The supported commands are - ping, RestartModule, GetModuleLogs"
        ))),
    }
}

/// Whether module `name` matches an `id` pattern: the exact name, or a pattern of literal
/// text and `.*` wildcards (what callers use from edgeAgent's .NET regular expressions).
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    let pattern = pattern.strip_suffix('$').unwrap_or(pattern);
    let parts: Vec<&str> = pattern.split(".*").collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    if parts.len() == 1 {
        return pattern == name;
    }
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        let Some(at) = rest.find(part) else {
            return false;
        };
        rest = &rest[at + part.len()..];
    }
    rest.ends_with(last)
}

/// The payload text of one module's log lines, newest kept when over `budget` bytes.
pub fn render_logs(module: &str, entries: &[LogEntry], json: bool, budget: usize) -> String {
    let lines: Vec<String> = entries
        .iter()
        .map(|e| {
            let text = String::from_utf8_lossy(&e.line);
            if json {
                let stream = if e.source == LogSource::Stderr { "stderr" } else { "stdout" };
                json!({"id": module, "stream": stream, "text": text, "timestamp": e.timestamp.unix_timestamp()})
                    .to_string()
            } else {
                text.into_owned()
            }
        })
        .collect();
    let mut kept = Vec::new();
    let mut size = 0;
    for line in lines.iter().rev() {
        if size + line.len() + 1 > budget {
            break;
        }
        size += line.len() + 1;
        kept.push(line.as_str());
    }
    kept.reverse();
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-01-02 00:00 UTC);

    #[test]
    fn parses_the_three_methods() {
        assert_eq!(parse("ping", &Value::Null, NOW), Ok(AgentMethod::Ping));
        assert_eq!(
            parse(
                "RestartModule",
                &json!({"schemaVersion": "1.0", "id": "filter"}),
                NOW
            ),
            Ok(AgentMethod::Restart(ModuleId::parse("filter").unwrap()))
        );
        let logs = parse(
            "GetModuleLogs",
            &json!({"schemaVersion": "1.0", "items": [{"id": "f.*", "filter": {"tail": 10, "since": "1h"}}], "encoding": "none", "contentType": "json"}),
            NOW,
        )
        .unwrap();
        let AgentMethod::Logs { items, json } = logs else {
            panic!()
        };
        assert!(json);
        assert_eq!(items[0].options.tail, Some(10));
        assert_eq!(items[0].options.since, Some(NOW - time::Duration::hours(1)));
    }

    #[test]
    fn refusals_are_400_with_a_message() {
        for (name, body) in [
            ("reboot", Value::Null),
            ("RestartModule", json!({"schemaVersion": "2.0", "id": "x"})),
            ("RestartModule", json!({"id": "x"})),
            (
                "GetModuleLogs",
                json!({"schemaVersion": "1.0", "items": [], "encoding": "gzip"}),
            ),
            (
                "GetModuleLogs",
                json!({"schemaVersion": "1.0", "items": [{"id": "x", "filter": {"since": "soon"}}]}),
            ),
            (
                "GetModuleLogs",
                json!({"schemaVersion": "1.0", "items": [{"id": "x", "filter": {"since": "100000000000y"}}]}),
            ),
        ] {
            let err = parse(name, &body, NOW).unwrap_err();
            assert_eq!(err.status, 400, "{name} {body}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn patterns() {
        assert!(matches("filter", "filter"));
        assert!(!matches("filter", "filter2"));
        assert!(matches(".*", "anything"));
        assert!(matches("^sim.*sensor$", "simulated-sensor"));
        assert!(matches("edge.*", "edgeHub"));
        assert!(!matches("edge.*", "myedge"));
    }

    #[test]
    fn logs_keep_the_newest_lines_within_budget() {
        let entry = |text: &str| LogEntry {
            source: LogSource::Stdout,
            timestamp: NOW,
            line: Bytes::from(text.to_owned()),
        };
        let entries = [entry("one"), entry("two"), entry("three")];
        assert_eq!(render_logs("m", &entries, false, 1024), "one\ntwo\nthree");
        assert_eq!(render_logs("m", &entries, false, 10), "two\nthree");
        let json_lines = render_logs("m", &entries[..1], true, 1024);
        assert_eq!(
            serde_json::from_str::<Value>(&json_lines).unwrap()["text"],
            "one"
        );
    }
}
