//! Twin document restrictions (protocol spec §4 "Restrictions") and the twin error type.
//!
//! Every twin section (tags, desired, reported) is validated as a whole *after* a change has
//! been computed and *before* it is committed, so a rejected request never leaves a partial
//! write behind. The rules:
//!
//! - keys: at most [`MAX_KEY_BYTES`] bytes of UTF-8, no Unicode control characters (C0, C1),
//!   no `.`, no `$`, no space (so clients can never set `$version` or `$metadata`);
//! - strings: at most [`MAX_STRING_BYTES`] bytes;
//! - integers: within [`MIN_INTEGER`]..=[`MAX_INTEGER`] (±2⁵²); non-integral numbers are free;
//! - depth: objects and arrays nest at most [`MAX_DEPTH`] levels, counting the section object
//!   itself as level 1. Azure's documented boundary example, `tags` → `one` → … → `eight` →
//!   `{"property": "value"}`, is valid, and so is one more level (`nine`); a tenth named level
//!   below the section is not;
//! - size: the section serialized as compact JSON, without `$version` and `$metadata`, is at
//!   most [`MAX_TAGS_BYTES`] (tags) or [`MAX_DESIRED_BYTES`] / [`MAX_REPORTED_BYTES`].

use std::fmt;

use serde_json::{Map, Value};

/// Longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest string value, in bytes of UTF-8.
pub const MAX_STRING_BYTES: usize = 4096;
/// Smallest integer a twin may hold (-2⁵²).
pub const MIN_INTEGER: i64 = -4_503_599_627_370_496;
/// Largest integer a twin may hold (2⁵² - 1).
pub const MAX_INTEGER: i64 = 4_503_599_627_370_495;
/// Deepest nesting of objects and arrays, counting the section object as level 1.
pub const MAX_DEPTH: usize = 10;
/// Largest `tags` section, in bytes of compact JSON.
pub const MAX_TAGS_BYTES: usize = 8 * 1024;
/// Largest desired-properties section, in bytes of compact JSON.
pub const MAX_DESIRED_BYTES: usize = 32 * 1024;
/// Largest reported-properties section, in bytes of compact JSON.
pub const MAX_REPORTED_BYTES: usize = 32 * 1024;

/// One of the three writable parts of a twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `tags` (service only, never shown to the device).
    Tags,
    /// `properties.desired` (written by the service).
    Desired,
    /// `properties.reported` (written by the device).
    Reported,
}

impl Section {
    /// The section's size limit in bytes of compact JSON.
    pub fn size_limit(self) -> usize {
        match self {
            Section::Tags => MAX_TAGS_BYTES,
            Section::Desired => MAX_DESIRED_BYTES,
            Section::Reported => MAX_REPORTED_BYTES,
        }
    }

    /// The section's path in the service twin document.
    pub fn path(self) -> &'static str {
        match self {
            Section::Tags => "tags",
            Section::Desired => "properties.desired",
            Section::Reported => "properties.reported",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Why a twin key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// Longer than [`MAX_KEY_BYTES`].
    #[error("longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
    /// Contains a Unicode control character.
    #[error("contains a control character")]
    ControlCharacter,
    /// Contains `.`.
    #[error("contains '.'")]
    Dot,
    /// Contains `$` (system keys such as `$version` and `$metadata` are read-only).
    #[error("contains '$'")]
    Dollar,
    /// Contains a space.
    #[error("contains a space")]
    Space,
}

/// A refused twin operation. Every variant is a client error (HTTP 400, MQTT status 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwinError {
    /// A key breaks the key rules.
    #[error("invalid twin key {key:?} at {path}: {reason}")]
    KeyInvalid {
        /// The offending key (truncated to 64 characters).
        key: String,
        /// Dotted path of the object holding the key.
        path: String,
        /// Which rule it breaks.
        reason: KeyProblem,
    },
    /// A string value is too long.
    #[error("string at {path} is {size} bytes, over the {MAX_STRING_BYTES}-byte limit")]
    StringTooLong {
        /// Dotted path of the value.
        path: String,
        /// Its length in bytes.
        size: usize,
    },
    /// An integer is outside ±2⁵².
    #[error("integer {value} at {path} is outside {MIN_INTEGER}..={MAX_INTEGER}")]
    IntegerOutOfRange {
        /// Dotted path of the value.
        path: String,
        /// The integer as written.
        value: String,
    },
    /// Objects or arrays nest deeper than [`MAX_DEPTH`].
    #[error("{section} nests deeper than {MAX_DEPTH} levels at {path}")]
    TooDeep {
        /// The section.
        section: Section,
        /// Dotted path of the first container that is too deep.
        path: String,
    },
    /// A section is over its size limit.
    #[error("{section} would be {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The section.
        section: Section,
        /// Its size in bytes of compact JSON.
        size: usize,
        /// Its limit.
        limit: usize,
    },
    /// A service request tried to write reported properties (device-only).
    #[error("reported properties can only be written by the device")]
    ReportedNotAllowed,
    /// Something that must be a JSON object is not.
    #[error("{what} must be a JSON object")]
    NotAnObject {
        /// What was expected to be an object (`twin`, `tags`, `properties`, a section path).
        what: String,
    },
    /// `properties` holds a key other than `desired` and `reported`.
    #[error("unknown twin properties section {name:?}")]
    UnknownSection {
        /// The unexpected key.
        name: String,
    },
}

