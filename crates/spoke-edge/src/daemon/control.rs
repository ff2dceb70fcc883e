//! The daemon's side of the management API ([`ModuleControl`]): module listings, logs and
//! restarts straight from the runtimes, and the agent's view (module specs, the last
//! deployment, the upstream connection) from a snapshot the daemon loop refreshes each turn.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::manifest::ModuleSpec;

use super::modules::{Runtimes, settings};
use crate::management::{
    ControlError, DaemonStatus, DeploymentSummary, ModuleControl, ModuleInfo, ModuleStatus,
};
use crate::runtime::{LogOptions, LogStream};

/// What the daemon loop knows that the runtimes do not.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The modules of the last good deployment.
    pub specs: BTreeMap<ModuleId, ModuleSpec>,
    /// The last deployment processed.
    pub deployment: Option<DeploymentSummary>,
    /// Whether the upstream connection is up.
    pub upstream_connected: bool,
}

/// [`ModuleControl`] over the daemon's runtimes and snapshot.
pub struct Control {
    runtimes: Runtimes,
    snapshot: Arc<Mutex<Snapshot>>,
    device_id: DeviceId,
    hub_hostname: String,
    started: Instant,
}

impl Control {
    /// Control over `runtimes`; the daemon loop writes `snapshot`.
    pub fn new(
        runtimes: Runtimes,
        snapshot: Arc<Mutex<Snapshot>>,
        device_id: DeviceId,
        hub_hostname: String,
    ) -> Self {
        Self {
            runtimes,
            snapshot,
            device_id,
            hub_hostname,
            started: Instant::now(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn known(&self, name: &ModuleId) -> Result<(), ControlError> {
        if self.snapshot().specs.contains_key(name) {
            Ok(())
        } else {
            Err(ControlError::NotFound { name: name.clone() })
        }
    }
}

#[async_trait]
impl ModuleControl for Control {
    async fn list(&self) -> Result<Vec<ModuleInfo>, ControlError> {
        let specs = self.snapshot().specs;
        let states = self.runtimes.states().await;
        Ok(specs
            .iter()
            .map(|(name, spec)| {
                let state = states.iter().find(|s| &s.name == name);
                ModuleInfo {
                    name: name.clone(),
                    instance: state.map(|s| s.id.clone()),
                    status: state.map_or(ModuleStatus::Unknown, |s| s.status.into()),
                    description: state.and_then(|s| s.description.clone()),
                    exit_code: state.and_then(|s| s.exit_code),
                    start_time: state.and_then(|s| s.started_at),
                    exit_time: state.and_then(|s| s.finished_at),
                    settings: settings(&spec.kind),
                    version: Some(spec.version.clone()).filter(|v| !v.is_empty()),
                }
            })
            .collect())
    }

    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, ControlError> {
        self.known(name)?;
        Ok(self.runtimes.logs(name, options).await?)
    }

    async fn restart(&self, name: &ModuleId) -> Result<(), ControlError> {
        self.known(name)?;
        Ok(self.runtimes.restart(name).await?)
    }

    async fn status(&self) -> Result<DaemonStatus, ControlError> {
        let snapshot = self.snapshot();
        Ok(DaemonStatus {
            device_id: self.device_id.clone(),
            hub_hostname: self.hub_hostname.clone(),
            upstream_connected: snapshot.upstream_connected,
            deployment: snapshot.deployment,
            uptime: self.started.elapsed(),
        })
    }
}
