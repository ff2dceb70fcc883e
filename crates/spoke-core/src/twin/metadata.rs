//! `$metadata` of desired and reported properties, and twin timestamps (protocol spec §4).
//!
//! A [`MetaNode`] mirrors the shape of a property section: the section root and every key at
//! every object level carry `$lastUpdated`; in the desired section they also carry
//! `$lastUpdatedVersion` (the desired `$version` that wrote them). Keys holding scalars or
//! arrays are leaves. Children are looked up by key when rendering, so the rendered order is
//! the order of the values.
//!
//! Invariant kept by [`MetaNode::apply`]: after every committed patch, the tree has exactly
//! one node per key path of the section values (nodes of deleted keys are removed; a node
//! whose value turned from an object into a scalar loses its children).
//!
//! Timestamps render like Azure's: UTC, seconds, then seven fractional digits (100 ns ticks)
//! when the fraction is not zero, then `Z` (`2019-12-29T00:58:49.9315265Z`,
//! `0001-01-01T00:00:00Z`). Storage keeps full RFC 3339 with nanoseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

/// Formats a timestamp the way Azure renders twin and registry times.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let at = at.checked_to_offset(UtcOffset::UTC).unwrap_or(at);
    let mut out = String::with_capacity(28);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let ticks = at.nanosecond() / 100;
    if ticks != 0 {
        let _ = write!(out, ".{ticks:07}");
    }
    out.push('Z');
    out
}

/// Metadata of one object level or leaf key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MetaNode {
    #[serde(with = "storage_time")]
    last_updated: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_updated_version: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    children: BTreeMap<String, MetaNode>,
}

impl MetaNode {
    /// A node with no children.
    pub(crate) fn new(at: OffsetDateTime, version: Option<u64>) -> Self {
        MetaNode {
            last_updated: at,
            last_updated_version: version,
            children: BTreeMap::new(),
        }
    }

    /// Records that `patch` was merged into the object this node describes: this node and
    /// every key the patch names (at every level) get `at` and `version`; other keys keep
    /// theirs.
    pub(crate) fn apply(
        &mut self,
        patch: &Map<String, Value>,
        at: OffsetDateTime,
        version: Option<u64>,
    ) {
        self.last_updated = at;
        self.last_updated_version = version;
        for (key, change) in patch {
            match change {
                Value::Null => {
                    self.children.remove(key);
                }
                Value::Object(sub) => self
                    .children
                    .entry(key.clone())
                    .or_insert_with(|| MetaNode::new(at, version))
                    .apply(sub, at, version),
                _ => {
                    self.children
                        .insert(key.clone(), MetaNode::new(at, version));
                }
            }
        }
    }

    /// Renders `$metadata` for the object `values` this node describes.
    pub(crate) fn to_json(&self, values: &Map<String, Value>) -> Value {
        let mut out = self.own_fields();
        for (key, value) in values {
            if let Some(child) = self.children.get(key) {
                let rendered = match value {
                    Value::Object(inner) => child.to_json(inner),
                    _ => Value::Object(child.own_fields()),
                };
                out.insert(key.clone(), rendered);
            }
        }
        Value::Object(out)
    }

    /// Renders `$metadata` restricted to the keys `patch` wrote (deleted keys have none).
    pub(crate) fn to_json_for_patch(&self, patch: &Map<String, Value>) -> Value {
        let mut out = self.own_fields();
        for (key, change) in patch {
            let Some(child) = self.children.get(key) else {
                continue;
            };
            let rendered = match change {
                Value::Object(sub) => child.to_json_for_patch(sub),
                _ => Value::Object(child.own_fields()),
            };
            out.insert(key.clone(), rendered);
        }
        Value::Object(out)
    }

    fn own_fields(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert(
            "$lastUpdated".to_owned(),
            Value::String(format_timestamp(self.last_updated)),
        );
        if let Some(version) = self.last_updated_version {
            out.insert("$lastUpdatedVersion".to_owned(), Value::from(version));
        }
        out
    }
}

