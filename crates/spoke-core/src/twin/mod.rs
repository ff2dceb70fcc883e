//! Device and module twin documents: state, merge rules, versions, etags and views
//! (protocol spec §3.8, §4, §5.2). I/O-free: callers pass the current time in.
//!
//! A [`Twin`] owns tags, desired and reported properties (each property set with its
//! `$version` and `$metadata`), the whole-twin `version` and the etag counter. The registry
//! fields shown in the service view (status, connection state, ...) belong to the registry;
//! callers pass them in a [`TwinHeader`] when rendering.
//!
//! Operations validate first ([`limits`]) and commit only on success, so a refused request
//! leaves the twin untouched. A committed change bumps, once each:
//! - the `$version` of every property set it wrote, plus its `$metadata` (see [`metadata`]);
//! - the whole-twin `version` and the etag counter.
//!
//! Decisions where Azure is not documented:
//! - **New twin**: desired and reported `$version` 1, `version` 2, etag `AAAAAAAAAAE=`
//!   (counter 1), `$metadata.$lastUpdated` = the creation time given. This is what Azure
//!   shows for a freshly created device (Event Grid `DeviceCreated` and Azure edge docs
//!   samples); the registry passes the device creation time.
//! - **PATCH counts every key it names**: a non-empty section patch is a write even if it
//!   leaves values identical or only deletes missing keys, as in Azure: the section's
//!   `$version` increments, the named keys get new `$metadata`, devices get the patch. An
//!   empty section patch (`{}`) changes nothing.
//! - **PUT and configuration content apply as a diff** ([`merge::diff`]): only values that
//!   actually change are written, get new metadata and reach devices (with `null` for removed
//!   keys). Re-applying identical content is a no-op, so deployments can be re-evaluated
//!   often without bumping versions or waking devices.
//! - **PUT accepts a service view back**: `properties.reported` and the root `$metadata` and
//!   `$version` of `properties.desired` are ignored in a replace, so the output of
//!   `az iot hub device-twin show` can be sent to `replace` unchanged. A PATCH that names
//!   `properties.reported` is refused ([`TwinError::ReportedNotAllowed`]); `$` keys anywhere
//!   else are refused as invalid keys.
//! - Registry keys at the top of a PATCH or PUT body (`deviceId`, `etag`, `version`,
//!   `status`, ...) are ignored: the SDK's `Twin` model may carry them. A section that is
//!   absent or `null` is untouched by PATCH and emptied by PUT.
//!
//! Storage form (serde, stable): `{"version":2,"etagCounter":1,"tags":{},"desired":{"version":1,
//! "values":{},"metadata":{"lastUpdated":"<RFC 3339>","lastUpdatedVersion":N?,"children":{..}}},
//! "reported":{...}}`.

pub mod fuzzing;
pub mod limits;
mod merge;
pub mod metadata;
mod view;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use limits::{KeyProblem, Section, TwinError};
pub use merge::{fold, merge};
pub use metadata::format_timestamp;
pub use view::{ChangeKind, SectionChange, TwinChange, TwinHeader, X509Thumbprint};

use metadata::MetaNode;

/// A device or module twin (protocol spec §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Twin {
    version: u64,
    etag_counter: u64,
    tags: Map<String, Value>,
    desired: PropertySet,
    reported: PropertySet,
}

/// Desired or reported properties with their `$version` and `$metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PropertySet {
    version: u64,
    values: Map<String, Value>,
    metadata: MetaNode,
}

impl PropertySet {
    fn new(created: OffsetDateTime) -> Self {
        PropertySet {
            version: 1,
            values: Map::new(),
            metadata: MetaNode::new(created, None),
        }
    }

    /// Installs `values` (already `patch` merged into the old values) and records the write.
    fn commit(
        &mut self,
        values: Map<String, Value>,
        patch: Map<String, Value>,
        at: OffsetDateTime,
        track_version: bool,
    ) -> SectionChange {
        self.version = self.version.saturating_add(1);
        self.values = values;
        self.metadata
            .apply(&patch, at, track_version.then_some(self.version));
        SectionChange {
            metadata: self.metadata.to_json_for_patch(&patch),
            patch,
            version: self.version,
        }
    }

    /// `{...values, "$version": N}`: the device view of the set (spec §3.8).
    fn device_json(&self) -> Value {
        let mut out = self.values.clone();
        out.insert("$version".to_owned(), Value::from(self.version));
        Value::Object(out)
    }

    /// `{...values, "$metadata": {...}, "$version": N}`: the service view of the set (§4).
    fn service_json(&self) -> Value {
        let mut out = self.values.clone();
        out.insert("$metadata".to_owned(), self.metadata.to_json(&self.values));
        out.insert("$version".to_owned(), Value::from(self.version));
        Value::Object(out)
    }
}

/// Applies a device's reported patch to `values` (reported properties as the device sees them,
/// without `$version`), checked as [`Twin::patch_reported`] checks it; `values` is unchanged
/// on error. For a gateway that accepts reported patches while its hub is out of reach.
pub fn patch_reported_values(
    values: &mut Map<String, Value>,
    patch: &Value,
) -> Result<(), TwinError> {
    let Value::Object(patch) = patch else {
        return Err(TwinError::not_an_object(Section::Reported.path()));
    };
    if let Some(pending) = Pending::from_patch(Section::Reported, values, patch)? {
        *values = pending.values;
    }
    Ok(())
}

