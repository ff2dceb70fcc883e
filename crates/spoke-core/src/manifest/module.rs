//! One module of a deployment: the typed form of an entry of `$edgeAgent`'s `modules` or
//! `systemModules` (edge contracts spec §3.1; edgeAgent's `DockerDesiredModule`,
//! `EdgeHubDockerModule`, `EdgeAgentDockerModule`, `EnvVal`).
//!
//! Fields and defaults, as edgeAgent reads them:
//! - `type`: required, exactly `docker` or (Spoke) `process`.
//! - `settings`: required. Docker: `image` (required; `:latest` added when untagged, see
//!   [`normalize_image`]), `createOptions` chunks ([`super::create_options`]), `digest`.
//!   Process: `command` (required non-empty array of strings: program, then arguments) and
//!   `workingDir`.
//! - `status`: required `running` | `stopped` for user modules and edgeHub; edgeAgent is
//!   always running and ignores it.
//! - `restartPolicy`: `never` | `on-failure` | `on-unhealthy` | `always`; default
//!   `on-unhealthy` for user modules (`Constants.DefaultRestartPolicy`), `always` for edgeHub;
//!   always `always` for edgeAgent.
//! - `imagePullPolicy`: `on-create` (default) | `never`.
//! - `startupOrder`: 0..=4294967295, default 4294967295 (last); edgeAgent is always 0.
//! - `version`: text, default empty. `env`: `{NAME: {"value": text}}`, a missing or `null`
//!   value is the empty string.
//!
//! Spoke refuses the other values edgeAgent's enums happen to define (`status: "backoff"`,
//! `restartPolicy: "unknown"`): they have no meaning in a desired state.
//!
//! Equality of [`ModuleSpec`] is the "did this module change" test of the reconciler. It
//! covers every field; create options compare as JSON values, so key order does not count.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::create_options;
use super::error::ManifestError;
use super::image::normalize_image;
use super::json::{Obj, text};
use crate::ids::ModuleId;

/// The desired state of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleStatus {
    /// The module should run.
    Running,
    /// The module should exist but not run.
    Stopped,
}

/// When the runtime restarts a module that is not running (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    /// Never restart.
    Never,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Restart after a non-zero exit or when unhealthy.
    OnUnhealthy,
    /// Always restart.
    Always,
}

/// When the runtime pulls a docker module's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImagePullPolicy {
    /// Pull when the module is created or updated.
    OnCreate,
    /// Never pull; the image must already be on the device.
    Never,
}

const STATUSES: [(&str, ModuleStatus); 2] = [
    ("running", ModuleStatus::Running),
    ("stopped", ModuleStatus::Stopped),
];

const RESTART_POLICIES: [(&str, RestartPolicy); 4] = [
    ("never", RestartPolicy::Never),
    ("on-failure", RestartPolicy::OnFailure),
    ("on-unhealthy", RestartPolicy::OnUnhealthy),
    ("always", RestartPolicy::Always),
];

const PULL_POLICIES: [(&str, ImagePullPolicy); 2] = [
    ("on-create", ImagePullPolicy::OnCreate),
    ("never", ImagePullPolicy::Never),
];

impl ModuleStatus {
    /// The manifest spelling: `running` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleStatus::Running => "running",
            ModuleStatus::Stopped => "stopped",
        }
    }
}

impl RestartPolicy {
    /// The manifest spelling: `never`, `on-failure`, `on-unhealthy` or `always`.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::OnUnhealthy => "on-unhealthy",
            RestartPolicy::Always => "always",
        }
    }
}

impl ImagePullPolicy {
    /// The manifest spelling: `on-create` or `never`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::OnCreate => "on-create",
            ImagePullPolicy::Never => "never",
        }
    }
}

/// What a module runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleKind {
    /// `"type": "docker"`: a container, exactly as Azure IoT Edge.
    Docker {
        /// The image reference, with a tag ([`normalize_image`]).
        image: String,
        /// Docker `ContainerCreate` options: always a JSON object, empty when none are given.
        create_options: Value,
        /// The image digest pinned by the manifest, if any.
        digest: Option<String>,
    },
    /// `"type": "process"` (Spoke): a plain process.
    Process {
        /// Program, then arguments; never empty, and the program is not blank.
        command: Vec<String>,
        /// Working directory, if given.
        working_dir: Option<String>,
    },
}

/// One module of a deployment, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// The module name: the key in `modules`, or `edgeAgent`/`edgeHub` for system modules.
    pub name: ModuleId,
    /// The manifest's free-form `version` (empty when absent).
    pub version: String,
    /// What the module runs.
    pub kind: ModuleKind,
    /// Running or stopped.
    pub status: ModuleStatus,
    /// When to restart it.
    pub restart_policy: RestartPolicy,
    /// When to pull its image.
    pub image_pull_policy: ImagePullPolicy,
    /// Start order: lower starts first, equal values start together.
    pub startup_order: u32,
    /// Environment variables set by the manifest.
    pub env: BTreeMap<String, String>,
}

/// Which defaults apply to a module entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `systemModules.edgeAgent`.
    Agent,
    /// `systemModules.edgeHub`.
    Hub,
    /// An entry of `modules`.
    User,
}

