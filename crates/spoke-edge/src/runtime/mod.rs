//! Module runtimes: how spoke-edge creates, starts, stops, removes and watches modules, as
//! Docker containers ([`docker::DockerRuntime`]) or host processes
//! ([`process::ProcessRuntime`]).
//!
//! A runtime is a set of narrow, object-safe traits, one per capability (STYLE.md §4):
//! [`ModuleRuntime`] (lifecycle and state), [`ModuleLogs`], [`ModuleProcesses`] (the PIDs the
//! workload API authorizes, spec §1.2), [`ModuleEvents`] (exit notifications) and, for Docker
//! only, [`ImageStore`]. [`Backend`] bundles one runtime's trait objects for the agent. One
//! contract test suite (`tests/runtime_contract.rs`) runs against both backends.
//!
//! Division of labour: the agent decides (desired state, restart policy and backoff, spec
//! §5.3) and builds each module's [`ModuleConfig`] (including the `IOTEDGE_*` env, spec §2.2);
//! a runtime only carries out lifecycle calls and reports what happened. Runtimes never
//! restart a module by themselves.
//!
//! Invariants shared by the backends:
//! - Module names are [`ModuleId`]s; one module has at most one instance and one run.
//! - The runtime owns `IOTEDGE_WORKLOADURI`: Docker modules get
//!   `unix:///var/run/iotedge/workload.sock` with the module's socket bind-mounted there;
//!   process modules get `unix://<host path of their socket>`.
//! - Status follows Azure (spec §5.1, §5.3): running; `stopped` when created and never run or
//!   exited with 0; `failed` for any other exit code, 128 + N for death by signal N (so a stop
//!   that had to kill reports 137); `dead`/`unknown` only from the engine.
//! - `start` of a running module and `stop` of a stopped one succeed and do nothing; every
//!   operation on a module the runtime does not have is [`RuntimeError::NotFound`].
//! - Exit notification: [`ModuleEvents::subscribe`] gives a bounded broadcast receiver of
//!   [`RuntimeEvent`]s (`Started`, `Exited { exit_code }`). State is updated before the event
//!   is sent, so `state` after an event shows it. Events are hints: a subscriber that lags
//!   gets `Lagged` and should call [`ModuleRuntime::list`], the source of truth (the agent also
//!   re-lists on its reconcile period). We chose a broadcast channel over an mpsc so the
//!   agent, the management API and tests can each subscribe, and so a slow subscriber never
//!   blocks a runtime.

pub mod docker;
mod error;
pub mod fuzzing;
pub mod process;
mod procfs;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use spoke_core::ids::ModuleId;
use tokio::sync::broadcast;

pub use self::error::{EngineSource, RuntimeError};
pub use self::types::{
    CONTAINER_WORKLOAD_SOCKET, DockerSettings, InstanceId, LogEntry, LogOptions, LogSource,
    ModuleConfig, ModuleSettings, ModuleState, ProcessSettings, RegistryCredentials, RuntimeEvent,
    RuntimeEventKind, RuntimeStatus, WORKLOAD_URI_ENV,
};

/// A stream of log entries; it ends after the history, or when a followed module exits.
pub type LogStream = BoxStream<'static, Result<LogEntry, RuntimeError>>;

/// Lifecycle and state of modules.
#[async_trait]
pub trait ModuleRuntime: Send + Sync {
    /// The module type this runtime runs (`docker` or `process`), as reported in
    /// `runtime.type`.
    fn kind(&self) -> &'static str;

    /// Creates module `config.name`, stopped. Fails with `AlreadyExists` if it exists,
    /// `ImageNotFound` (Docker) or `CommandNotFound` (process) when there is nothing to run,
    /// and `InvalidConfig` for settings of another module type.
    async fn create(&self, config: &ModuleConfig) -> Result<InstanceId, RuntimeError>;

    /// Starts the module's main process.
    async fn start(&self, name: &ModuleId) -> Result<(), RuntimeError>;

    /// Sends SIGTERM, waits up to `timeout` for the module to exit, then kills it. Returns
    /// once it has exited.
    async fn stop(&self, name: &ModuleId, timeout: Duration) -> Result<(), RuntimeError>;

    /// Kills the module if running and deletes it with its state and logs.
    async fn remove(&self, name: &ModuleId) -> Result<(), RuntimeError>;

    /// The state of one module.
    async fn state(&self, name: &ModuleId) -> Result<ModuleState, RuntimeError>;

    /// The state of every module of this runtime, sorted by name.
    async fn list(&self) -> Result<Vec<ModuleState>, RuntimeError>;
}

/// Module output.
#[async_trait]
pub trait ModuleLogs: Send + Sync {
    /// The module's captured output as `options` select. Fails with `NotFound` up front.
    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, RuntimeError>;
}

/// Which host processes are a module's.
#[async_trait]
pub trait ModuleProcesses: Send + Sync {
    /// Host PIDs of the module's processes (empty when not running), sorted. The workload API
    /// accepts a caller whose peer PID is in this list.
    async fn pids(&self, name: &ModuleId) -> Result<Vec<u32>, RuntimeError>;
}

/// Notification of starts and exits (see the module doc for the delivery contract).
pub trait ModuleEvents: Send + Sync {
    /// A new receiver of the events from now on.
    fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent>;
}

/// Container images (Docker only).
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Pulls `image` (`:latest` when it names no tag) with optional registry credentials.
    async fn pull(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
    ) -> Result<(), RuntimeError>;

    /// Whether `image` is present locally.
    async fn exists(&self, image: &str) -> Result<bool, RuntimeError>;
}

/// One runtime's capabilities as trait objects, for the agent and the management API.
#[derive(Clone)]
pub struct Backend {
    /// Lifecycle and state.
    pub lifecycle: Arc<dyn ModuleRuntime>,
    /// Output.
    pub logs: Arc<dyn ModuleLogs>,
    /// PIDs, for the workload API.
    pub processes: Arc<dyn ModuleProcesses>,
    /// Start and exit notifications.
    pub events: Arc<dyn ModuleEvents>,
    /// Images, when the runtime has them.
    pub images: Option<Arc<dyn ImageStore>>,
}

impl Backend {
    /// The Docker runtime's capabilities.
    pub fn docker(runtime: docker::DockerRuntime) -> Self {
        let runtime = Arc::new(runtime);
        Self {
            images: Some(runtime.clone()),
            ..Self::common(runtime)
        }
    }

    /// The process runtime's capabilities.
    pub fn process(runtime: process::ProcessRuntime) -> Self {
        Self::common(Arc::new(runtime))
    }

    fn common<R>(runtime: Arc<R>) -> Self
    where
        R: ModuleRuntime + ModuleLogs + ModuleProcesses + ModuleEvents + 'static,
    {
        Self {
            lifecycle: runtime.clone(),
            logs: runtime.clone(),
            processes: runtime.clone(),
            events: runtime,
            images: None,
        }
    }
}
