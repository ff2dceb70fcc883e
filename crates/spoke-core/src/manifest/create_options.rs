//! Docker `createOptions`: reassembling the chunks a manifest splits them into, and splitting
//! them again for reported properties (edge contracts spec §3.1; `DockerConfig.cs`,
//! `JsonEx.ChunkedValue`).
//!
//! Twin values are limited in size, so long options are split over `createOptions`,
//! `createOptions01`, `createOptions02`, ... Rules, as edgeAgent applies them:
//! - Chunk fields are the `settings` keys matching `createOptions[0-9]*`, ASCII
//!   case-insensitively. They are ordered by key; the first must be bare `createOptions` and
//!   the one at position *n* must carry the number *n* (`createOptions01`; the number is read
//!   as an integer, so `createOptions1` also works when fewer than ten chunks follow).
//! - At most [`MAX_CHUNKS`] chunks.
//! - A chunk is a string; `null` counts as empty and any other JSON value as its JSON text
//!   (so `"createOptions": {"HostConfig": ...}` written as an object works too).
//! - The concatenation, if blank or `null`, means no options (an empty object); otherwise it
//!   must parse as a JSON object. Spoke parses strict JSON (RFC 8259), where Newtonsoft would
//!   also take comments and single quotes.
//!
//! Invariant: [`chunk`] output read back by [`assemble`] gives the same object, as long as the
//! serialized options fit in [`MAX_CHUNKS`] chunks of [`CHUNK_CHARS`] characters.

use serde_json::{Map, Value};

use super::error::ManifestError;
use super::json::Obj;

/// The most chunks edgeAgent reads (`Constants.TwinValueMaxChunks`).
pub const MAX_CHUNKS: usize = 100;

/// Characters per chunk when edgeAgent writes options back (`Constants.TwinValueMaxSize`).
pub const CHUNK_CHARS: usize = 512;

/// The chunk field name, as written in manifests.
const FIELD: &str = "createOptions";

/// The digits after `createOptions` if `key` names a chunk.
fn chunk_suffix(key: &str) -> Option<&str> {
    let prefix = key.get(..FIELD.len())?;
    let suffix = &key[FIELD.len()..];
    (prefix.eq_ignore_ascii_case(FIELD) && suffix.bytes().all(|b| b.is_ascii_digit()))
        .then_some(suffix)
}

/// Reads the create options of a docker module's `settings`: the chunks joined and parsed,
/// or an empty object when there are none.
pub(super) fn assemble(settings: &Obj<'_>) -> Result<Value, ManifestError> {
    let mut chunks: Vec<(&str, &String, &Value)> = settings
        .entries()
        .filter_map(|(key, value)| chunk_suffix(key).map(|suffix| (suffix, key, value)))
        .collect();
    if chunks.len() > MAX_CHUNKS {
        return Err(ManifestError::TooManyChunks {
            path: settings.path().to_owned(),
            count: chunks.len(),
            max: MAX_CHUNKS,
        });
    }
    chunks.sort_by(|a, b| a.0.cmp(b.0));
    let mut joined = String::new();
    for (position, (suffix, key, value)) in chunks.into_iter().enumerate() {
        let in_place = if position == 0 {
            suffix.is_empty()
        } else {
            suffix.parse::<usize>().ok() == Some(position)
        };
        if !in_place {
            return Err(ManifestError::ChunkSequence {
                path: settings.path().to_owned(),
                expected: chunk_name(position),
                found: key.clone(),
            });
        }
        match value {
            Value::String(s) => joined.push_str(s),
            Value::Null => {}
            other => joined.push_str(&other.to_string()),
        }
    }
    parse(&joined, || settings.path_of(FIELD))
}

/// The name of the chunk at `position`: `createOptions`, `createOptions01`, ...
fn chunk_name(position: usize) -> String {
    if position == 0 {
        FIELD.to_owned()
    } else {
        format!("{FIELD}{position:02}")
    }
}

/// Parses joined create options: blank or `null` is an empty object, anything else must be a
/// JSON object.
fn parse(text: &str, path: impl Fn() -> String) -> Result<Value, ManifestError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("null") {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(_) => Err(ManifestError::WrongType {
            path: path(),
            expected: "a JSON object (Docker ContainerCreate options)",
        }),
        Err(e) => Err(ManifestError::InvalidJson {
            path: path(),
            reason: e.to_string(),
        }),
    }
}

