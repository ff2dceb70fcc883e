//! The values that cross the runtime traits: what to run ([`ModuleConfig`]), what is running
//! ([`ModuleState`]), log entries and exit notifications. Nothing here is specific to a backend.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;

/// Where a module finds its workload socket inside a container (spec §1.1): the per-module
/// host socket is bind-mounted here, so `IOTEDGE_WORKLOADURI` is the same in every container.
pub const CONTAINER_WORKLOAD_SOCKET: &str = "/var/run/iotedge/workload.sock";

/// The environment variable naming the workload socket (spec §2.2). The runtime owns it:
/// whatever [`ModuleConfig::env`] says, the runtime sets it to the socket the module can reach.
pub const WORKLOAD_URI_ENV: &str = "IOTEDGE_WORKLOADURI";

/// Everything a runtime needs to create one module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleConfig {
    /// The module's name: the container name (Docker) or the state directory (process).
    pub name: ModuleId,
    /// What to run: an image or a command.
    pub settings: ModuleSettings,
    /// Environment for the module, in order; later entries win over earlier ones with the same
    /// key. The agent puts the `IOTEDGE_*` variables here (spec §2.2).
    pub env: Vec<(String, String)>,
    /// Host path of this module's workload socket. Docker bind-mounts it at
    /// [`CONTAINER_WORKLOAD_SOCKET`]; a process gets `IOTEDGE_WORKLOADURI=unix://<this path>`.
    pub workload_socket: PathBuf,
    /// Extra labels (Docker container labels; kept as metadata by the process runtime).
    pub labels: BTreeMap<String, String>,
    /// Docker network to attach to instead of the runtime's default one (ignored by the
    /// process runtime, and by Docker when `createOptions.NetworkingConfig` is set).
    pub network: Option<String>,
    /// Network aliases of the container on that network (ignored by the process runtime).
    pub network_aliases: Vec<String>,
}

/// The runnable part of a module, by module type (ARCHITECTURE.md "Module types").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ModuleSettings {
    /// `"type": "docker"`: an image and Docker `ContainerCreate` options.
    Docker(DockerSettings),
    /// `"type": "process"`: a program and its arguments.
    Process(ProcessSettings),
}

impl ModuleSettings {
    /// The manifest's name for this module type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Docker(_) => "docker",
            Self::Process(_) => "process",
        }
    }
}

/// `settings` of a Docker module, as in Azure's manifest (spec §1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerSettings {
    /// Image reference, e.g. `registry/name:tag`.
    pub image: String,
    /// A Docker Engine `ContainerCreate` JSON object, passed through with the runtime's
    /// additions (env, labels, workload socket mount, network, extra hosts). `null` means `{}`.
    pub create_options: serde_json::Value,
}

/// `settings` of a process module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSettings {
    /// Program and arguments. A program without `/` is looked up in `PATH`; a relative path
    /// with `/` is taken relative to the working directory.
    pub command: Vec<String>,
    /// Working directory; the module's own work directory when absent.
    pub working_dir: Option<PathBuf>,
}

/// The runtime's identifier of one created instance of a module: a container id, or a fresh
/// id per process-runtime `create`. It changes whenever the module is re-created.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// Wraps an id handed out by a backend.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A module's runtime status, with the values of `runtimeStatus` (spec §5.1). `backoff` and
/// `unhealthy` are the agent's to decide, so a runtime never reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeStatus {
    /// The main process is running.
    Running,
    /// Created and never started, or exited with code 0.
    Stopped,
    /// Exited with a non-zero code (including death by a signal, reported as 128 + signal).
    Failed,
    /// The engine gave up on the container (Docker's `dead`).
    Dead,
    /// The engine reported a state this runtime does not know.
    Unknown,
}

impl RuntimeStatus {
    /// The status as it appears in reported properties.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }

    /// Azure's mapping for a module that is not running (spec §5.3): 0 is `stopped`, anything
    /// else `failed`.
    pub fn from_exit_code(code: i64) -> Self {
        if code == 0 {
            Self::Stopped
        } else {
            Self::Failed
        }
    }
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a runtime knows about one module right now.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleState {
    /// The module's name.
    pub name: ModuleId,
    /// The current instance.
    pub id: InstanceId,
    /// Runtime status.
    pub status: RuntimeStatus,
    /// Exit code of the last run, when the module is not running and has run before.
    pub exit_code: Option<i64>,
    /// When the current or last run started.
    pub started_at: Option<OffsetDateTime>,
    /// When the last run ended (it may precede `started_at` while a new run is going).
    pub finished_at: Option<OffsetDateTime>,
    /// Host PID of the main process while running.
    pub pid: Option<u32>,
    /// Extra detail from the engine (an error, an OOM kill, why a run ended).
    pub description: Option<String>,
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogSource {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of module output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The stream it was written to.
    pub source: LogSource,
    /// When the runtime captured it.
    pub timestamp: OffsetDateTime,
    /// The line without its trailing newline (arbitrary bytes).
    pub line: Bytes,
}

/// Which log lines to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last N lines of the history (all when `None`).
    pub tail: Option<usize>,
    /// Only lines captured at or after this time (Docker compares whole seconds).
    pub since: Option<OffsetDateTime>,
    /// After the history, keep streaming new lines until the running module exits. On a module
    /// that is not running the stream ends after the history.
    pub follow: bool,
}

/// A change in a module's run state, sent by [`super::ModuleEvents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    /// The module concerned.
    pub name: ModuleId,
    /// What happened.
    pub kind: RuntimeEventKind,
}

/// The kinds of [`RuntimeEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeEventKind {
    /// The module's main process started.
    Started,
    /// The module's main process ended, whether it crashed, exited or was stopped.
    Exited {
        /// Its exit code (128 + signal when killed by a signal), when known.
        exit_code: Option<i64>,
    },
}

/// Registry credentials for a pull (`settings.auth` / `registryCredentials`, spec §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
    /// Registry address, e.g. `myregistry.azurecr.io`.
    pub server_address: String,
}
