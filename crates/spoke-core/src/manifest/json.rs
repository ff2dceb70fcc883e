//! Reading fields out of a JSON object the way edgeAgent's Newtonsoft.Json binding does, with
//! the dotted path of every field at hand for error messages.
//!
//! Rules (from `Agent.Core`/`Agent.Docker` and Newtonsoft's defaults):
//! - Field names match exactly first, then ASCII case-insensitively (`"Status"` is `status`).
//! - Unknown fields are ignored.
//! - `null` counts as absent, so an optional field falls back to its default and a required
//!   one is [`ManifestError::Missing`].
//! - A text field (`version`, env values, ...) takes a string, or a number or boolean as its
//!   JSON text (`{"value": 0}` is `"0"`).
//! - An integer field takes a JSON integer or a string holding one; fractions are refused.
//! - Enumerations match their wire names ASCII case-insensitively.

use serde_json::{Map, Value};

use super::error::{ManifestError, clip};

/// A JSON object being read, and its dotted path.
#[derive(Debug, Clone)]
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// Views `value` as an object at `path`, or fails with [`ManifestError::WrongType`].
    pub(super) fn new(value: &'a Value, path: String) -> Result<Self, ManifestError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            _ => Err(ManifestError::WrongType {
                path,
                expected: "a JSON object",
            }),
        }
    }

    /// The dotted path of this object.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The dotted path of field `key` of this object.
    pub(super) fn path_of(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// A copy of the object as a JSON value.
    pub(super) fn to_value(&self) -> Value {
        Value::Object(self.map.clone())
    }

    /// All entries, for maps keyed by names (`modules`, `env`, `routes`, ...).
    pub(super) fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> + use<'a> {
        self.map.iter()
    }

    /// Field `key`, matched exactly and then case-insensitively; `null` counts as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        let value = self.map.get(key).or_else(|| {
            self.map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })?;
        (!value.is_null()).then_some(value)
    }

    /// An optional object field.
    pub(super) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, ManifestError> {
        self.get(key)
            .map(|value| Obj::new(value, self.path_of(key)))
            .transpose()
    }

    /// A required object field.
    pub(super) fn req_obj(&self, key: &str) -> Result<Obj<'a>, ManifestError> {
        self.opt_obj(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional field that must be a JSON string.
    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ManifestError::WrongType {
                path: self.path_of(key),
                expected: "a string",
            }),
        }
    }

    /// A required field that must be a JSON string with something other than whitespace.
    pub(super) fn req_str(&self, key: &str) -> Result<&'a str, ManifestError> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.missing(key)),
        }
    }

    /// An optional array field; `expected` says what it holds, for the message when it is not
    /// an array.
    pub(super) fn opt_array(
        &self,
        key: &str,
        expected: &'static str,
    ) -> Result<Option<Arr<'a>>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(Arr {
                items,
                path: self.path_of(key),
            })),
            Some(_) => Err(ManifestError::WrongType {
                path: self.path_of(key),
                expected,
            }),
        }
    }

    /// An optional text field: a string, or a number or boolean as its JSON text.
    pub(super) fn opt_text(&self, key: &str) -> Result<Option<String>, ManifestError> {
        self.get(key)
            .map(|value| text(value, || self.path_of(key)))
            .transpose()
    }

    /// A required text field with something other than whitespace.
    pub(super) fn req_text(&self, key: &str) -> Result<String, ManifestError> {
        match self.opt_text(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.missing(key)),
        }
    }

    /// An optional integer field within `min..=max`.
    pub(super) fn opt_int(
        &self,
        key: &str,
        min: i64,
        max: i64,
        expected: &'static str,
    ) -> Result<Option<i64>, ManifestError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => {
                return Err(ManifestError::WrongType {
                    path: self.path_of(key),
                    expected: "an integer",
                });
            }
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.invalid(key, value, expected)),
        }
    }

    /// An optional enumeration field: one of the `(wire name, value)` pairs of `table`.
    pub(super) fn opt_enum<T: Copy>(
        &self,
        key: &str,
        table: &[(&str, T)],
        expected: &'static str,
    ) -> Result<Option<T>, ManifestError> {
        let Some(text) = self.opt_str(key)? else {
            return Ok(None);
        };
        table
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
            .map(|&(_, v)| Some(v))
            .ok_or_else(|| self.invalid(key, &Value::String(text.to_owned()), expected))
    }

    /// [`ManifestError::Missing`] for field `key`.
    pub(super) fn missing(&self, key: &str) -> ManifestError {
        ManifestError::Missing {
            path: self.path_of(key),
        }
    }

    /// [`ManifestError::InvalidValue`] for field `key` holding `value`.
    pub(super) fn invalid(
        &self,
        key: &str,
        value: &Value,
        expected: &'static str,
    ) -> ManifestError {
        ManifestError::InvalidValue {
            path: self.path_of(key),
            found: clip(&value.to_string()),
            expected,
        }
    }
}

/// A JSON array being read, and its path.
#[derive(Debug, Clone)]
pub(super) struct Arr<'a> {
    items: &'a [Value],
    path: String,
}

impl<'a> Arr<'a> {
    /// Whether the array has no items.
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each item with its path, `path[index]`.
    pub(super) fn items(&self) -> impl Iterator<Item = (String, &'a Value)> + use<'a, '_> {
        self.items
            .iter()
            .enumerate()
            .map(|(index, item)| (format!("{}[{index}]", self.path), item))
    }