impl TwinError {
    /// HTTP status for the REST API (also used as the MQTT twin response status).
    pub fn status(&self) -> u16 {
        400
    }

    pub(crate) fn not_an_object(what: impl Into<String>) -> Self {
        TwinError::NotAnObject { what: what.into() }
    }
}

/// Checks one key against the key rules.
pub fn check_key(key: &str) -> Result<(), KeyProblem> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyProblem::TooLong);
    }
    for c in key.chars() {
        let problem = match c {
            '.' => KeyProblem::Dot,
            '$' => KeyProblem::Dollar,
            ' ' => KeyProblem::Space,
            c if c.is_control() => KeyProblem::ControlCharacter,
            _ => continue,
        };
        return Err(problem);
    }
    Ok(())
}

/// Checks a whole section: keys, values, depth and size.
pub(crate) fn check_section(
    section: Section,
    values: &Map<String, Value>,
) -> Result<(), TwinError> {
    let mut walker = Walker {
        section,
        path: Vec::new(),
    };
    walker.object(values, 1)?;
    let size = json_len(values);
    let limit = section.size_limit();
    if size > limit {
        return Err(TwinError::TooLarge {
            section,
            size,
            limit,
        });
    }
    Ok(())
}

/// Checks the keys of a path used to address a value inside a section.
pub(crate) fn check_path(section: Section, path: &[&str]) -> Result<(), TwinError> {
    for (i, key) in path.iter().enumerate() {
        check_key(key).map_err(|reason| TwinError::KeyInvalid {
            key: truncate(key),
            path: dotted(section, &path[..i]),
            reason,
        })?;
    }
    Ok(())
}

/// Length of `values` as compact JSON, without allocating the text.
pub(crate) fn json_len(values: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing a `Map` into an infallible writer cannot fail; count it as over any limit
    // if it somehow does.
    match serde_json::to_writer(&mut counter, values) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

struct Walker<'a> {
    section: Section,
    path: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    fn here(&self) -> String {
        dotted(self.section, &self.path)
    }

    fn container(&self, depth: usize) -> Result<(), TwinError> {
        if depth > MAX_DEPTH {
            return Err(TwinError::TooDeep {
                section: self.section,
                path: self.here(),
            });
        }
        Ok(())
    }

    fn object(&mut self, map: &'a Map<String, Value>, depth: usize) -> Result<(), TwinError> {
        self.container(depth)?;
        for (key, value) in map {
            check_key(key).map_err(|reason| TwinError::KeyInvalid {
                key: truncate(key),
                path: self.here(),
                reason,
            })?;
            self.path.push(key);
            self.value(value, depth)?;
            self.path.pop();
        }
        Ok(())
    }

    /// Checks a value held by a container at `depth`.
    fn value(&mut self, value: &'a Value, depth: usize) -> Result<(), TwinError> {
        match value {
            Value::Object(map) => self.object(map, depth + 1),
            Value::Array(items) => {
                self.container(depth + 1)?;
                items
                    .iter()
                    .try_for_each(|item| self.value(item, depth + 1))
            }
            Value::String(s) if s.len() > MAX_STRING_BYTES => Err(TwinError::StringTooLong {
                path: self.here(),
                size: s.len(),
            }),
            Value::Number(n) => {
                let in_range = match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => (MIN_INTEGER..=MAX_INTEGER).contains(&i),
                    // Only integers above i64::MAX land here.
                    (None, Some(_)) => false,
                    (None, None) => true,
                };
                if in_range {
                    Ok(())
                } else {
                    Err(TwinError::IntegerOutOfRange {
                        path: self.here(),
                        value: n.to_string(),
                    })
                }
            }
            Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
        }
    }
}

