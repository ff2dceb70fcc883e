//! JSON merge rules for twin sections (protocol spec §4 "Merge rules").
//!
//! [`merge`] is RFC 7396 merge patch restricted to objects: an object merges key by key, a
//! scalar or array replaces, `null` deletes, and deleting a missing key is a no-op. [`diff`]
//! is its inverse: the smallest patch turning one object into another, so that
//! `merge(old, diff(old, new)) == new` for any `new` without `null` members. Replacements
//! (PUT, configuration content) are applied as such a diff, so devices receive the same kind
//! of patch as for a service PATCH and unchanged values keep their metadata.
//!
//! Key order is kept (`serde_json` is built with `preserve_order`): merged keys keep their
//! place, new keys are appended, deleted keys are shift-removed.

use serde_json::{Map, Value};

/// Applies `patch` to `target` in place.
pub(crate) fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, change) in patch {
        match change {
            Value::Null => {
                target.shift_remove(key);
            }
            Value::Object(sub) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(inner) = slot {
                    merge(inner, sub);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// The merge patch turning `old` into `new` (`new` must hold no `null` object members).
pub(crate) fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for key in old.keys() {
        if !new.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    for (key, after) in new {
        match (old.get(key), after) {
            (Some(Value::Object(before)), Value::Object(after)) => {
                let sub = diff(before, after);
                if !sub.is_empty() {
                    patch.insert(key.clone(), Value::Object(sub));
                }
            }
            (Some(before), after) if before == after => {}
            (_, after) => {
                patch.insert(key.clone(), after.clone());
            }
        }
    }
    patch
}

/// `map` without `null` object members, at any depth (array elements are kept as they are).
pub(crate) fn strip_nulls(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                Value::Object(inner) => Value::Object(strip_nulls(inner)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
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
    fn merge_table() {
        let cases = [
            (json!({"a": 1}), json!({"b": 2}), json!({"a": 1, "b": 2})),
            (json!({"a": 1}), json!({"a": null}), json!({})),
            (json!({"a": 1}), json!({"gone": null}), json!({"a": 1})),
            (
                json!({"a": {"x": 1, "y": 2}}),
                json!({"a": {"y": null, "z": 3}}),
                json!({"a": {"x": 1, "z": 3}}),
            ),
            (
                json!({"a": [1, 2, 3]}),
                json!({"a": [4]}),
                json!({"a": [4]}),
            ),
            (
                json!({"a": 1}),
                json!({"a": {"b": 2}}),
                json!({"a": {"b": 2}}),
            ),
            (json!({"a": {"b": 2}}), json!({"a": 5}), json!({"a": 5})),
            (json!({}), json!({"a": {"b": null}}), json!({"a": {}})),
            (
                json!({"a": [1]}),
                json!({"a": [null, {"b": null}]}),
                json!({"a": [null, {"b": null}]}),
            ),
        ];
        for (target, patch, expected) in cases {
            let mut t = obj(target.clone());
            merge(&mut t, &obj(patch.clone()));
            assert_eq!(Value::Object(t), expected, "{target} + {patch}");
        }
    }

    #[test]
    fn merge_keeps_order() {
        let mut t = obj(json!({"a": 1, "b": 2, "c": 3}));
        merge(&mut t, &obj(json!({"a": null, "d": 4, "b": 5})));
        assert_eq!(t.keys().collect::<Vec<_>>(), ["b", "c", "d"]);
    }

    #[test]
    fn diff_round_trips() {
        let cases = [
            (json!({}), json!({})),
            (json!({"a": 1}), json!({"a": 1})),
            (json!({"a": 1, "b": 2}), json!({"b": 3, "c": 4})),
            (json!({"a": {"x": 1, "y": 2}}), json!({"a": {}})),
            (json!({"a": 1}), json!({"a": {}})),
            (json!({"a": {"x": [1]}}), json!({"a": {"x": [1, 2]}})),
            (json!({"a": {"x": {"y": 1}}}), json!({"a": 7})),
        ];
        for (old, new) in cases {
            let (old, new) = (obj(old), obj(new));
            let patch = diff(&old, &new);
            let mut applied = old.clone();
            merge(&mut applied, &patch);
            assert_eq!(applied, new, "patch {patch:?}");
        }
        assert_eq!(
            Value::Object(diff(
                &obj(json!({"a": {"x": 1, "y": 2}, "b": 1})),
                &obj(json!({"a": {"x": 1}, "b": 1}))
            )),
            json!({"a": {"y": null}})
        );
    }

    #[test]
    fn strip_nulls_keeps_array_elements() {
        let v = obj(json!({"a": null, "b": {"c": null, "d": [null]}}));
        assert_eq!(Value::Object(strip_nulls(&v)), json!({"b": {"d": [null]}}));
    }
}
