//! The management API: what the host (`spoke edge ...`) asks the edge daemon over its local
//! management socket, modelled on Azure's management API (azure-iot-edge-contracts.md §1.3):
//! list modules, read or follow their logs, restart one, and the daemon's status.
//!
//! Layers: [`api`] is the sans-I/O core (method, path and query in, a [`api::Route`] or an
//! [`api::ApiError`] out), [`wire`] holds the JSON shapes the server sends and the CLI reads,
//! and [`server`] owns the socket and the HTTP/1.1 connections. The daemon plugs in through
//! [`ModuleControl`]; this module never touches a runtime or the agent directly.
//!
//! Invariants:
//! - The socket is `<data_dir>/mgmt.sock` ([`management_socket`]), mode 0660: whoever can
//!   open it may manage the device, so its directory and group decide who that is.
//! - `api-version` is optional; when present it must be one Azure knows (2018-06-28 …
//!   2022-08-03), else 400.
//! - Errors are JSON `{"message": "..."}`: 400 for a bad query, 404 for an unknown path or
//!   module, 405 for a wrong method, 503 while the daemon shuts down, 500 otherwise.
//! - Logs are `text/plain`, chunked, one module output line per `\n`-terminated line (Azure
//!   sends the raw Docker multiplexed stream instead; Spoke's runtimes already split lines).

pub mod api;
pub mod fuzzing;
pub mod server;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use spoke_core::ids::{DeviceId, ModuleId};
use time::OffsetDateTime;

use crate::agent::DeploymentStatus;
use crate::config::EdgeConfig;
use crate::runtime::{
    InstanceId, LogOptions, LogStream, ModuleSettings, RuntimeError, RuntimeStatus,
};

pub use server::{ManagementError, ManagementServer};

/// File name of the management socket inside the data directory.
pub const SOCKET_FILE: &str = "mgmt.sock";

/// Where the daemon binds, and the CLI finds, the management socket: `<data_dir>/mgmt.sock`.
pub fn management_socket(config: &EdgeConfig) -> PathBuf {
    config.data_dir.join(SOCKET_FILE)
}

/// What the management API needs from the daemon. The daemon implements it over its runtimes
/// and agent; tests use a double.
#[async_trait]
pub trait ModuleControl: Send + Sync + 'static {
    /// Every module the daemon manages, sorted by name.
    async fn list(&self) -> Result<Vec<ModuleInfo>, ControlError>;

    /// A module's output as `options` select; with `options.follow` the stream goes on until
    /// the module exits or the caller drops it. Fails with `NotFound` up front.
    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, ControlError>;

    /// Stops and starts a module (Azure's `POST /modules/{m}/restart`).
    async fn restart(&self, name: &ModuleId) -> Result<(), ControlError>;

    /// The daemon's own state. Module counts are added by the server from [`Self::list`].
    async fn status(&self) -> Result<DaemonStatus, ControlError>;
}

/// Why a [`ModuleControl`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The daemon manages no module of that name (404).
    #[error("module {name} does not exist")]
    NotFound {
        /// The module asked for.
        name: ModuleId,
    },
    /// The daemon is shutting down and no longer takes requests (503).
    #[error("spoke-edge is shutting down")]
    ShuttingDown,
    /// The runtime failed; its `NotFound` maps to 404, everything else to 500.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// A module's status as the management API shows it: the runtime's, or `backoff` while the
/// agent waits to restart it (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleStatus {
    /// Its main process is running.
    Running,
    /// Not running: never started, exited with 0, or stopped on purpose.
    Stopped,
    /// Exited with a non-zero code and will not be restarted (or has not been yet).
    Failed,
    /// Exited; the agent restarts it after a cool-off.
    Backoff,
    /// The engine gave up on it (Docker's `dead`).
    Dead,
    /// The daemon does not know.
    Unknown,
}

impl ModuleStatus {
    /// The lowercase name, as in `runtimeStatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Backoff => "backoff",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }
}

impl From<RuntimeStatus> for ModuleStatus {
    fn from(status: RuntimeStatus) -> Self {
        match status {
            RuntimeStatus::Running => Self::Running,
            RuntimeStatus::Stopped => Self::Stopped,
            RuntimeStatus::Failed => Self::Failed,
            RuntimeStatus::Dead => Self::Dead,
            RuntimeStatus::Unknown => Self::Unknown,
        }
    }
}

/// One module as [`ModuleControl::list`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleInfo {
    /// The module's name.
    pub name: ModuleId,
    /// The runtime's id of its current instance (container id), when it exists.
    pub instance: Option<InstanceId>,
    /// Its current status.
    pub status: ModuleStatus,
    /// Detail from the runtime or the agent (an error, why it exited).
    pub description: Option<String>,
    /// Exit code of the last run, when it is not running and has run before.
    pub exit_code: Option<i64>,
    /// When the current or last run started.
    pub start_time: Option<OffsetDateTime>,
    /// When the last run ended.
    pub exit_time: Option<OffsetDateTime>,
    /// What it runs: an image or a command. Its type (`docker`, `process`) follows from it.
    pub settings: ModuleSettings,
    /// The deployment's `version` of the module, when it has one.
    pub version: Option<String>,
}

/// The daemon's state as [`ModuleControl::status`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonStatus {
    /// This edge device.
    pub device_id: DeviceId,
    /// The IoT hub it belongs to.
    pub hub_hostname: String,
    /// Whether the upstream connection to the hub is up.
    pub upstream_connected: bool,
    /// The last deployment the agent processed, if any.
    pub deployment: Option<DeploymentSummary>,
    /// How long the daemon has been running.
    pub uptime: Duration,
}

/// The outcome of the last deployment (`lastDesiredVersion`, `lastDesiredStatus`, spec §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSummary {
    /// The `$version` of the desired properties processed last.
    pub version: u64,
    /// Its status code and description.
    pub status: DeploymentStatus,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_socket_lives_in_the_data_directory() {
        let text = "hostname = \"e\"\ndata_dir = \"/var/lib/x\"\n[provisioning]\nsource = \"manual\"\n\
                    connection_string = \"HostName=h;DeviceId=d;SharedAccessKey=AAAA\"\n";
        let config = EdgeConfig::parse(text, Path::new("c.toml")).expect("config");
        assert_eq!(
            management_socket(&config),
            PathBuf::from("/var/lib/x/mgmt.sock")
        );
    }

    #[test]
    fn runtime_statuses_map_one_to_one() {
        for status in [
            RuntimeStatus::Running,
            RuntimeStatus::Stopped,
            RuntimeStatus::Failed,
            RuntimeStatus::Dead,
            RuntimeStatus::Unknown,
        ] {
            assert_eq!(ModuleStatus::from(status).as_str(), status.as_str());
        }
    }
}
