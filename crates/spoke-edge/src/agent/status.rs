//! `lastDesiredStatus` of the `$edgeAgent` reported properties: the outcome of the last
//! desired properties the agent processed (edge contracts spec §5.1, edgeAgent's
//! `DeploymentStatusCode`).

use serde_json::{Value, json};
use spoke_core::manifest::{
    ManifestError, STATUS_CONFIG_EMPTY, STATUS_CONFIG_FORMAT, STATUS_INVALID_SCHEMA_VERSION,
};

/// The `lastDesiredStatus.code` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// 200: the deployment is applied.
    Ok,
    /// 400: the configuration is malformed (`ConfigFormatError`).
    ConfigFormatError,
    /// 406: status unknown, e.g. while disconnected or shutting down.
    Unknown,
    /// 412: the `schemaVersion` is not supported (`InvalidSchemaVersion`).
    InvalidSchemaVersion,
    /// 417: no deployment is set (`ConfigEmptyError`).
    ConfigEmptyError,
    /// 500: applying the deployment failed.
    Failed,
}

impl StatusCode {
    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        match self {
            StatusCode::Ok => 200,
            StatusCode::ConfigFormatError => STATUS_CONFIG_FORMAT,
            StatusCode::Unknown => 406,
            StatusCode::InvalidSchemaVersion => STATUS_INVALID_SCHEMA_VERSION,
            StatusCode::ConfigEmptyError => STATUS_CONFIG_EMPTY,
            StatusCode::Failed => 500,
        }
    }

    /// The code for refused desired properties ([`ManifestError::status`]).
    pub fn of_error(error: &ManifestError) -> Self {
        match error.status() {
            STATUS_CONFIG_EMPTY => StatusCode::ConfigEmptyError,
            STATUS_INVALID_SCHEMA_VERSION => StatusCode::InvalidSchemaVersion,
            _ => StatusCode::ConfigFormatError,
        }
    }
}

/// `lastDesiredStatus`: a code and a human-readable description (empty when OK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// The code.
    pub code: StatusCode,
    /// Why, when not OK.
    pub description: String,
}

impl DeploymentStatus {
    /// 200 with an empty description.
    pub fn ok() -> Self {
        Self {
            code: StatusCode::Ok,
            description: String::new(),
        }
    }

    /// The status for refused desired properties: the error's code and message.
    pub fn refused(error: &ManifestError) -> Self {
        Self {
            code: StatusCode::of_error(error),
            description: error.to_string(),
        }
    }

    /// 417 before any deployment has been received.
    pub fn not_set() -> Self {
        Self {
            code: StatusCode::ConfigEmptyError,
            description: "the device's deployment configuration is not set".to_owned(),
        }
    }

    /// The reported form, `{"code": 200, "description": ""}`.
    pub fn to_json(&self) -> Value {
        json!({"code": self.code.as_u16(), "description": self.description})
    }
}
