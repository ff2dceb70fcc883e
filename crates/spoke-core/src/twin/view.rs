//! Rendered forms of a twin and of a twin change: the service twin document (spec §4,
//! REST `GET/PATCH/PUT /twins/{id}`), the device desired-property notification (§3.8) and
//! the `twinChangeEvents` notification body (§4 "Twin change notifications").

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::datetime;

use super::Twin;
use super::metadata::format_timestamp;

/// Registry fields shown in the service twin document; the registry owns them.
///
/// String fields carry Azure's wire values as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinHeader {
    /// `deviceId`.
    pub device_id: String,
    /// `moduleId`, for a module twin.
    pub module_id: Option<String>,
    /// `deviceEtag`: the registry etag of the device or module (not the twin etag).
    pub device_etag: String,
    /// `status`: `enabled` or `disabled`.
    pub status: String,
    /// `statusReason`, shown only when set.
    pub status_reason: Option<String>,
    /// `statusUpdateTime`.
    pub status_update_time: OffsetDateTime,
    /// `connectionState`: `Connected` or `Disconnected`.
    pub connection_state: String,
    /// `lastActivityTime`.
    pub last_activity_time: OffsetDateTime,
    /// `cloudToDeviceMessageCount`: pending C2D messages.
    pub cloud_to_device_message_count: u64,
    /// `authenticationType`: `sas`, `selfSigned`, `certificateAuthority` or `none`.
    pub authentication_type: String,
    /// `x509Thumbprint`.
    pub x509_thumbprint: X509Thumbprint,
    /// `modelId` (Plug and Play model), empty when none.
    pub model_id: String,
    /// `capabilities.iotEdge`; `None` omits `capabilities` (module twins).
    pub iot_edge: Option<bool>,
    /// `deviceScope`, shown only when set.
    pub device_scope: Option<String>,
    /// `parentScopes`, shown only when set.
    pub parent_scopes: Option<Vec<String>>,
}

/// `x509Thumbprint` of a twin header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct X509Thumbprint {
    /// `primaryThumbprint`.
    pub primary: Option<String>,
    /// `secondaryThumbprint`.
    pub secondary: Option<String>,
}

impl TwinHeader {
    /// Azure's "never happened" time, `0001-01-01T00:00:00Z`.
    pub const UNSET_TIME: OffsetDateTime = datetime!(0001-01-01 0:00 UTC);

    /// The header of a new device as Azure shows it: enabled, disconnected, SAS, no edge,
    /// times unset, empty device etag and model id.
    pub fn new(device_id: impl Into<String>) -> Self {
        TwinHeader {
            device_id: device_id.into(),
            module_id: None,
            device_etag: String::new(),
            status: "enabled".to_owned(),
            status_reason: None,
            status_update_time: Self::UNSET_TIME,
            connection_state: "Disconnected".to_owned(),
            last_activity_time: Self::UNSET_TIME,
            cloud_to_device_message_count: 0,
            authentication_type: "sas".to_owned(),
            x509_thumbprint: X509Thumbprint::default(),
            model_id: String::new(),
            iot_edge: Some(false),
            device_scope: None,
            parent_scopes: None,
        }
    }
}

impl Twin {
    /// The full service twin document (spec §4), in Azure's key order. `tags` is omitted
    /// while empty, as Azure does for a new twin.
    pub fn service_json(&self, header: &TwinHeader) -> Value {
        let mut out = Map::new();
        let mut put = |key: &str, value: Value| {
            out.insert(key.to_owned(), value);
        };
        put("deviceId", Value::from(header.device_id.as_str()));
        if let Some(module_id) = &header.module_id {
            put("moduleId", Value::from(module_id.as_str()));
        }
        put("etag", Value::from(self.etag()));
        put("deviceEtag", Value::from(header.device_etag.as_str()));
        put("status", Value::from(header.status.as_str()));
        if let Some(reason) = &header.status_reason {
            put("statusReason", Value::from(reason.as_str()));
        }
        put(
            "statusUpdateTime",
            Value::from(format_timestamp(header.status_update_time)),
        );
        put(
            "connectionState",
            Value::from(header.connection_state.as_str()),
        );
        put(
            "lastActivityTime",
            Value::from(format_timestamp(header.last_activity_time)),
        );
        put(
            "cloudToDeviceMessageCount",
            Value::from(header.cloud_to_device_message_count),
        );
        put(
            "authenticationType",
            Value::from(header.authentication_type.as_str()),
        );
        let thumbprint = Map::from_iter([
            (
                "primaryThumbprint".to_owned(),
                Value::from(header.x509_thumbprint.primary.clone()),
            ),
            (
                "secondaryThumbprint".to_owned(),
                Value::from(header.x509_thumbprint.secondary.clone()),
            ),
        ]);
        put("x509Thumbprint", Value::Object(thumbprint));
        put("modelId", Value::from(header.model_id.as_str()));
        put("version", Value::from(self.version));
        if !self.tags.is_empty() {
            put("tags", Value::Object(self.tags.clone()));
        }
        let properties = Map::from_iter([
            ("desired".to_owned(), self.desired.service_json()),
            ("reported".to_owned(), self.reported.service_json()),
        ]);
        put("properties", Value::Object(properties));
        if let Some(iot_edge) = header.iot_edge {
            let capabilities = Map::from_iter([("iotEdge".to_owned(), Value::Bool(iot_edge))]);
            put("capabilities", Value::Object(capabilities));
        }
        if let Some(scope) = &header.device_scope {
            put("deviceScope", Value::from(scope.as_str()));
        }
        if let Some(parents) = &header.parent_scopes {
            put("parentScopes", Value::from(parents.clone()));
        }
        Value::Object(out)
    }
}

