//! A whole deployment manifest: the desired properties of every module twin it sets (edge
//! contracts spec §3), split per module and checked before anything is sent.
//!
//! Accepted shapes (what `az iot edge set-modules --content` and the docs use):
//! - `{"modulesContent": {...}}`, and the older `{"moduleContent": {...}}`;
//! - a configuration, `{"content": {"modulesContent": {...}}, ...}` (other keys ignored);
//! - the bare inner object `{"$edgeAgent": {...}, "$edgeHub": {...}, ...}`.
//!
//! Inside, each key is a module ID (the only `$` IDs allowed are `$edgeAgent` and
//! `$edgeHub`) and each value holds `"properties.desired"` (the whole section) and/or
//! layered `"properties.desired.<a>.<b>"` keys (one value at that path, `null` removes it),
//! as the hub's `applyConfigurationContent` takes them. Layered values are folded into the
//! section in document order, so [`Deployment::desired`] is what the twin will hold; an entry
//! with only layered keys yields an object of just those paths. `$edgeAgent` is required with
//! a whole section and must parse as [`AgentDesired`]; `$edgeHub`, when present, needs a
//! whole section too and must parse as [`HubDesired`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::agent::AgentDesired;
use super::error::{ManifestError, clip};
use super::hub::HubDesired;
use super::json::Obj;
use crate::ids::ModuleId;

/// The edge agent's module twin.
pub const EDGE_AGENT: &str = "$edgeAgent";
/// The edge hub's module twin.
pub const EDGE_HUB: &str = "$edgeHub";

/// The key holding a module twin's whole desired section in a manifest.
const DESIRED_KEY: &str = "properties.desired";

/// The prefix of a layered key, `properties.desired.<path>`.
const LAYERED_PREFIX: &str = "properties.desired.";

/// A checked deployment manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The desired properties to set, by module twin (`$edgeAgent`, `$edgeHub`, user
    /// modules), layered values folded in.
    pub desired: BTreeMap<ModuleId, Value>,
    /// `$edgeAgent`, parsed.
    pub agent: AgentDesired,
    /// `$edgeHub`, parsed, when the manifest sets it.
    pub hub: Option<HubDesired>,
}

impl Deployment {
    /// Splits and checks a manifest document (see the module docs for the accepted shapes).
    pub fn from_modules_content(doc: &Value) -> Result<Self, ManifestError> {
        let content = Obj::new(modules_content(doc), "modulesContent".to_owned())?;
        let mut desired = BTreeMap::new();
        for (name, entry) in content.entries() {
            let id = twin_id(&content, name)?;
            let entry = Obj::new(entry, content.path_of(name))?;
            let system = name == EDGE_AGENT || name == EDGE_HUB;
            desired.insert(id, module_desired(&entry, system)?);
        }
        let agent = desired
            .get(EDGE_AGENT)
            .ok_or_else(|| content.missing(EDGE_AGENT))
            .and_then(AgentDesired::from_twin)?;
        let hub = desired
            .get(EDGE_HUB)
            .map(HubDesired::from_twin)
            .transpose()?;
        Ok(Deployment {
            desired,
            agent,
            hub,
        })
    }
}

/// Finds the object of module twins in a manifest document: under `content` (a
/// configuration), then under `modulesContent` or `moduleContent`, else the document itself.
fn modules_content(doc: &Value) -> &Value {
    const NAMES: [&str; 2] = ["modulesContent", "moduleContent"];
    let has_content = |v: &Value| NAMES.iter().any(|name| v.get(name).is_some());
    let holder = doc.get("content").filter(|c| has_content(c)).unwrap_or(doc);
    NAMES
        .iter()
        .find_map(|name| holder.get(name))
        .unwrap_or(holder)
}

/// The desired properties of one module entry: the whole section (required when
/// `whole_required`) with layered paths folded in.
fn module_desired(entry: &Obj<'_>, whole_required: bool) -> Result<Value, ManifestError> {
    let mut section = match entry.entries().find(|(key, _)| *key == DESIRED_KEY) {
        Some((_, value)) => Obj::new(value, entry.path_of(DESIRED_KEY))?.to_value(),
        None if whole_required => return Err(entry.missing(DESIRED_KEY)),
        None => Value::Object(Map::new()),
    };
    for (key, value) in entry.entries() {
        if key == DESIRED_KEY {
            continue;
        }
        let path: Vec<&str> = match key.strip_prefix(LAYERED_PREFIX) {
            Some(rest) if rest.split('.').all(|segment| !segment.is_empty()) => {
                rest.split('.').collect()
            }
            _ => {
                return Err(ManifestError::UnexpectedKey {
                    path: entry.path_of(&clip(key)),
                    hint: "a module entry holds \"properties.desired\" and \"properties.desired.<path>\" keys",
                });
            }
        };
        set_path(&mut section, &path, value);
    }
    Ok(section)
}

/// Puts `value` at `path` below `target`, making objects on the way; `null` removes the key.
fn set_path(target: &mut Value, path: &[&str], value: &Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = target;
    for key in parents {
        if !node.get(*key).is_some_and(Value::is_object) {
            node[*key] = Value::Object(Map::new());
        }
        node = &mut node[*key];
    }
    if let Value::Object(map) = node {
        if value.is_null() {
            map.remove(*last);
        } else {
            map.insert((*last).to_owned(), value.clone());
        }
    }
}

/// Validates a module twin ID of a manifest.
fn twin_id(content: &Obj<'_>, name: &str) -> Result<ModuleId, ManifestError> {
    let id = ModuleId::parse(name).map_err(|reason| ManifestError::InvalidModuleName {
        path: content.path().to_owned(),
        name: clip(name),
        reason,
    })?;
    if name.contains('$') && name != EDGE_AGENT && name != EDGE_HUB {
        return Err(ManifestError::ReservedModuleName {
            path: content.path().to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(id)
}
