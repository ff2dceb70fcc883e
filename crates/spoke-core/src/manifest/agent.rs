//! `$edgeAgent` desired properties: the modules a device should run (edge contracts spec
//! §3.1; edgeAgent's `DeploymentConfig`, `DockerRuntimeInfo`, `RegistryCredentials`,
//! `EdgeAgentConnection`).
//!
//! Reading order and status codes (spec §5.1):
//! 1. Anything but an object: 400. Nothing but `$version`/`$metadata`: 417.
//! 2. `schemaVersion`: absent 400; not `1.0`..=`1.1.0` 412 (Spoke checks it before the
//!    rest, so a newer manifest says "unsupported schema" rather than "bad field").
//! 3. `runtime` (required; `type` exactly `docker`; `settings.registryCredentials` entries
//!    need non-blank `address`, `username`, `password`), `systemModules` (required; each of
//!    `edgeAgent`, `edgeHub` optional), `modules` (optional): 400 on any problem.
//!
//! Module names are module IDs ([`crate::ids::ModuleId`]) without `$`; `edgeAgent` and
//! `edgeHub` are reserved for the system modules. Everything else edgeAgent ignores
//! (`minDockerVersion`, `loggingOptions`, `integrity`, unknown fields) is ignored here too.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::error::{ManifestError, clip};
use super::json::Obj;
use super::module::{ModuleSpec, Role};
use super::schema;
use crate::ids::ModuleId;

/// The system module names, as keys of `systemModules`.
pub const SYSTEM_MODULE_NAMES: [&str; 2] = ["edgeAgent", "edgeHub"];

/// Credentials for a private container registry (`runtime.settings.registryCredentials`).
/// `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    /// Registry host, such as `myacr.azurecr.io`.
    pub address: String,
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The runtime's own modules (`systemModules`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemModules {
    /// `edgeAgent`: always running, restart `always`, startup order 0.
    pub edge_agent: Option<ModuleSpec>,
    /// `edgeHub`.
    pub edge_hub: Option<ModuleSpec>,
}

/// The typed `$edgeAgent` desired properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDesired {
    /// `schemaVersion` as written (`1.0` or `1.1`, possibly with a build number).
    pub schema_version: String,
    /// Registry credentials by name.
    pub registry_credentials: BTreeMap<String, RegistryCredential>,
    /// The runtime's own modules.
    pub system_modules: SystemModules,
    /// The user modules by name.
    pub modules: BTreeMap<ModuleId, ModuleSpec>,
}

impl AgentDesired {
    /// Reads the `$edgeAgent` desired properties (the twin's `properties.desired`, with or
    /// without `$version` and `$metadata`). The error's [`ManifestError::status`] is the
    /// `lastDesiredStatus.code` to report.
    pub fn from_twin(desired: &Value) -> Result<Self, ManifestError> {
        let doc = Obj::new(desired, "$edgeAgent".to_owned())?;
        if doc.entries().all(|(key, _)| is_twin_metadata(key)) {
            return Err(ManifestError::Empty {
                path: doc.path().to_owned(),
            });
        }
        let schema_version = schema::agent(&doc)?;
        let runtime = doc.req_obj("runtime")?;
        match runtime.opt_str("type")? {
            Some("docker") => {}
            Some(other) => {
                return Err(runtime.invalid("type", &Value::String(other.to_owned()), "docker"));
            }
            None => return Err(runtime.missing("type")),
        }
        let registry_credentials = match runtime.opt_obj("settings")? {
            Some(settings) => parse_credentials(&settings)?,
            None => BTreeMap::new(),
        };
        let system = doc.req_obj("systemModules")?;
        let system_modules = SystemModules {
            edge_agent: parse_system(&system, SYSTEM_MODULE_NAMES[0], Role::Agent)?,
            edge_hub: parse_system(&system, SYSTEM_MODULE_NAMES[1], Role::Hub)?,
        };
        let mut modules = BTreeMap::new();
        if let Some(entries) = doc.opt_obj("modules")? {
            for (name, entry) in entries.entries() {
                let id = user_module_name(&entries, name)?;
                let entry = Obj::new(entry, entries.path_of(name))?;
                modules.insert(id.clone(), ModuleSpec::parse(id, &entry, Role::User)?);
            }
        }
        Ok(AgentDesired {
            schema_version,
            registry_credentials,
            system_modules,
            modules,
        })
    }

    /// The desired properties in manifest form, every default explicit (see
    /// [`ModuleSpec::to_json`]). Reading them back gives an equal value.
    pub fn to_twin(&self) -> Value {
        let credentials: Map<String, Value> = self
            .registry_credentials
            .iter()
            .map(|(name, c)| {
                let entry = json!({
                    "address": c.address, "username": c.username, "password": c.password,
                });
                (name.clone(), entry)
            })
            .collect();
        let mut system = Map::new();
        let pairs = [
            (SYSTEM_MODULE_NAMES[0], &self.system_modules.edge_agent),
            (SYSTEM_MODULE_NAMES[1], &self.system_modules.edge_hub),
        ];
        for (name, spec) in pairs {
            if let Some(spec) = spec {
                system.insert(name.to_owned(), spec.to_json());
            }
        }
        let modules: Map<String, Value> = self
            .modules
            .iter()
            .map(|(name, spec)| (name.to_string(), spec.to_json()))
            .collect();
        json!({
            "schemaVersion": self.schema_version,
            "runtime": {"type": "docker", "settings": {"registryCredentials": credentials}},
            "systemModules": system,
            "modules": modules,
        })
    }
}

/// Whether a top-level key of desired properties is twin bookkeeping, not configuration.
pub(super) fn is_twin_metadata(key: &str) -> bool {
    key == "$version" || key == "$metadata"
}

/// Reads `runtime.settings.registryCredentials`.
fn parse_credentials(
    settings: &Obj<'_>,
) -> Result<BTreeMap<String, RegistryCredential>, ManifestError> {
    let Some(credentials) = settings.opt_obj("registryCredentials")? else {
        return Ok(BTreeMap::new());
    };
    credentials
        .entries()
        .map(|(name, entry)| {
            let entry = Obj::new(entry, credentials.path_of(name))?;
            let credential = RegistryCredential {
                address: entry.req_text("address")?,
                username: entry.req_text("username")?,
                password: entry.req_text("password")?,
            };
            Ok((name.clone(), credential))
        })
        .collect()
}

/// Reads `systemModules.<name>` if present.
fn parse_system(
    system: &Obj<'_>,
    name: &'static str,
    role: Role,
) -> Result<Option<ModuleSpec>, ManifestError> {
    let Some(entry) = system.opt_obj(name)? else {
        return Ok(None);
    };
    let id = ModuleId::parse(name).expect("system module names are valid module IDs");
    ModuleSpec::parse(id, &entry, role).map(Some)
}

/// Validates the name of an entry of `modules`.
fn user_module_name(modules: &Obj<'_>, name: &str) -> Result<ModuleId, ManifestError> {
    let id = ModuleId::parse(name).map_err(|reason| ManifestError::InvalidModuleName {
        path: modules.path().to_owned(),
        name: clip(name),
        reason,
    })?;
    if name.contains('$') || SYSTEM_MODULE_NAMES.contains(&name) {
        return Err(ManifestError::ReservedModuleName {
            path: modules.path().to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(id)
}