fn dotted(section: Section, path: &[&str]) -> String {
    let mut out = section.path().to_owned();
    for key in path {
        out.push('.');
        out.push_str(key);
    }
    out
}

fn truncate(key: &str) -> String {
    key.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn key_rules() {
        let long = "k".repeat(MAX_KEY_BYTES);
        let cases: &[(&str, Result<(), KeyProblem>)] = &[
            ("temperature", Ok(())),
            ("", Ok(())),
            ("ünïcode-é", Ok(())),
            (&long, Ok(())),
            ("a.b", Err(KeyProblem::Dot)),
            ("$version", Err(KeyProblem::Dollar)),
            ("a b", Err(KeyProblem::Space)),
            ("a\u{0}b", Err(KeyProblem::ControlCharacter)),
            ("tab\t", Err(KeyProblem::ControlCharacter)),
            ("c1\u{85}", Err(KeyProblem::ControlCharacter)),
        ];
        for (key, expected) in cases {
            assert_eq!(check_key(key), *expected, "key {key:?}");
        }
        assert_eq!(check_key(&format!("{long}x")), Err(KeyProblem::TooLong));
        // 1024 bytes of two-byte characters is fine, one more character is not.
        assert_eq!(check_key(&"é".repeat(512)), Ok(()));
        assert_eq!(check_key(&"é".repeat(513)), Err(KeyProblem::TooLong));
    }

    #[test]
    fn integer_bounds() {
        let ok = obj(json!({"min": MIN_INTEGER, "max": MAX_INTEGER, "f": 1.0e300}));
        assert_eq!(check_section(Section::Desired, &ok), Ok(()));
        for bad in [
            json!({"a": MAX_INTEGER + 1}),
            json!({"a": MIN_INTEGER - 1}),
            json!({"a": u64::MAX}),
            json!({"a": [1, {"b": i64::MIN}]}),
        ] {
            let err = check_section(Section::Desired, &obj(bad)).unwrap_err();
            assert!(matches!(err, TwinError::IntegerOutOfRange { .. }), "{err}");
        }
    }

    #[test]
    fn depth_boundary() {
        // Section object is level 1; nine nested objects below it reach level 10.
        let mut v = json!({"property": "value"});
        for name in [
            "nine", "eight", "seven", "six", "five", "four", "three", "two", "one",
        ] {
            v = json!({ name: v });
        }
        assert_eq!(check_section(Section::Tags, &obj(v.clone())), Ok(()));
        let deeper = json!({"zero": v});
        let err = check_section(Section::Tags, &obj(deeper)).unwrap_err();
        assert_eq!(
            err,
            TwinError::TooDeep {
                section: Section::Tags,
                path: "tags.zero.one.two.three.four.five.six.seven.eight.nine".into()
            }
        );
        // Arrays count as a level.
        let mut a = json!(1);
        for _ in 0..9 {
            a = json!([a]);
        }
        assert_eq!(
            check_section(Section::Tags, &obj(json!({ "a": a.clone() }))),
            Ok(())
        );
        assert!(check_section(Section::Tags, &obj(json!({ "a": [a] }))).is_err());
    }

    #[test]
    fn string_and_size_limits() {
        let s = "x".repeat(MAX_STRING_BYTES);
        assert_eq!(
            check_section(Section::Reported, &obj(json!({ "s": s }))),
            Ok(())
        );
        let err = check_section(Section::Reported, &obj(json!({ "s": format!("{s}x") })));
        assert!(matches!(err, Err(TwinError::StringTooLong { .. })));

        // Three 3000-byte strings fit in 32 KB but not in the 8 KB of tags.
        let v = obj(json!({"a": "x".repeat(3000), "b": "x".repeat(3000), "c": "x".repeat(3000)}));
        assert_eq!(check_section(Section::Desired, &v), Ok(()));
        let err = check_section(Section::Tags, &v).unwrap_err();
        assert_eq!(
            err,
            TwinError::TooLarge {
                section: Section::Tags,
                size: json_len(&v),
                limit: MAX_TAGS_BYTES
            }
        );
        assert_eq!(
            json_len(&v),
            serde_json::to_string(&v).map(|s| s.len()).unwrap()
        );
    }

    #[test]
    fn key_error_names_the_path() {
        let err = check_section(Section::Desired, &obj(json!({"a": {"b c": 1}}))).unwrap_err();
        assert_eq!(
            err,
            TwinError::KeyInvalid {
                key: "b c".into(),
                path: "properties.desired.a".into(),
                reason: KeyProblem::Space
            }
        );
        assert_eq!(err.status(), 400);
    }
}
