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
pub fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
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

/// Folds `later` into `earlier` when one merge patch can do what the two do in turn, and says
/// whether it could. It cannot when `later` sets an object where `earlier` deletes the key or
/// sets a scalar or an array: applied in turn, the object replaces that value; folded, it
/// would be merged into whatever the target held before. `earlier` is unchanged then.
pub fn fold(earlier: &mut Map<String, Value>, later: &Map<String, Value>) -> bool {
    if !foldable(earlier, later) {
        return false;
    }
    fold_unchecked(earlier, later);
    true
}

fn foldable(earlier: &Map<String, Value>, later: &Map<String, Value>) -> bool {
    later
        .iter()
        .all(|(key, change)| match (earlier.get(key), change) {
            (Some(Value::Object(before)), Value::Object(after)) => foldable(before, after),
            (Some(_), Value::Object(_)) => false,
            _ => true,
        })
}

fn fold_unchecked(earlier: &mut Map<String, Value>, later: &Map<String, Value>) {
    for (key, change) in later {
        match (earlier.get_mut(key), change) {
            (Some(Value::Object(before)), Value::Object(after)) => fold_unchecked(before, after),
            _ => {
                earlier.insert(key.clone(), change.clone());
            }
        }
    }
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

    /// Folding is exact where it is allowed: applying the fold equals applying both in turn.
    #[test]
    fn fold_table() {
        let target = obj(json!({"a": {"x": 1}, "b": 2, "c": [1]}));
        let cases = [
            (
                json!({"a": {"y": 2}}),
                json!({"a": {"x": null}, "b": 3}),
                true,
            ),
            (json!({"b": null}), json!({"b": 4}), true),
            (json!({"b": null}), json!({"b": {"z": 1}}), false),
            (json!({"c": 5}), json!({"c": {"z": 1}}), false),
            (json!({"d": {"e": 1}}), json!({"d": {"e": {"f": 1}}}), false),
            (json!({"a": 7}), json!({"a": 8}), true),
        ];
        for (first, second, foldable) in cases {
            let (first, second) = (obj(first), obj(second));
            let mut in_turn = target.clone();
            merge(&mut in_turn, &first);
            merge(&mut in_turn, &second);
            let mut folded = first.clone();
            assert_eq!(
                fold(&mut folded, &second),
                foldable,
                "{first:?} then {second:?}"
            );
            if foldable {
                let mut at_once = target.clone();
                merge(&mut at_once, &folded);
                assert_eq!(at_once, in_turn, "{first:?} then {second:?}");
            } else {
                assert_eq!(folded, first, "a refused fold changes nothing");
            }
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