impl ModuleSpec {
    /// Reads a module entry.
    pub(super) fn parse(
        name: ModuleId,
        entry: &Obj<'_>,
        role: Role,
    ) -> Result<Self, ManifestError> {
        let kind = parse_kind(entry)?;
        let (status, restart_policy, startup_order) = if role == Role::Agent {
            (ModuleStatus::Running, RestartPolicy::Always, 0)
        } else {
            let status = entry
                .opt_enum("status", &STATUSES, "running or stopped")?
                .ok_or_else(|| entry.missing("status"))?;
            let default_policy = if role == Role::Hub {
                RestartPolicy::Always
            } else {
                RestartPolicy::OnUnhealthy
            };
            let policy = entry
                .opt_enum(
                    "restartPolicy",
                    &RESTART_POLICIES,
                    "never, on-failure, on-unhealthy or always",
                )?
                .unwrap_or(default_policy);
            let order = entry
                .opt_int(
                    "startupOrder",
                    0,
                    u32::MAX.into(),
                    "an integer 0..=4294967295",
                )?
                .map_or(u32::MAX, |n| n as u32);
            (status, policy, order)
        };
        let image_pull_policy = entry
            .opt_enum("imagePullPolicy", &PULL_POLICIES, "on-create or never")?
            .unwrap_or(ImagePullPolicy::OnCreate);
        Ok(ModuleSpec {
            name,
            version: entry.opt_text("version")?.unwrap_or_default(),
            kind,
            status,
            restart_policy,
            image_pull_policy,
            startup_order,
            env: parse_env(entry)?,
        })
    }

    /// The module entry in manifest form, as edgeAgent writes it to reported properties:
    /// every field explicit and create options chunked ([`create_options::chunk`]). Reading
    /// it back gives an equal spec.
    pub fn to_json(&self) -> Value {
        let settings = match &self.kind {
            ModuleKind::Docker {
                image,
                create_options,
                digest,
            } => {
                let mut settings = Map::new();
                settings.insert("image".into(), json!(image));
                settings.extend(create_options::chunk(create_options));
                if let Some(digest) = digest {
                    settings.insert("digest".into(), json!(digest));
                }
                settings
            }
            ModuleKind::Process {
                command,
                working_dir,
            } => {
                let mut settings = Map::new();
                settings.insert("command".into(), json!(command));
                if let Some(dir) = working_dir {
                    settings.insert("workingDir".into(), json!(dir));
                }
                settings
            }
        };
        let env: Map<String, Value> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), json!({ "value": v })))
            .collect();
        json!({
            "version": self.version,
            "type": self.kind.type_name(),
            "status": self.status.as_str(),
            "restartPolicy": self.restart_policy.as_str(),
            "imagePullPolicy": self.image_pull_policy.as_str(),
            "startupOrder": self.startup_order,
            "settings": settings,
            "env": env,
        })
    }
}

impl ModuleKind {
    /// The manifest `type`: `docker` or `process`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ModuleKind::Docker { .. } => "docker",
            ModuleKind::Process { .. } => "process",
        }
    }
}

/// Reads `type` and `settings`.
fn parse_kind(entry: &Obj<'_>) -> Result<ModuleKind, ManifestError> {
    let type_name = entry
        .opt_str("type")?
        .ok_or_else(|| entry.missing("type"))?;
    let settings = entry.req_obj("settings")?;
    match type_name {
        "docker" => {
            let written = settings.req_str("image")?;
            let image = normalize_image(written).ok_or_else(|| {
                settings.invalid(
                    "image",
                    &Value::String(written.to_owned()),
                    "an image reference such as registry/repository:tag",
                )
            })?;
            Ok(ModuleKind::Docker {
                image,
                create_options: create_options::assemble(&settings)?,
                digest: settings.opt_text("digest")?,
            })
        }
        "process" => Ok(ModuleKind::Process {
            command: parse_command(&settings)?,
            working_dir: settings.opt_str("workingDir")?.map(str::to_owned),
        }),
        other => Err(entry.invalid(
            "type",
            &Value::String(other.to_owned()),
            "docker or process",
        )),
    }
}

/// Reads `settings.command` of a process module.
fn parse_command(settings: &Obj<'_>) -> Result<Vec<String>, ManifestError> {
    const EXPECTED: &str = "a non-empty array of strings (program, then arguments)";
    let value = settings
        .get("command")
        .ok_or_else(|| settings.missing("command"))?;
    let wrong = || ManifestError::WrongType {
        path: settings.path_of("command"),
        expected: EXPECTED,
    };
    let items = value.as_array().ok_or_else(wrong)?;
    let command = items
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
        .collect::<Result<Vec<_>, _>>()?;
    match command.first() {
        Some(program) if !program.trim().is_empty() => Ok(command),
        _ => Err(settings.invalid("command", value, EXPECTED)),
    }
}

/// Reads `env`: `{NAME: {"value": text}}`.
fn parse_env(entry: &Obj<'_>) -> Result<BTreeMap<String, String>, ManifestError> {
    let Some(env) = entry.opt_obj("env")? else {
        return Ok(BTreeMap::new());
    };
    env.entries()
        .map(|(name, item)| {
            let item = Obj::new(item, env.path_of(name))?;
            let value = match item.get("value") {
                Some(v) => text(v, || item.path_of("value"))?,
                None => String::new(),
            };
            Ok((name.clone(), value))
        })
        .collect()
}
