//! JSON bodies of the management API. The server builds them from [`ModuleInfo`] and
//! [`DaemonStatus`]; `spoke edge` reads them back with the same types.
//!
//! `GET /modules` is `{"modules": [ModuleDetails]}` with Azure's `ModuleDetails` shape
//! (azure-iot-edge-contracts.md §1.3): `id`, `name`, `type`, `config.settings`, and
//! `status.{startTime, exitStatus.{exitTime, statusCode}, runtimeStatus.{status, description}}`;
//! Spoke adds `version`. Times are RFC 3339 strings; `statusCode` is a string, as in Azure.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{DaemonStatus, ModuleInfo, ModuleStatus};
use crate::runtime::ModuleSettings;

/// `GET /modules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleList {
    /// The modules, sorted by name.
    pub modules: Vec<ModuleDetails>,
}

/// One module (Azure's `ModuleDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleDetails {
    /// The runtime's instance id (container id); empty when there is no instance.
    pub id: String,
    /// The module's name.
    pub name: String,
    /// `docker` or `process`.
    #[serde(rename = "type")]
    pub module_type: String,
    /// The deployment's version of the module (Spoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What it runs.
    pub config: ModuleDetailsConfig,
    /// How it is doing.
    pub status: ModuleDetailsStatus,
}

/// `config` of [`ModuleDetails`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleDetailsConfig {
    /// Docker: `{"image", "createOptions"}`; process: `{"command", "workingDir"}`.
    pub settings: Value,
}

/// `status` of [`ModuleDetails`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleDetailsStatus {
    /// When the current or last run started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// How the last run ended, when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<ExitStatus>,
    /// The status and its description.
    pub runtime_status: RuntimeStatusDetails,
}

/// `status.exitStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitStatus {
    /// When it ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_time: Option<String>,
    /// The exit code, as a decimal string.
    pub status_code: String,
}

/// `status.runtimeStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeStatusDetails {
    /// `running`, `stopped`, `failed`, `backoff`, `dead` or `unknown`.
    pub status: ModuleStatus,
    /// Detail, when there is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /status` (Spoke).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// The edge device.
    pub device_id: String,
    /// Its IoT hub.
    pub hub_host_name: String,
    /// Whether the upstream connection is up.
    pub upstream_connected: bool,
    /// The last deployment processed (`lastDesiredVersion` and `lastDesiredStatus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentDetails>,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The daemon's version.
    pub version: String,
    /// Modules by status.
    pub modules: ModuleCounts,
}

/// `deployment` of [`StatusResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentDetails {
    /// `lastDesiredVersion`.
    pub version: u64,
    /// `lastDesiredStatus.code` (200, 400, 406, 412, 417, 500).
    pub code: u16,
    /// `lastDesiredStatus.description`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// How many modules are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleCounts {
    /// All modules.
    pub total: usize,
    /// Running.
    pub running: usize,
    /// Stopped.
    pub stopped: usize,
    /// Failed.
    pub failed: usize,
    /// Waiting to be restarted.
    pub backoff: usize,
    /// Dead or unknown.
    pub other: usize,
}

impl ModuleCounts {
    /// Counts `modules` by status.
    pub fn of(modules: &[ModuleInfo]) -> Self {
        let mut counts = Self {
            total: modules.len(),
            ..Self::default()
        };
        for module in modules {
            let slot = match module.status {
                ModuleStatus::Running => &mut counts.running,
                ModuleStatus::Stopped => &mut counts.stopped,
                ModuleStatus::Failed => &mut counts.failed,
                ModuleStatus::Backoff => &mut counts.backoff,
                ModuleStatus::Dead | ModuleStatus::Unknown => &mut counts.other,
            };
            *slot += 1;
        }
        counts
    }
}

/// The error body: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub message: String,
}

/// An RFC 3339 time (UTC offsets as the value has them).
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

impl From<&ModuleInfo> for ModuleDetails {
    fn from(module: &ModuleInfo) -> Self {
        let settings = match &module.settings {
            ModuleSettings::Docker(docker) => {
                json!({"image": docker.image, "createOptions": docker.create_options})
            }
            ModuleSettings::Process(process) => json!({
                "command": process.command,
                "workingDir": process.working_dir.as_ref().map(|dir| dir.display().to_string()),
            }),
        };
        let exit_status = module.exit_code.map(|code| ExitStatus {
            exit_time: module.exit_time.map(rfc3339),
            status_code: code.to_string(),
        });
        Self {
            id: module
                .instance
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            name: module.name.as_str().to_owned(),
            module_type: module.settings.kind().to_owned(),
            version: module.version.clone(),
            config: ModuleDetailsConfig { settings },
            status: ModuleDetailsStatus {
                start_time: module.start_time.map(rfc3339),
                exit_status,
                runtime_status: RuntimeStatusDetails {
                    status: module.status,
                    description: module.description.clone(),
                },
            },
        }
    }
}