/// Which service operation produced a change (`opType` of a twin change notification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// PATCH, reported PATCH or configuration content: `updateTwin`.
    Update,
    /// PUT: `replaceTwin`.
    Replace,
}

impl ChangeKind {
    /// The `opType` application property value.
    pub fn op_type(self) -> &'static str {
        match self {
            ChangeKind::Update => "updateTwin",
            ChangeKind::Replace => "replaceTwin",
        }
    }
}

/// What one operation wrote to a desired or reported property set.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionChange {
    /// The patch as applied (`null` for deleted keys), without `$version`.
    pub patch: Map<String, Value>,
    /// `$metadata` of the keys the patch wrote, with the section's own `$lastUpdated`.
    pub metadata: Value,
    /// The set's new `$version`.
    pub version: u64,
}

impl SectionChange {
    /// `{...patch, "$version": N}`.
    fn with_version(&self) -> Map<String, Value> {
        let mut out = self.patch.clone();
        out.insert("$version".to_owned(), Value::from(self.version));
        out
    }
}

/// The outcome of a twin operation: what changed, for notifications and responses.
#[derive(Debug, Clone, PartialEq)]
pub struct TwinChange {
    /// The operation.
    pub kind: ChangeKind,
    /// The whole-twin version after the operation.
    pub version: u64,
    /// The tags patch as applied, when tags changed.
    pub tags: Option<Map<String, Value>>,
    /// The desired change, when desired properties changed.
    pub desired: Option<SectionChange>,
    /// The reported change, when reported properties changed.
    pub reported: Option<SectionChange>,
}

impl TwinChange {
    pub(crate) fn none(kind: ChangeKind, version: u64) -> Self {
        TwinChange {
            kind,
            version,
            tags: None,
            desired: None,
            reported: None,
        }
    }

    /// Whether nothing was written (no version moved).
    pub fn is_empty(&self) -> bool {
        self.tags.is_none() && self.desired.is_none() && self.reported.is_none()
    }

    /// Whether desired properties changed (connected devices must be notified).
    pub fn desired_changed(&self) -> bool {
        self.desired.is_some()
    }

    /// The new desired `$version`, when desired properties changed.
    pub fn desired_version(&self) -> Option<u64> {
        self.desired.as_ref().map(|d| d.version)
    }

    /// Body of the device notification on `$iothub/twin/PATCH/properties/desired/?$version=N`
    /// (spec §3.8): the patch as applied plus `"$version": N`.
    pub fn desired_notification(&self) -> Option<Value> {
        self.desired
            .as_ref()
            .map(|d| Value::Object(d.with_version()))
    }

    /// Body of the `twinChangeEvents` message (spec §4): `{"version":V,"tags"?:{..},
    /// "properties":{"desired"|"reported":{<patch>,"$metadata":{..},"$version":N}}}`;
    /// `None` when nothing changed.
    pub fn notification_body(&self) -> Option<Value> {
        if self.is_empty() {
            return None;
        }
        let mut out = Map::new();
        out.insert("version".to_owned(), Value::from(self.version));
        if let Some(tags) = &self.tags {
            out.insert("tags".to_owned(), Value::Object(tags.clone()));
        }
        let mut properties = Map::new();
        for (name, change) in [("desired", &self.desired), ("reported", &self.reported)] {
            if let Some(change) = change {
                let mut body = change.patch.clone();
                body.insert("$metadata".to_owned(), change.metadata.clone());
                body.insert("$version".to_owned(), Value::from(change.version));
                properties.insert(name.to_owned(), Value::Object(body));
            }
        }
        if !properties.is_empty() {
            out.insert("properties".to_owned(), Value::Object(properties));
        }
        Some(Value::Object(out))
    }
}