/// Serde helpers storing timestamps as RFC 3339 in UTC with full precision.
pub(crate) mod storage_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset};

    pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let utc = at.checked_to_offset(UtcOffset::UTC).unwrap_or(*at);
        let text = utc.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn timestamps_render_like_azure() {
        let cases = [
            (datetime!(0001-01-01 0:00 UTC), "0001-01-01T00:00:00Z"),
            (
                datetime!(2019-12-29 00:58:49.9315265 UTC),
                "2019-12-29T00:58:49.9315265Z",
            ),
            (
                datetime!(2024-03-01 12:00:00.5 UTC),
                "2024-03-01T12:00:00.5000000Z",
            ),
            (
                datetime!(2024-03-01 12:00:00.000_000_050 UTC),
                "2024-03-01T12:00:00Z",
            ),
            (datetime!(2024-03-01 14:00 +02:00), "2024-03-01T12:00:00Z"),
        ];
        for (at, expected) in cases {
            assert_eq!(format_timestamp(at), expected);
        }
    }

    #[test]
    fn apply_touches_only_named_keys() {
        let t1 = datetime!(2024-01-01 0:00 UTC);
        let t2 = datetime!(2024-01-02 0:00 UTC);
        let mut root = MetaNode::new(t1, None);
        root.apply(&obj(json!({"a": {"x": 1, "y": 2}, "b": 1})), t1, Some(2));
        root.apply(&obj(json!({"a": {"y": 3}})), t2, Some(3));
        let values = obj(json!({"a": {"x": 1, "y": 3}, "b": 1}));
        assert_eq!(
            root.to_json(&values),
            json!({
                "$lastUpdated": "2024-01-02T00:00:00Z", "$lastUpdatedVersion": 3,
                "a": {
                    "$lastUpdated": "2024-01-02T00:00:00Z", "$lastUpdatedVersion": 3,
                    "x": {"$lastUpdated": "2024-01-01T00:00:00Z", "$lastUpdatedVersion": 2},
                    "y": {"$lastUpdated": "2024-01-02T00:00:00Z", "$lastUpdatedVersion": 3}
                },
                "b": {"$lastUpdated": "2024-01-01T00:00:00Z", "$lastUpdatedVersion": 2}
            })
        );
        assert_eq!(
            root.to_json_for_patch(&obj(json!({"a": {"y": 3}, "gone": null}))),
            json!({
                "$lastUpdated": "2024-01-02T00:00:00Z", "$lastUpdatedVersion": 3,
                "a": {
                    "$lastUpdated": "2024-01-02T00:00:00Z", "$lastUpdatedVersion": 3,
                    "y": {"$lastUpdated": "2024-01-02T00:00:00Z", "$lastUpdatedVersion": 3}
                }
            })
        );
    }

    #[test]
    fn scalar_replacing_object_drops_children() {
        let t = datetime!(2024-01-01 0:00 UTC);
        let mut root = MetaNode::new(t, None);
        root.apply(&obj(json!({"a": {"x": 1}})), t, None);
        root.apply(&obj(json!({"a": 5})), t, None);
        assert!(root.children["a"].children.is_empty());
        root.apply(&obj(json!({"a": null})), t, None);
        assert!(root.children.is_empty());
    }

    #[test]
    fn storage_round_trip() {
        let mut node = MetaNode::new(datetime!(2024-05-06 07:08:09.123456789 +01:00), Some(4));
        node.apply(
            &obj(json!({"k": 1})),
            datetime!(2024-05-06 07:08:10 UTC),
            Some(5),
        );
        let text = serde_json::to_string(&node).unwrap();
        assert!(
            text.contains("\"lastUpdated\":\"2024-05-06T07:08:10Z\""),
            "{text}"
        );
        let back: MetaNode = serde_json::from_str(&text).unwrap();
        assert_eq!(back, node);
    }
}
