//! The modules' twins as the edge hub keeps them, in `<data_dir>/edgehub-twins.json`: the
//! last twin read from the hub (a module reads it while the hub is out of reach, also after a
//! restart; a module whose twin was never read gets an empty one, as from Azure's edgeHub)
//! and the reported patches the edge hub accepted and the hub has not yet, oldest first. This is Azure edgeHub's behaviour: a reported patch is checked and acknowledged
//! locally, then synced in the background ([`super::cloud`] sends them).
//!
//! Invariants:
//! - a module reads the last twin from the hub with its pending patches applied in order;
//! - a patch is on disk (written to a temporary file, synced, renamed) before it is
//!   acknowledged; a patch leaves only once the hub took it (or refused it: logged);
//! - patches are kept as few as exactness allows: a new patch is folded into the newest
//!   pending one when one merge patch does what both do in turn ([`spoke_core::twin::fold`]).
//!   A fold into the patch being sent is harmless: the sender removes the oldest patch only
//!   if it is still what it sent, else sends it again (a merge patch applied twice is
//!   applied once).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spoke_core::ids::ModuleId;
use spoke_core::twin::{self, TwinError};

use crate::state_file;

/// One module's twin state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Entry {
    /// The twin as last read from the hub (`{"desired":{..},"reported":{..}}`), patches the
    /// hub sent or took applied since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    twin: Option<Value>,
    /// Reported patches accepted here that the hub has not taken yet, oldest first.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pending: VecDeque<Map<String, Value>>,
    /// The reported `$version` last shown to the module.
    #[serde(default)]
    reported_version: u64,
}

impl Entry {
    /// The twin as the module sees it: the hub's (or an empty one) with the pending patches
    /// applied.
    fn view(&self) -> Value {
        let mut view = self.twin.clone().unwrap_or_else(
            || serde_json::json!({"desired": {"$version": 1}, "reported": {"$version": 1}}),
        );
        let reported = section(&mut view, "reported");
        for patch in &self.pending {
            twin::merge(reported, patch);
        }
        let version = self
            .reported_version
            .max(section_version(&view, "reported"));
        section(&mut view, "reported").insert("$version".into(), version.into());
        view
    }

    /// The reported properties as the module sees them, without `$version`.
    fn reported_values(&self) -> Map<String, Value> {
        let mut view = self.view();
        let mut reported = std::mem::take(section(&mut view, "reported"));
        reported.remove("$version");
        reported
    }
}

/// `doc[name]` as an object, made one if it is not.
fn section<'a>(doc: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(map) = doc else {
        unreachable!("made an object above")
    };
    let slot = map
        .entry(name.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(section) = slot else {
        unreachable!("made an object above")
    };
    section
}