/// Splits create options into chunk fields as edgeAgent reports them: compact JSON cut every
/// [`CHUNK_CHARS`] characters, named `createOptions`, `createOptions01`, ...
pub fn chunk(options: &Value) -> Map<String, Value> {
    let text = options.to_string();
    let mut fields = Map::new();
    let mut rest = text.as_str();
    while !rest.is_empty() || fields.is_empty() {
        let end = rest
            .char_indices()
            .nth(CHUNK_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let (head, tail) = rest.split_at(end);
        fields.insert(chunk_name(fields.len()), Value::String(head.to_owned()));
        rest = tail;
    }
    fields
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(settings: &Value) -> Result<Value, ManifestError> {
        assemble(&Obj::new(settings, "m.settings".into()).unwrap())
    }

    #[test]
    fn suffixes() {
        assert_eq!(chunk_suffix("createOptions"), Some(""));
        assert_eq!(chunk_suffix("CREATEOPTIONS01"), Some("01"));
        assert_eq!(chunk_suffix("createOptions1x"), None);
        assert_eq!(chunk_suffix("create"), None);
        assert_eq!(chunk_suffix("xcreateOptions"), None);
        assert_eq!(chunk_suffix("createOptionsé"), None);
    }

    #[test]
    fn none_blank_and_null_are_empty() {
        for settings in [
            json!({}),
            json!({"createOptions": ""}),
            json!({"createOptions": "  "}),
            json!({"createOptions": "null"}),
            json!({"createOptions": "NULL"}),
            json!({"createOptions": null}),
            json!({"createOptions": "{}"}),
        ] {
            assert_eq!(read(&settings).unwrap(), json!({}), "{settings}");
        }
    }

    #[test]
    fn chunks_join_in_order() {
        let settings = json!({
            "createOptions02": "\"a\"}}",
            "createOptions": "{\"HostConfig\":",
            "CreateOptions01": "{\"NetworkMode\":",
        });
        assert_eq!(
            read(&settings).unwrap(),
            json!({"HostConfig": {"NetworkMode": "a"}})
        );
    }

    #[test]
    fn object_and_single_digit_chunks_are_read_like_edge_agent() {
        assert_eq!(
            read(&json!({"createOptions": {"Env": ["A=1"]}})).unwrap(),
            json!({"Env": ["A=1"]})
        );
        assert_eq!(
            read(&json!({"createOptions": "{\"a\":", "createOptions1": "1}"})).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn sequence_errors() {
        let gap = read(&json!({"createOptions": "{", "createOptions02": "}"})).unwrap_err();
        assert_eq!(
            gap,
            ManifestError::ChunkSequence {
                path: "m.settings".into(),
                expected: "createOptions01".into(),
                found: "createOptions02".into(),
            }
        );
        let no_first = read(&json!({"createOptions01": "{}"})).unwrap_err();
        assert!(
            no_first
                .to_string()
                .contains("expected chunk createOptions ")
        );
        let zero = read(&json!({"createOptions": "{", "createOptions00": "}"})).unwrap_err();
        assert!(matches!(zero, ManifestError::ChunkSequence { .. }));
        let twice = read(&json!({"createOptions": "{", "CREATEOPTIONS": "}"})).unwrap_err();
        assert!(matches!(twice, ManifestError::ChunkSequence { .. }));
        let huge = read(&json!({"createOptions": "{", "createOptions99999999999999999999": "}"}))
            .unwrap_err();
        assert!(matches!(huge, ManifestError::ChunkSequence { .. }));
    }

    #[test]
    fn hundred_chunks_at_most() {
        let mut settings = Map::new();
        settings.insert("createOptions".into(), json!("{\"a\":\""));
        for i in 1..MAX_CHUNKS - 1 {
            settings.insert(chunk_name(i), json!("x"));
        }
        settings.insert(chunk_name(MAX_CHUNKS - 1), json!("\"}"));
        let settings = Value::Object(settings);
        assert_eq!(read(&settings).unwrap()["a"].as_str().unwrap().len(), 98);

        let mut more = settings.as_object().unwrap().clone();
        more.insert(chunk_name(MAX_CHUNKS), json!(""));
        let err = read(&Value::Object(more)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.settings has 101 createOptions chunks, more than 100"
        );
    }

    #[test]
    fn bad_json_and_non_objects() {
        let err = read(&json!({"createOptions": "{\"a\":"})).unwrap_err();
        assert!(
            matches!(err, ManifestError::InvalidJson { ref path, .. } if path == "m.settings.createOptions")
        );
        let err = read(&json!({"createOptions": "[1]"})).unwrap_err();
        assert!(matches!(err, ManifestError::WrongType { .. }));
        let err = read(&json!({"createOptions": 5})).unwrap_err();
        assert!(matches!(err, ManifestError::WrongType { .. }));
    }

    #[test]
    fn chunk_round_trips() {
        let long: String = "é".repeat(700);
        let options = json!({"Labels": {"x": long}, "Env": ["A=1"]});
        let fields = chunk(&options);
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["createOptions", "createOptions01"]
        );
        assert_eq!(
            fields["createOptions"].as_str().unwrap().chars().count(),
            512
        );
        assert_eq!(read(&Value::Object(fields)).unwrap(), options);
        assert_eq!(
            chunk(&json!({})),
            json!({"createOptions": "{}"}).as_object().unwrap().clone()
        );
    }
}
