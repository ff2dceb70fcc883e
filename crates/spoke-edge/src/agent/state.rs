//! What the agent persists so it can restart, offline too, without disturbing running
//! modules: the last good deployment and, per module, the spec it was created from and its
//! restart bookkeeping (edgeAgent keeps the latter in its store, spec §5.3).
//!
//! On-disk format (JSON, `format` 1), written by the driver with [`serde_json`]:
//!
//! ```json
//! {"format": 1,
//!  "desiredVersion": 7,
//!  "desired": {"schemaVersion": "1.1", "runtime": {...}, "systemModules": {...}, "modules": {...}},
//!  "modules": {"sensor": {"deployed": {"version": "1.0", "type": "docker", ...},
//!                         "restartCount": 2, "lastRestartTimeUtc": "2026-03-01T12:00:10Z"}}}
//! ```
//!
//! `desired` is [`AgentDesired::to_twin`] (so it holds registry passwords: the driver keeps
//! the file private), `deployed` is [`ModuleSpec::to_json`], times are RFC 3339. Both are read
//! back through the manifest parser, so a stored state that would no longer parse is an
//! error, never a half-loaded state. Invariants: `desired` and `desiredVersion` are both
//! present or both absent; every module record names a module of `desired`, and its
//! `deployed` spec has that name.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use spoke_core::ids::ModuleId;
use spoke_core::manifest::{AgentDesired, ManifestError, ModuleSpec};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::restart::RestartRecord;

/// The only `format` this version writes and reads.
const FORMAT: u32 = 1;

/// A module the agent created: the spec it was created from and its restart bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRecord {
    /// The spec of the current instance (its `status` follows later status changes).
    pub deployed: ModuleSpec,
    /// Restart count and last restart.
    pub restart: RestartRecord,
}

impl ModuleRecord {
    /// A fresh record for a module just created from `spec`.
    pub fn new(spec: ModuleSpec) -> Self {
        Self {
            deployed: spec,
            restart: RestartRecord::default(),
        }
    }
}

/// The last good deployment and the per-module records; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentState {
    pub(super) desired: Option<(u64, AgentDesired)>,
    pub(super) modules: BTreeMap<ModuleId, ModuleRecord>,
}

impl AgentState {
    /// The last good `$edgeAgent` desired properties.
    pub fn desired(&self) -> Option<&AgentDesired> {
        self.desired.as_ref().map(|(_, desired)| desired)
    }

    /// The `$version` of the last good desired properties.
    pub fn version(&self) -> Option<u64> {
        self.desired.as_ref().map(|(version, _)| *version)
    }

    /// The record of a module the agent created.
    pub fn module(&self, name: &str) -> Option<&ModuleRecord> {
        self.modules.get(name)
    }
}

/// Why a stored [`AgentState`] could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The JSON does not have the stored-state shape.
    #[error("agent state is malformed: {0}")]
    Shape(#[source] serde_json::Error),
    /// A `format` other than 1.
    #[error("agent state format {0} is not supported (expected 1)")]
    Format(u32),
    /// `desired` and `desiredVersion` are not both present or both absent.
    #[error("agent state has desired properties without a version, or the reverse")]
    VersionMismatch,
    /// The stored desired properties or a deployed spec no longer parse.
    #[error("agent state {what} does not parse")]
    Manifest {
        /// Which part of the state.
        what: String,
        /// The parser's error.
        #[source]
        source: ManifestError,
    },
    /// A module record for a module that is not in the stored desired properties.
    #[error("agent state has a record for module {0} that is not deployed")]
    StrayRecord(String),
    /// A time that is not RFC 3339.
    #[error("agent state time {0:?} is not RFC 3339")]
    Time(String),
    /// A time that cannot be written as RFC 3339.
    #[error("agent state time {0} cannot be written as RFC 3339")]
    Unwritable(OffsetDateTime),
}

/// The serde shape of [`AgentState`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desired_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desired: Option<Value>,
    #[serde(default)]
    modules: BTreeMap<String, StoredModule>,
}

/// The serde shape of [`ModuleRecord`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredModule {
    deployed: Value,
    restart_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_restart_time_utc: Option<String>,
}

impl AgentState {
    fn to_stored(&self) -> Result<Stored, StateError> {
        let modules = self
            .modules
            .iter()
            .map(|(name, record)| {
                let last_restart = record
                    .restart
                    .last_restart
                    .map(|t| t.format(&Rfc3339).map_err(|_| StateError::Unwritable(t)))
                    .transpose()?;
                let stored = StoredModule {
                    deployed: record.deployed.to_json(),
                    restart_count: record.restart.count,
                    last_restart_time_utc: last_restart,
                };
                Ok((name.to_string(), stored))
            })
            .collect::<Result<_, StateError>>()?;
        Ok(Stored {
            format: FORMAT,
            desired_version: self.version(),
            desired: self.desired().map(AgentDesired::to_twin),
            modules,
        })
    }

    fn from_stored(stored: Stored) -> Result<Self, StateError> {
        if stored.format != FORMAT {
            return Err(StateError::Format(stored.format));
        }
        let desired = match (stored.desired_version, stored.desired) {
            (Some(version), Some(doc)) => {
                let desired =
                    AgentDesired::from_twin(&doc).map_err(|source| StateError::Manifest {
                        what: "desired".to_owned(),
                        source,
                    })?;
                Some((version, desired))
            }
            (None, None) => None,
            _ => return Err(StateError::VersionMismatch),
        };
        let mut modules = BTreeMap::new();
        for (name, record) in stored.modules {
            let deployed = parse_spec(&name, &record.deployed)?;
            let known = desired
                .as_ref()
                .is_some_and(|(_, d)| d.modules.contains_key(&deployed.name));
            if !known {
                return Err(StateError::StrayRecord(name));
            }
            let last_restart = record
                .last_restart_time_utc
                .map(|text| {
                    OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| StateError::Time(text))
                })
                .transpose()?;
            let restart = RestartRecord {
                count: record.restart_count,
                last_restart,
            };
            modules.insert(deployed.name.clone(), ModuleRecord { deployed, restart });
        }
        Ok(Self { desired, modules })
    }
}

/// Reads a stored module spec through the manifest parser, wrapped in a minimal
/// `$edgeAgent` document (the parser's only public entry point).
fn parse_spec(name: &str, spec: &Value) -> Result<ModuleSpec, StateError> {
    let doc = json!({
        "schemaVersion": "1.1",
        "runtime": {"type": "docker"},
        "systemModules": {},
        "modules": {name: spec},
    });
    let error = |source| StateError::Manifest {
        what: format!("module {name:?}"),
        source,
    };
    let mut desired = AgentDesired::from_twin(&doc).map_err(error)?;
    desired
        .modules
        .pop_first()
        .map(|(_, spec)| spec)
        .ok_or_else(|| StateError::StrayRecord(name.to_owned()))
}

impl Serialize for AgentState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_stored()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AgentState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
        Self::from_stored(stored).map_err(serde::de::Error::custom)
    }
}

impl AgentState {
    /// Reads a stored state (the driver's file), with a typed error.
    pub fn from_json(data: &[u8]) -> Result<Self, StateError> {
        let stored: Stored = serde_json::from_slice(data).map_err(StateError::Shape)?;
        Self::from_stored(stored)
    }

    /// The stored form, ready to write.
    pub fn to_json(&self) -> Result<Vec<u8>, StateError> {
        let stored = self.to_stored()?;
        serde_json::to_vec_pretty(&stored).map_err(StateError::Shape)
    }
}