fn section_version(doc: &Value, name: &str) -> u64 {
    doc.pointer(&format!("/{name}/$version"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Why a reported patch was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The patch breaks the twin rules (status 400).
    #[error(transparent)]
    Invalid(#[from] TwinError),
    /// It could not be saved (status 500).
    #[error("cannot save the reported properties: {0}")]
    Io(#[from] std::io::Error),
}

/// The modules' twins (see the module documentation); one lock, held briefly.
pub struct TwinStore {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl TwinStore {
    /// Loads `path`; a missing file is an empty store, an unreadable one is logged and
    /// treated as empty (its patches are lost, the modules' twins are read again from the hub).
    pub fn open(path: PathBuf) -> Self {
        let entries = state_file::load(&path, "no cached module twins");
        Self {
            path,
            entries: Mutex::new(entries),
        }
    }

    /// The modules with patches to send.
    pub fn modules_with_pending(&self) -> Vec<ModuleId> {
        self.lock()
            .iter()
            .filter(|(_, entry)| !entry.pending.is_empty())
            .filter_map(|(name, _)| ModuleId::parse(name).ok())
            .collect()
    }

    /// The twin the module reads: the last one from the hub (or an empty one), pending
    /// patches applied.
    pub fn view(&self, module: &ModuleId) -> Value {
        self.lock()
            .get(module.as_str())
            .map_or_else(|| Entry::default().view(), Entry::view)
    }

    /// [`Self::view`], if a twin was ever read from the hub.
    pub fn cached(&self, module: &ModuleId) -> Option<Value> {
        let entries = self.lock();
        let entry = entries.get(module.as_str())?;
        entry.twin.is_some().then(|| entry.view())
    }

    /// Records a twin the hub sent; what the module reads (pending patches applied).
    pub fn read(&self, module: &ModuleId, twin: Value) -> Value {
        self.update(module, |entry| {
            let version = section_version(&twin, "reported");
            entry.reported_version = entry.reported_version.max(version);
            entry.twin = Some(twin);
            entry.view()
        })
    }

    /// Applies a desired patch the hub sent to the cached twin.
    pub fn desired_patch(&self, module: &ModuleId, patch: &Value) {
        let Value::Object(patch) = patch else { return };
        self.update(module, |entry| {
            if let Some(twin) = entry.twin.as_mut() {
                let desired = section(twin, "desired");
                twin::merge(desired, patch);
            }
        });
    }

    /// Accepts a reported patch: checked against the reported properties the module sees,
    /// saved, queued for the hub. The reported `$version` to acknowledge it with.
    pub fn accept(&self, module: &ModuleId, patch: &Value) -> Result<u64, AcceptError> {
        let mut entries = self.lock();
        let entry = entries.entry(module.to_string()).or_default();
        twin::patch_reported_values(&mut entry.reported_values(), patch)?;
        let Value::Object(patch) = patch else {
            unreachable!("checked to be an object above")
        };
        let before = entry.clone();
        let folded = entry
            .pending
            .back_mut()
            .is_some_and(|newest| twin::fold(newest, patch));
        if !folded {
            entry.pending.push_back(patch.clone());
        }
        entry.reported_version += 1;
        let version = entry.reported_version;
        if let Err(e) = self.save(&entries) {
            entries.insert(module.to_string(), before);
            return Err(e.into());
        }
        Ok(version)
    }

    /// The oldest patch the hub has not taken.
    pub fn oldest_pending(&self, module: &ModuleId) -> Option<Map<String, Value>> {
        self.lock()
            .get(module.as_str())
            .and_then(|entry| entry.pending.front().cloned())
    }

    /// The hub took `sent` (`Some` reported version) or refused it (`None`): it leaves the
    /// queue if it is still the oldest patch as sent (see the module documentation).
    pub fn sent(&self, module: &ModuleId, sent: &Map<String, Value>, version: Option<u64>) {
        self.update(module, |entry| {
            if entry.pending.front() != Some(sent) {
                return;
            }
            entry.pending.pop_front();
            if let (Some(twin), Some(version)) = (entry.twin.as_mut(), version) {
                let reported = section(twin, "reported");
                twin::merge(reported, sent);
                reported.insert("$version".into(), version.into());
                entry.reported_version = entry.reported_version.max(version);
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes one module's entry and saves; a failed save is logged (the change holds in
    /// memory: it is a cache of the hub's state or the removal of a sent patch).
    fn update<T>(&self, module: &ModuleId, change: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.lock();
        let out = change(entries.entry(module.to_string()).or_default());
        if let Err(e) = self.save(&entries) {
            tracing::warn!(path = %self.path.display(), error = %e, "module twin cache not saved");
        }
        out
    }

    fn save(&self, entries: &BTreeMap<String, Entry>) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(entries).map_err(std::io::Error::other)?;
        state_file::write(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn module() -> ModuleId {
        ModuleId::parse("sensor").unwrap()
    }

    fn store(dir: &tempfile::TempDir) -> TwinStore {
        TwinStore::open(dir.path().join("twins.json"))
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn offline_patches_show_in_reads_survive_a_restart_and_leave_when_sent() {
        let dir = tempfile::tempdir().unwrap();
        let twins = store(&dir);
        let hub_twin = json!({"desired": {"$version": 3}, "reported": {"a": 1, "$version": 5}});
        twins.read(&module(), hub_twin);
        assert_eq!(twins.accept(&module(), &json!({"b": 2})).unwrap(), 6);
        assert_eq!(twins.accept(&module(), &json!({"a": null})).unwrap(), 7);
        // Restart.
        let twins = store(&dir);
        assert_eq!(
            twins.view(&module())["reported"],
            json!({"b": 2, "$version": 7})
        );
        let oldest = twins.oldest_pending(&module()).unwrap();
        assert_eq!(oldest, obj(json!({"b": 2, "a": null})), "folded into one");
        twins.sent(&module(), &oldest, Some(6));
        assert_eq!(twins.oldest_pending(&module()), None);
        assert_eq!(twins.modules_with_pending(), Vec::<ModuleId>::new());
        assert_eq!(
            twins.view(&module())["reported"],
            json!({"b": 2, "$version": 7})
        );
    }

    #[test]
    fn a_patch_folded_into_the_one_in_flight_is_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let twins = store(&dir);
        twins.accept(&module(), &json!({"a": 1})).unwrap();
        let in_flight = twins.oldest_pending(&module()).unwrap();
        twins.accept(&module(), &json!({"b": 1})).unwrap();
        twins.sent(&module(), &in_flight, Some(2));
        assert_eq!(
            twins.oldest_pending(&module()),
            Some(obj(json!({"a": 1, "b": 1})))
        );
    }

    #[test]
    fn patches_that_do_not_fold_stay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let twins = store(&dir);
        twins.accept(&module(), &json!({"a": 1})).unwrap();
        twins.accept(&module(), &json!({"a": {"x": 1}})).unwrap();
        let first = twins.oldest_pending(&module()).unwrap();
        assert_eq!(first, obj(json!({"a": 1})));
        twins.sent(&module(), &first, None);
        assert_eq!(
            twins.oldest_pending(&module()),
            Some(obj(json!({"a": {"x": 1}})))
        );
        assert_eq!(twins.modules_with_pending(), vec![module()]);
    }

    #[test]
    fn an_invalid_patch_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let twins = store(&dir);
        assert!(matches!(
            twins.accept(&module(), &json!([1])),
            Err(AcceptError::Invalid(_))
        ));
        assert!(matches!(
            twins.accept(&module(), &json!({"$bad": 1})),
            Err(AcceptError::Invalid(_))
        ));
        assert_eq!(twins.oldest_pending(&module()), None);
    }

    #[test]
    fn desired_patches_update_the_cached_twin() {
        let dir = tempfile::tempdir().unwrap();
        let twins = store(&dir);
        twins.read(
            &module(),
            json!({"desired": {"t": 1, "$version": 2}, "reported": {"$version": 1}}),
        );
        twins.desired_patch(&module(), &json!({"t": 9, "$version": 3}));
        assert_eq!(
            twins.view(&module())["desired"],
            json!({"t": 9, "$version": 3})
        );
    }

    #[test]
    fn an_unreadable_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("twins.json"), b"{not json").unwrap();
        let twins = store(&dir);
        assert_eq!(twins.cached(&module()), None);
        assert_eq!(
            twins.view(&module()),
            json!({"desired": {"$version": 1}, "reported": {"$version": 1}})
        );
    }
}
