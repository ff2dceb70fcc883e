//! Registry entries: devices and modules as stored and as the REST API shows them
//! (spec §5.3), each with its twin.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::twin::Twin;

/// `enabled` / `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The identity may connect.
    #[default]
    Enabled,
    /// Connections are refused and live ones closed.
    Disabled,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
        }
    }
}

/// How an identity authenticates (`authentication.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AuthType {
    /// Symmetric keys and SAS tokens.
    #[default]
    #[serde(rename = "sas")]
    Sas,
    /// X.509 certificate matched by thumbprint.
    #[serde(rename = "selfSigned")]
    SelfSigned,
    /// X.509 certificate chained to a registered CA.
    #[serde(rename = "certificateAuthority")]
    CertificateAuthority,
    /// No credentials (modules of an edge device authenticate through it).
    #[serde(rename = "none")]
    None,
}

impl AuthType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Sas => "sas",
            AuthType::SelfSigned => "selfSigned",
            AuthType::CertificateAuthority => "certificateAuthority",
            AuthType::None => "none",
        }
    }
}

/// Primary and secondary symmetric keys (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SymmetricKey {
    /// Primary key.
    #[serde(default)]
    pub primary_key: Option<String>,
    /// Secondary key.
    #[serde(default)]
    pub secondary_key: Option<String>,
}

/// Primary and secondary certificate thumbprints (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct X509Thumbprint {
    /// Primary thumbprint.
    #[serde(default)]
    pub primary_thumbprint: Option<String>,
    /// Secondary thumbprint.
    #[serde(default)]
    pub secondary_thumbprint: Option<String>,
}

/// `authentication` of a device or module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// Mechanism.
    #[serde(default, rename = "type")]
    pub kind: AuthType,
    /// Keys, for `sas`.
    #[serde(default)]
    pub symmetric_key: SymmetricKey,
    /// Thumbprints, for `selfSigned`.
    #[serde(default)]
    pub x509_thumbprint: X509Thumbprint,
}

impl Authentication {
    /// The keys a SAS token may be signed with.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        [
            self.symmetric_key.primary_key.as_deref(),
            self.symmetric_key.secondary_key.as_deref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Whether `thumbprint` (hex, any case) is one of the registered thumbprints.
    pub fn matches_thumbprint(&self, thumbprint: &str) -> bool {
        [
            self.x509_thumbprint.primary_thumbprint.as_deref(),
            self.x509_thumbprint.secondary_thumbprint.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.eq_ignore_ascii_case(thumbprint))
    }
}

/// A registered device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceEntry {
    /// Id.
    pub device_id: DeviceId,
    /// Changes every time the id is re-created.
    pub generation_id: String,
    /// Registry etag counter (the twin has its own).
    pub etag: u64,
    /// enabled / disabled.
    pub status: Status,
    /// Free text given with the status.
    pub status_reason: Option<String>,
    /// When the status last changed (RFC 3339).
    pub status_updated_time: String,
    /// Credentials.
    pub authentication: Authentication,
    /// Whether this is an IoT Edge device.
    pub iot_edge: bool,
    /// Scope (`ms-azure-iot-edge://...` for edge devices).
    pub device_scope: Option<String>,
    /// Parent edge scopes.
    pub parent_scopes: Vec<String>,
    /// The last `modulesContent` applied to this edge device, kept so that module twins
    /// created later (by the edge agent) start with their desired properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_content: Option<serde_json::Value>,
    /// The device twin.
    pub twin: Twin,
}

/// A registered module.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleEntry {
    /// Device id.
    pub device_id: DeviceId,
    /// Module id.
    pub module_id: ModuleId,
    /// Changes every time the id is re-created.
    pub generation_id: String,
    /// Registry etag counter.
    pub etag: u64,
    /// `IotEdge` for modules created by an edge agent.
    pub managed_by: Option<String>,
    /// Credentials.
    pub authentication: Authentication,
    /// The module twin.
    pub twin: Twin,
}

/// What other components know about an identity's connection, shown in registry JSON.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    /// Whether a connection is live.
    pub connected: bool,
    /// Last activity (RFC 3339), if any.
    pub last_activity: Option<String>,
    /// Pending C2D messages.
    pub c2d_count: u64,
}

const NEVER: &str = "0001-01-01T00:00:00Z";

/// The registry etag: base64 of the decimal counter (spec §4 "Etag").
pub fn registry_etag(counter: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(counter.to_string())
}

fn auth_json(auth: &Authentication) -> Value {
    json!({
        "symmetricKey": {
            "primaryKey": auth.symmetric_key.primary_key,
            "secondaryKey": auth.symmetric_key.secondary_key,
        },
        "x509Thumbprint": {
            "primaryThumbprint": auth.x509_thumbprint.primary_thumbprint,
            "secondaryThumbprint": auth.x509_thumbprint.secondary_thumbprint,
        },
        "type": auth.kind.as_str(),
    })
}

impl DeviceEntry {
    /// The REST representation (spec §5.3 "Device response").
    pub fn to_json(&self, presence: &Presence) -> Value {
        json!({
            "deviceId": self.device_id,
            "generationId": self.generation_id,
            "etag": registry_etag(self.etag),
            "connectionState": connection_state(presence),
            "status": self.status.as_str(),
            "statusReason": self.status_reason,
            "connectionStateUpdatedTime": NEVER,
            "statusUpdatedTime": self.status_updated_time,
            "lastActivityTime": presence.last_activity.as_deref().unwrap_or(NEVER),
            "cloudToDeviceMessageCount": presence.c2d_count,
            "authentication": auth_json(&self.authentication),
            "capabilities": {"iotEdge": self.iot_edge},
            "deviceScope": self.device_scope,
            "parentScopes": self.parent_scopes,
        })
    }
}

impl ModuleEntry {
    /// The REST representation of a module.
    pub fn to_json(&self, presence: &Presence) -> Value {
        json!({
            "moduleId": self.module_id,
            "managedBy": self.managed_by,
            "deviceId": self.device_id,
            "generationId": self.generation_id,
            "etag": registry_etag(self.etag),
            "connectionState": connection_state(presence),
            "connectionStateUpdatedTime": NEVER,
            "lastActivityTime": presence.last_activity.as_deref().unwrap_or(NEVER),
            "cloudToDeviceMessageCount": presence.c2d_count,
            "authentication": auth_json(&self.authentication),
        })
    }
}

/// `Connected` / `Disconnected`.
pub fn connection_state(presence: &Presence) -> &'static str {
    if presence.connected {
        "Connected"
    } else {
        "Disconnected"
    }
}
