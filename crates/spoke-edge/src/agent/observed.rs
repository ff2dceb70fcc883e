//! What the agent knows about a module that exists in the runtime: the input side of the
//! reconciler. The driver builds these from [`crate::runtime::ModuleRuntime::list`] (see the
//! `From` conversion) and, where the engine has health checks, adds the health status.

use spoke_core::ids::ModuleId;
use time::OffsetDateTime;

use crate::runtime::{ModuleState, RuntimeStatus};

/// A container's health-check status (Docker's `State.Health.Status`), when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// The health check has not passed yet.
    Starting,
    /// The health check passes.
    Healthy,
    /// The health check fails; restart policies `on-unhealthy` and `always` restart the
    /// module (spec §5.3).
    Unhealthy,
}

/// One module as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedModule {
    /// The module's name.
    pub name: ModuleId,
    /// Running, stopped (exit 0 or never started), failed (non-zero exit), dead or unknown.
    pub status: RuntimeStatus,
    /// Exit code of the last run, when it has run and is not running.
    pub exit_code: Option<i64>,
    /// When the current or last run started; `None` if it never ran.
    pub started_at: Option<OffsetDateTime>,
    /// When the last run ended; `None` if it never ended.
    pub finished_at: Option<OffsetDateTime>,
    /// Health-check status, when the engine has one for this module.
    pub health: Option<Health>,
    /// Extra detail from the engine, reported as `statusDescription`.
    pub description: Option<String>,
}

impl ObservedModule {
    /// A module in `status` with no times, exit code, health or description; tests and
    /// drivers fill in the rest with struct update syntax.
    pub fn new(name: ModuleId, status: RuntimeStatus) -> Self {
        Self {
            name,
            status,
            exit_code: None,
            started_at: None,
            finished_at: None,
            health: None,
            description: None,
        }
    }

    /// Created and never started: stopped, with neither a start nor an exit time.
    pub fn never_started(&self) -> bool {
        self.status == RuntimeStatus::Stopped
            && self.started_at.is_none()
            && self.finished_at.is_none()
    }

    /// Running with a failing health check.
    pub fn unhealthy(&self) -> bool {
        self.status == RuntimeStatus::Running && self.health == Some(Health::Unhealthy)
    }
}

impl From<&ModuleState> for ObservedModule {
    fn from(state: &ModuleState) -> Self {
        Self {
            name: state.name.clone(),
            status: state.status,
            exit_code: state.exit_code,
            started_at: state.started_at,
            finished_at: state.finished_at,
            health: None,
            description: state.description.clone(),
        }
    }
}
