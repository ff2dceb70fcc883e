//! Configuration content (spec §5.6): `modulesContent` as applied by
//! `applyConfigurationContent`, turned into desired-property writes on module twins.
//!
//! Each module entry holds `"properties.desired"` (the whole desired section) and/or
//! `"properties.desired.<a>.<b>"` keys (layered deployments: one value at that path).

use serde_json::{Map, Value};

use super::RegistryError;

/// One desired-property write: the path under `properties.desired` (empty = the whole
/// section) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredWrite {
    /// Path segments below `properties.desired`.
    pub path: Vec<String>,
    /// The value put there.
    pub value: Value,
}

/// The writes of one module, in the order they apply (whole section first, then paths).
pub fn module_writes(module: &str, entry: &Value) -> Result<Vec<DesiredWrite>, RegistryError> {
    let Value::Object(keys) = entry else {
        return Err(RegistryError::Invalid(format!(
            "modulesContent.{module} must be an object"
        )));
    };
    let mut writes = Vec::new();
    for (key, value) in keys {
        let path = if key == "properties.desired" {
            if !value.is_object() {
                return Err(RegistryError::Invalid(format!(
                    "modulesContent.{module}.properties.desired must be an object"
                )));
            }
            Vec::new()
        } else if let Some(rest) = key.strip_prefix("properties.desired.") {
            if rest.split('.').any(str::is_empty) {
                return Err(RegistryError::Invalid(format!(
                    "modulesContent.{module}: invalid path {key}"
                )));
            }
            rest.split('.').map(str::to_owned).collect()
        } else {
            return Err(RegistryError::Invalid(format!(
                "modulesContent.{module}: unsupported key {key} (expected properties.desired[.path])"
            )));
        };
        writes.push(DesiredWrite {
            path,
            value: value.clone(),
        });
    }
    writes.sort_by_key(|w| !w.path.is_empty());
    Ok(fold_into_section(writes))
}

/// With a whole-section write, folds the path writes into its value, so that re-applying
/// the same content is one write of an unchanged section (a no-op) rather than a replace that
/// drops the layered values followed by writes that put them back.
fn fold_into_section(mut writes: Vec<DesiredWrite>) -> Vec<DesiredWrite> {
    if writes.first().is_none_or(|w| !w.path.is_empty()) {
        return writes;
    }
    let mut section = writes.remove(0);
    for write in writes {
        set_path(&mut section.value, &write.path, write.value);
    }
    vec![section]
}

fn set_path(target: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *target = value;
        return;
    };
    let mut node = target;
    for key in parents {
        if !node.get(key).is_some_and(Value::is_object) {
            node[key.as_str()] = Value::Object(Map::new());
        }
        node = &mut node[key.as_str()];
    }
    if value.is_null() {
        if let Some(map) = node.as_object_mut() {
            map.remove(last);
        }
    } else {
        node[last.as_str()] = value;
    }
}

/// The `modulesContent` object of an `applyConfigurationContent` body.
pub fn modules_content(body: &Value) -> Result<&Map<String, Value>, RegistryError> {
    match body.get("modulesContent") {
        Some(Value::Object(map)) if !map.is_empty() => Ok(map),
        Some(_) => Err(RegistryError::invalid(
            "modulesContent must be a non-empty object",
        )),
        None => Err(RegistryError::invalid(
            "the configuration content has no modulesContent (deviceContent is for device configurations)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn layered_paths_fold_into_the_whole_section() {
        let writes = module_writes(
            "$edgeAgent",
            &json!({"properties.desired.modules.x": {"a": 1}, "properties.desired": {"schemaVersion": "1.1"}}),
        )
        .unwrap();
        assert_eq!(writes.len(), 1, "paths are folded into the whole section");
        assert_eq!(writes[0].path, Vec::<String>::new());
        assert_eq!(
            writes[0].value,
            json!({"schemaVersion": "1.1", "modules": {"x": {"a": 1}}})
        );
        let layered = module_writes("m", &json!({"properties.desired.a.b": 1})).unwrap();
        assert_eq!(layered[0].path, ["a", "b"]);
    }

    #[test]
    fn bad_content_is_refused() {
        assert!(module_writes("m", &json!([])).is_err());
        assert!(module_writes("m", &json!({"properties.desired": 3})).is_err());
        assert!(module_writes("m", &json!({"properties.reported": {}})).is_err());
        assert!(module_writes("m", &json!({"properties.desired..x": 1})).is_err());
        assert!(modules_content(&json!({"deviceContent": {}})).is_err());
        assert!(modules_content(&json!({"modulesContent": {}})).is_err());
    }
}