impl ModuleDetails {
    /// A one-line summary of what the module runs: the image, or the command line.
    pub fn config_summary(&self) -> String {
        let settings = &self.config.settings;
        if let Some(image) = settings.get("image").and_then(Value::as_str) {
            return image.to_owned();
        }
        settings
            .get("command")
            .and_then(Value::as_array)
            .map(|words| {
                words
                    .iter()
                    .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

impl StatusResponse {
    /// The reply for `status`, with `modules` counted from `list`.
    pub fn new(status: &DaemonStatus, modules: &[ModuleInfo]) -> Self {
        Self {
            device_id: status.device_id.as_str().to_owned(),
            hub_host_name: status.hub_hostname.clone(),
            upstream_connected: status.upstream_connected,
            deployment: status.deployment.as_ref().map(|d| DeploymentDetails {
                version: d.version,
                code: d.status.code.as_u16(),
                description: d.status.description.clone(),
            }),
            uptime_secs: status.uptime.as_secs(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            modules: ModuleCounts::of(modules),
        }
    }
}

#[cfg(test)]
mod tests {
    use spoke_core::ids::ModuleId;
    use time::macros::datetime;

    use super::*;
    use crate::runtime::{DockerSettings, InstanceId, ProcessSettings};

    fn docker_module() -> ModuleInfo {
        ModuleInfo {
            name: ModuleId::parse("tempSensor").expect("id"),
            instance: Some(InstanceId::new("c0ffee")),
            status: ModuleStatus::Failed,
            description: Some("OOM killed".into()),
            exit_code: Some(137),
            start_time: Some(datetime!(2026-05-01 10:00:00 UTC)),
            exit_time: Some(datetime!(2026-05-01 11:00:00 UTC)),
            settings: ModuleSettings::Docker(DockerSettings {
                image: "registry/temp:1.0".into(),
                create_options: json!({"HostConfig": {}}),
            }),
            version: Some("1.0".into()),
        }
    }

    #[test]
    fn module_details_have_azures_shape() {
        let details = ModuleDetails::from(&docker_module());
        assert_eq!(
            serde_json::to_value(&details).expect("json"),
            json!({
                "id": "c0ffee",
                "name": "tempSensor",
                "type": "docker",
                "version": "1.0",
                "config": {"settings": {"image": "registry/temp:1.0", "createOptions": {"HostConfig": {}}}},
                "status": {
                    "startTime": "2026-05-01T10:00:00Z",
                    "exitStatus": {"exitTime": "2026-05-01T11:00:00Z", "statusCode": "137"},
                    "runtimeStatus": {"status": "failed", "description": "OOM killed"}
                }
            })
        );
        assert_eq!(details.config_summary(), "registry/temp:1.0");
        let text = serde_json::to_string(&details).expect("json");
        assert_eq!(
            serde_json::from_str::<ModuleDetails>(&text).expect("back"),
            details
        );
    }

    #[test]
    fn process_modules_summarize_their_command() {
        let module = ModuleInfo {
            settings: ModuleSettings::Process(ProcessSettings {
                command: vec!["/usr/bin/filter".into(), "--fast".into()],
                working_dir: None,
            }),
            instance: None,
            exit_code: None,
            status: ModuleStatus::Running,
            ..docker_module()
        };
        let details = ModuleDetails::from(&module);
        assert_eq!(details.module_type, "process");
        assert_eq!(details.id, "");
        assert_eq!(details.status.exit_status, None);
        assert_eq!(details.config_summary(), "/usr/bin/filter --fast");
    }

    #[test]
    fn counts_by_status() {
        let mut modules = vec![docker_module(); 3];
        modules[0].status = ModuleStatus::Running;
        modules[1].status = ModuleStatus::Backoff;
        let counts = ModuleCounts::of(&modules);
        assert_eq!(
            (counts.total, counts.running, counts.backoff, counts.failed),
            (3, 1, 1, 1)
        );
    }
}