    /// Each item as text ([`text`]), with its path.
    pub(super) fn texts(&self) -> Result<Vec<(String, String)>, ManifestError> {
        self.items()
            .map(|(path, item)| {
                let text = text(item, || path.clone())?;
                Ok((path, text))
            })
            .collect()
    }

    /// [`ManifestError::InvalidValue`] for the whole array.
    pub(super) fn invalid(&self, expected: &'static str) -> ManifestError {
        ManifestError::InvalidValue {
            path: self.path.clone(),
            found: clip(&Value::from(self.items).to_string()),
            expected,
        }
    }
}

/// A text value: a string as is, a number or boolean as its JSON text.
pub(super) fn text(value: &Value, path: impl FnOnce() -> String) -> Result<String, ManifestError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(value.to_string()),
        _ => Err(ManifestError::WrongType {
            path: path(),
            expected: "a string",
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lookup_is_exact_then_case_insensitive_and_null_is_absent() {
        let doc = json!({"status": "running", "Settings": {}, "env": null, "STATUS": "x"});
        let obj = Obj::new(&doc, "m".into()).unwrap();
        assert_eq!(obj.opt_str("status").unwrap(), Some("running"));
        assert_eq!(obj.req_obj("settings").unwrap().path(), "m.settings");
        assert_eq!(
            obj.opt_obj("env").unwrap().map(|o| o.path().to_owned()),
            None
        );
        assert_eq!(
            obj.req_obj("env").unwrap_err(),
            ManifestError::Missing {
                path: "m.env".into()
            }
        );
    }

    #[test]
    fn text_takes_numbers_and_booleans() {
        let doc = json!({"a": "x", "b": 0, "c": 1.5, "d": true, "e": [], "f": "  "});
        let obj = Obj::new(&doc, "e".into()).unwrap();
        assert_eq!(obj.opt_text("a").unwrap().as_deref(), Some("x"));
        assert_eq!(obj.opt_text("b").unwrap().as_deref(), Some("0"));
        assert_eq!(obj.opt_text("c").unwrap().as_deref(), Some("1.5"));
        assert_eq!(obj.opt_text("d").unwrap().as_deref(), Some("true"));
        assert!(matches!(
            obj.opt_text("e"),
            Err(ManifestError::WrongType { .. })
        ));
        assert!(matches!(
            obj.req_text("f"),
            Err(ManifestError::Missing { .. })
        ));
    }

    #[test]
    fn integers_take_strings_and_check_range() {
        let doc = json!({"a": 7, "b": "8", "c": -1, "d": 1.5, "e": true});
        let obj = Obj::new(&doc, "m".into()).unwrap();
        assert_eq!(obj.opt_int("a", 0, 9, "0..=9").unwrap(), Some(7));
        assert_eq!(obj.opt_int("b", 0, 9, "0..=9").unwrap(), Some(8));
        assert_eq!(obj.opt_int("z", 0, 9, "0..=9").unwrap(), None);
        assert!(matches!(
            obj.opt_int("c", 0, 9, "0..=9"),
            Err(ManifestError::InvalidValue { .. })
        ));
        assert!(matches!(
            obj.opt_int("d", 0, 9, "0..=9"),
            Err(ManifestError::InvalidValue { .. })
        ));
        assert!(matches!(
            obj.opt_int("e", 0, 9, "0..=9"),
            Err(ManifestError::WrongType { .. })
        ));
    }

    #[test]
    fn arrays_carry_item_paths() {
        let doc = json!({"a": ["x", 1, true], "b": "x", "c": [[]], "d": []});
        let obj = Obj::new(&doc, "m".into()).unwrap();
        let items = obj.opt_array("a", "a list").unwrap().unwrap();
        assert_eq!(
            items.texts().unwrap(),
            [
                ("m.a[0]".to_owned(), "x".to_owned()),
                ("m.a[1]".to_owned(), "1".to_owned()),
                ("m.a[2]".to_owned(), "true".to_owned())
            ]
        );
        assert!(obj.opt_array("z", "a list").unwrap().is_none());
        assert_eq!(
            obj.opt_array("b", "a list").unwrap_err(),
            ManifestError::WrongType {
                path: "m.b".into(),
                expected: "a list"
            }
        );
        let nested = obj.opt_array("c", "a list").unwrap().unwrap();
        assert_eq!(
            nested.texts().unwrap_err(),
            ManifestError::WrongType {
                path: "m.c[0]".into(),
                expected: "a string"
            }
        );
        let empty = obj.opt_array("d", "a list").unwrap().unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            empty.invalid("one or more").to_string(),
            "m.d is []; expected one or more"
        );
    }

    #[test]
    fn enums_match_case_insensitively() {
        let doc = json!({"a": "On-Failure", "b": "sometimes"});
        let obj = Obj::new(&doc, "m".into()).unwrap();
        let table = [("never", 0), ("on-failure", 1)];
        assert_eq!(obj.opt_enum("a", &table, "never").unwrap(), Some(1));
        assert_eq!(
            obj.opt_enum("b", &table, "never or on-failure")
                .unwrap_err(),
            ManifestError::InvalidValue {
                path: "m.b".into(),
                found: "\"sometimes\"".into(),
                expected: "never or on-failure"
            }
        );
    }
}
