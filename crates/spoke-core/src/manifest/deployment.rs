//! A whole deployment manifest: the desired properties of every module twin it sets (edge
//! contracts spec §3), split per module and checked before anything is sent.
//!
//! Accepted shapes (what `az iot edge set-modules --content` and the docs use):
//! - `{"modulesContent": {...}}`, and the older `{"moduleContent": {...}}`;
//! - a configuration, `{"content": {"modulesContent": {...}}, ...}` (other keys ignored);
//! - the bare inner object `{"$edgeAgent": {...}, "$edgeHub": {...}, ...}`.
//!
//! Inside, each key is a module ID and each value `{"properties.desired": {...}}`, nothing
//! else (layered-deployment paths such as `properties.desired.modules.x` are refused, since
//! applying them as a full manifest would silently drop them). `$edgeAgent` is required and
//! must parse as [`AgentDesired`]; `$edgeHub`, when present, must parse as [`HubDesired`];
//! the only `$` IDs allowed are those two.

use std::collections::BTreeMap;

use serde_json::Value;

use super::agent::AgentDesired;
use super::error::{ManifestError, clip};
use super::hub::HubDesired;
use super::json::Obj;
use crate::ids::ModuleId;

/// The edge agent's module twin.
pub const EDGE_AGENT: &str = "$edgeAgent";
/// The edge hub's module twin.
pub const EDGE_HUB: &str = "$edgeHub";

/// The key holding a module twin's desired properties in a manifest.
const DESIRED_KEY: &str = "properties.desired";

/// A checked deployment manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The desired properties to set, by module twin (`$edgeAgent`, `$edgeHub`, user modules).
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
            if let Some((key, _)) = entry.entries().find(|(key, _)| *key != DESIRED_KEY) {
                return Err(ManifestError::UnexpectedKey {
                    path: entry.path_of(&clip(key)),
                    hint: "a module entry holds only \"properties.desired\"",
                });
            }
            desired.insert(id, entry.req_obj(DESIRED_KEY)?.to_value());
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
