//! The one error type of the manifest model, and the edgeAgent status code each error maps
//! to (`lastDesiredStatus.code`, edge contracts spec §5.1).
//!
//! Every variant names the offending place as a dotted path rooted at the module twin, such
//! as `$edgeAgent.modules.sensor.settings.createOptions`, so the description reported in
//! `lastDesiredStatus.description` (or printed by `spoke deployment apply`) says which module
//! and which field are wrong.

use crate::ids::IdError;

/// `lastDesiredStatus.code` for a configuration in the wrong format (`ConfigFormatError`).
pub const STATUS_CONFIG_FORMAT: u16 = 400;
/// `lastDesiredStatus.code` for an unsupported `schemaVersion` (`InvalidSchemaVersion`).
pub const STATUS_INVALID_SCHEMA_VERSION: u16 = 412;
/// `lastDesiredStatus.code` when no deployment is set (`ConfigEmptyError`).
pub const STATUS_CONFIG_EMPTY: u16 = 417;

/// Why a deployment manifest or a module twin's desired properties were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The desired properties hold nothing but `$version` and `$metadata`.
    #[error("{path} has an empty configuration; set a deployment manifest")]
    Empty {
        /// The module twin (`$edgeAgent` or `$edgeHub`).
        path: String,
    },
    /// `schemaVersion` is not one this parser supports.
    #[error("{path} {found:?} is not supported; expected {supported}")]
    SchemaVersion {
        /// Dotted path of the `schemaVersion` field.
        path: String,
        /// The version as written.
        found: String,
        /// The supported versions, for the message.
        supported: &'static str,
    },
    /// A required field is absent (or `null`).
    #[error("{path} is required")]
    Missing {
        /// Dotted path of the missing field.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path} must be {expected}")]
    WrongType {
        /// Dotted path of the field.
        path: String,
        /// What it must be, for the message ("a string", "a JSON object", ...).
        expected: &'static str,
    },
    /// A field has a value outside its allowed set or range.
    #[error("{path} is {found}; expected {expected}")]
    InvalidValue {
        /// Dotted path of the field.
        path: String,
        /// The value as written (JSON text, truncated to 64 characters).
        found: String,
        /// What is allowed, for the message.
        expected: &'static str,
    },
    /// `createOptions` chunks are not `createOptions`, `createOptions01`, `createOptions02`, ...
    #[error("{path}: expected chunk {expected} but found {found}")]
    ChunkSequence {
        /// Dotted path of the module's `settings`.
        path: String,
        /// The chunk name expected at this position.
        expected: String,
        /// The chunk name found there.
        found: String,
    },
    /// More `createOptions` chunks than the 100 edgeAgent reads.
    #[error("{path} has {count} createOptions chunks, more than {max}")]
    TooManyChunks {
        /// Dotted path of the module's `settings`.
        path: String,
        /// How many chunks there are.
        count: usize,
        /// The limit, [`super::create_options::MAX_CHUNKS`].
        max: usize,
    },
    /// The concatenated `createOptions` are not valid JSON.
    #[error("{path} is not valid JSON: {reason}")]
    InvalidJson {
        /// Dotted path of the `createOptions` field.
        path: String,
        /// The JSON parser's message.
        reason: String,
    },
    /// A module name is not a valid module ID.
    #[error("{path}: module name {name:?} is invalid: {reason}")]
    InvalidModuleName {
        /// Dotted path of the map holding the name.
        path: String,
        /// The name as written (truncated to 64 characters).
        name: String,
        /// Which identifier rule it breaks.
        reason: IdError,
    },
    /// A module name is taken by the runtime or not allowed in this place.
    #[error("{path}: module name {name:?} is reserved")]
    ReservedModuleName {
        /// Dotted path of the map holding the name.
        path: String,
        /// The reserved name.
        name: String,
    },
    /// A `{{...}}` variable that the MQTT broker policy does not define.
    #[error("{path} uses the unknown variable {variable}; expected {known}")]
    UnknownVariable {
        /// Dotted path of the identity or resource.
        path: String,
        /// The variable as written, braces included (truncated to 64 characters).
        variable: String,
        /// The variables that exist, for the message.
        known: &'static str,
    },
    /// A key that this document shape does not allow.
    #[error("{path} is not allowed here; {hint}")]
    UnexpectedKey {
        /// Dotted path of the key.
        path: String,
        /// What is allowed instead.
        hint: &'static str,
    },
}

impl ManifestError {
    /// The edgeAgent `lastDesiredStatus.code` for this error (spec §5.1): 417 for an empty
    /// configuration, 412 for an unsupported schema version and 400 for everything else.
    ///
    /// Azure's edgeHub reports every refused `$edgeHub` configuration with 400; a caller
    /// reporting for the edge hub should do the same.
    pub fn status(&self) -> u16 {
        match self {
            ManifestError::Empty { .. } => STATUS_CONFIG_EMPTY,
            ManifestError::SchemaVersion { .. } => STATUS_INVALID_SCHEMA_VERSION,
            _ => STATUS_CONFIG_FORMAT,
        }
    }
}

/// Shortens user text quoted in an error message to 64 characters.
pub(super) fn clip(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let path = String::from("$edgeAgent");
        assert_eq!(ManifestError::Empty { path: path.clone() }.status(), 417);
        let schema = ManifestError::SchemaVersion {
            path: path.clone(),
            found: "2.0".into(),
            supported: "1.0 or 1.1",
        };
        assert_eq!(schema.status(), 412);
        assert_eq!(ManifestError::Missing { path }.status(), 400);
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(70);
        assert_eq!(clip(&long), format!("{}...", "é".repeat(64)));
    }
}