/// A validated pending write to one section: the section's new values and the patch that
/// produced them from the old ones.
struct Pending {
    values: Map<String, Value>,
    patch: Map<String, Value>,
}

impl Pending {
    /// Merges `patch` into `current` and validates the result; `None` for an empty patch.
    fn from_patch(
        section: Section,
        current: &Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<Option<Self>, TwinError> {
        if patch.is_empty() {
            return Ok(None);
        }
        let mut values = current.clone();
        merge::merge(&mut values, patch);
        limits::check_section(section, &values)?;
        Ok(Some(Pending {
            values,
            patch: patch.clone(),
        }))
    }

    /// Validates `values` as the section's new content; `None` if it equals `current`.
    fn from_replacement(
        section: Section,
        current: &Map<String, Value>,
        values: Map<String, Value>,
    ) -> Result<Option<Self>, TwinError> {
        limits::check_section(section, &values)?;
        let patch = merge::diff(current, &values);
        if patch.is_empty() {
            return Ok(None);
        }
        Ok(Some(Pending { values, patch }))
    }
}

impl Twin {
    /// A new, empty twin created at `created` (see the module docs for the initial versions).
    pub fn new(created: OffsetDateTime) -> Self {
        Twin {
            version: 2,
            etag_counter: 1,
            tags: Map::new(),
            desired: PropertySet::new(created),
            reported: PropertySet::new(created),
        }
    }

    /// Whole-twin version: increases on every change to tags, desired or reported.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The twin etag: base64 of the 8-byte big-endian counter, e.g. `AAAAAAAAAAE=` (§4).
    pub fn etag(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.etag_counter.to_be_bytes())
    }

    /// Whether an `If-Match` header value allows a write (spec §0 pitfall 7).
    ///
    /// No header, `*` and `"*"` match anything; otherwise each comma-separated entry is
    /// compared with [`Twin::etag`] after trimming spaces, a weak `W/` prefix and one pair
    /// of surrounding quotes. A mismatch is the caller's 412 Precondition Failed.
    pub fn etag_matches(&self, if_match: Option<&str>) -> bool {
        let Some(header) = if_match else {
            return true;
        };
        let etag = self.etag();
        header.split(',').any(|entry| {
            let entry = entry.trim();
            let entry = entry.strip_prefix("W/").unwrap_or(entry);
            let entry = entry
                .strip_prefix('"')
                .and_then(|e| e.strip_suffix('"'))
                .unwrap_or(entry);
            entry == "*" || entry == etag
        })
    }

    /// Tags (service only).
    pub fn tags(&self) -> &Map<String, Value> {
        &self.tags
    }

    /// Desired property values, without `$version` and `$metadata`.
    pub fn desired(&self) -> &Map<String, Value> {
        &self.desired.values
    }

    /// Reported property values, without `$version` and `$metadata`.
    pub fn reported(&self) -> &Map<String, Value> {
        &self.reported.values
    }

    /// Desired `$version`.
    pub fn desired_version(&self) -> u64 {
        self.desired.version
    }

    /// Reported `$version` (the `$version` of the MQTT 204 response to a reported PATCH).
    pub fn reported_version(&self) -> u64 {
        self.reported.version
    }

    /// Service PATCH (`PATCH /twins/{id}`): merges `{"tags":{..},"properties":{"desired":{..}}}`
    /// into the twin. `properties.reported` is refused.
    pub fn patch(&mut self, patch: &Value, now: OffsetDateTime) -> Result<TwinChange, TwinError> {
        let body = ServiceBody::parse(patch, false)?;
        let tags = match body.tags {
            Some(p) => Pending::from_patch(Section::Tags, &self.tags, p)?,
            None => None,
        };
        let desired = match body.desired {
            Some(p) => Pending::from_patch(Section::Desired, &self.desired.values, p)?,
            None => None,
        };
        Ok(self.commit_service(ChangeKind::Update, tags, desired, now))
    }

    /// Service PUT (`PUT /twins/{id}`): replaces tags and desired properties entirely.
    pub fn replace(&mut self, doc: &Value, now: OffsetDateTime) -> Result<TwinChange, TwinError> {
        let body = ServiceBody::parse(doc, true)?;
        let tags = body.tags.map(merge::strip_nulls).unwrap_or_default();
        let mut desired = body.desired.map(merge::strip_nulls).unwrap_or_default();
        desired.shift_remove("$metadata");
        desired.shift_remove("$version");
        let tags = Pending::from_replacement(Section::Tags, &self.tags, tags)?;
        let desired = Pending::from_replacement(Section::Desired, &self.desired.values, desired)?;
        Ok(self.commit_service(ChangeKind::Replace, tags, desired, now))
    }

    /// Sets the desired value at `path` (configurations and deployments: the content key
    /// `properties.desired.a.b` is the path `["a", "b"]`). The value replaces what was there
    /// (it is not merged); `null` removes it; intermediate objects are created. An empty
    /// path replaces the whole desired section with `value`, which must be an object
    /// (`applyConfigurationContent`). Applied as a diff: unchanged content is a no-op.
    pub fn set_desired_path(
        &mut self,
        path: &[&str],
        value: &Value,
        now: OffsetDateTime,
    ) -> Result<TwinChange, TwinError> {
        limits::check_path(Section::Desired, path)?;
        let value = match value {
            Value::Object(map) => Value::Object(merge::strip_nulls(map)),
            other => other.clone(),
        };
        let desired = match (path.split_first(), value) {
            (None, Value::Object(map)) => map,
            (None, _) => return Err(TwinError::not_an_object(Section::Desired.path())),
            (Some((first, rest)), value) => {
                // Clear the path (making intermediate objects), then set the value there.
                let mut desired = self.desired.values.clone();
                merge::merge(&mut desired, &nest(first, rest, Value::Null));
                if !value.is_null() {
                    merge::merge(&mut desired, &nest(first, rest, value));
                }
                desired
            }
        };
        let desired = Pending::from_replacement(Section::Desired, &self.desired.values, desired)?;
        Ok(self.commit_service(ChangeKind::Update, None, desired, now))
    }

    /// Device PATCH of reported properties (MQTT `$iothub/twin/PATCH/properties/reported/`).
    /// The new reported `$version` is [`Twin::reported_version`] afterwards; an empty patch
    /// changes nothing.
    pub fn patch_reported(
        &mut self,
        patch: &Value,
        now: OffsetDateTime,
    ) -> Result<TwinChange, TwinError> {
        let Value::Object(patch) = patch else {
            return Err(TwinError::not_an_object(Section::Reported.path()));
        };
        let Some(pending) = Pending::from_patch(Section::Reported, &self.reported.values, patch)?
        else {
            return Ok(TwinChange::none(ChangeKind::Update, self.version));
        };
        let reported = self
            .reported
            .commit(pending.values, pending.patch, now, false);
        self.bump();
        Ok(TwinChange {
            kind: ChangeKind::Update,
            version: self.version,
            tags: None,
            desired: None,
            reported: Some(reported),
        })
    }

    /// The device's view (MQTT twin GET, spec §3.8):
    /// `{"desired":{...,"$version":N},"reported":{...,"$version":M}}`, no tags, no metadata.
    pub fn device_view(&self) -> Value {
        let mut out = Map::new();
        out.insert("desired".to_owned(), self.desired.device_json());
        out.insert("reported".to_owned(), self.reported.device_json());
        Value::Object(out)
    }

    fn commit_service(
        &mut self,
        kind: ChangeKind,
        tags: Option<Pending>,
        desired: Option<Pending>,
        now: OffsetDateTime,
    ) -> TwinChange {
        if tags.is_none() && desired.is_none() {
            return TwinChange::none(kind, self.version);
        }
        let tags = tags.map(|p| {
            self.tags = p.values;
            p.patch
        });
        let desired = desired.map(|p| self.desired.commit(p.values, p.patch, now, true));
        self.bump();
        TwinChange {
            kind,
            version: self.version,
            tags,
            desired,
            reported: None,
        }
    }

    fn bump(&mut self) {
        self.version = self.version.saturating_add(1);
        self.etag_counter = self.etag_counter.saturating_add(1);
    }
}

/// The parts of a service PATCH or PUT body that write the twin.
struct ServiceBody<'a> {
    tags: Option<&'a Map<String, Value>>,
    desired: Option<&'a Map<String, Value>>,
}

impl<'a> ServiceBody<'a> {
    /// Extracts tags and desired; `replace` ignores `properties.reported` instead of refusing it.
    fn parse(body: &'a Value, replace: bool) -> Result<Self, TwinError> {
        let Value::Object(body) = body else {
            return Err(TwinError::not_an_object("twin"));
        };
        let tags = section(body.get("tags"), "tags")?;
        let mut desired = None;
        if let Some(properties) = section(body.get("properties"), "properties")? {
            for (name, value) in properties {
                match name.as_str() {
                    "desired" => desired = section(Some(value), Section::Desired.path())?,
                    "reported" if replace || value.is_null() => {}
                    "reported" => return Err(TwinError::ReportedNotAllowed),
                    _ => return Err(TwinError::UnknownSection { name: name.clone() }),
                }
            }
        }
        Ok(ServiceBody { tags, desired })
    }
}

/// An optional object member: absent and `null` are `None`, anything else must be an object.
fn section<'a>(
    value: Option<&'a Value>,
    what: &str,
) -> Result<Option<&'a Map<String, Value>>, TwinError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(TwinError::not_an_object(what)),
    }
}

/// `{first: {rest[0]: {...: leaf}}}`.
fn nest(first: &str, rest: &[&str], leaf: Value) -> Map<String, Value> {
    let inner = rest.iter().rev().fold(leaf, |value, key| {
        Value::Object(Map::from_iter([((*key).to_owned(), value)]))
    });
    Map::from_iter([(first.to_owned(), inner)])
}
