//! Carries out the agent's [`Action`]s: the module runtimes (Docker and processes), each
//! module's identity in the hub and its workload socket. One owner ([`Modules`]) for all three,
//! driven by the daemon loop.
//!
//! Invariants: a module that exists in a runtime has an identity (hub or cache) and a bound
//! workload socket; removing a module removes all three. `pids` always holds the root PID of
//! every running module, so the workload API can authorize callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::manifest::{ModuleKind, ModuleSpec};

use crate::agent::{Action, ObservedModule};
use crate::identity::{IdentityCache, IdentityClient, IdentityError, ModuleIdentity};
use crate::runtime::{
    Backend, DockerSettings, LogOptions, ModuleConfig, ModuleSettings, ModuleState,
    ProcessSettings, RuntimeError, RuntimeStatus,
};
use crate::workload::{CallerCheck, KeyStore, ModuleSocket, WorkloadApi};

/// How long a module gets to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The workload API version modules are told to use (what aziot-edged gives edgeAgent).
pub const WORKLOAD_API_VERSION: &str = "2022-08-03";

/// Why an action failed (reported to the agent, which reports it upstream).
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The runtime refused or failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The module identity could not be had, from the hub or the cache.
    #[error("no identity for module {module}")]
    Identity {
        /// The module.
        module: String,
        /// The cause.
        #[source]
        source: IdentityError,
    },
    /// No runtime for this module type here (e.g. docker modules with `[runtime] kind = "process"`).
    #[error("no {0} runtime on this device")]
    NoRuntime(&'static str),
    /// The workload socket could not be bound.
    #[error("cannot bind the workload socket of {module}: {message}")]
    Workload {
        /// The module.
        module: String,
        /// What failed.
        message: String,
    },
}

/// The identity cache, shared by [`Modules`] (writes) and the workload API (key reads).
pub type SharedCache = Arc<Mutex<IdentityCache>>;

/// Root PIDs of running modules, shared with the workload API.
#[derive(Debug, Default)]
pub struct ModulePids {
    roots: Mutex<HashMap<ModuleId, u32>>,
    recorded: tokio::sync::Notify,
}

impl ModulePids {
    fn set(&self, module: &ModuleId, pid: Option<u32>) {
        let mut map = self.roots.lock().unwrap_or_else(PoisonError::into_inner);
        match pid {
            Some(pid) => {
                if map.insert(module.clone(), pid) != Some(pid) {
                    self.recorded.notify_waiters();
                }
            }
            None => {
                map.remove(module);
            }
        }
    }

    fn root(&self, module: &ModuleId) -> Option<u32> {
        self.roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(module)
            .copied()
    }
}

/// The parent PID of `pid`, from `/proc/{pid}/stat` (the field after the parenthesized name).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

impl CallerCheck for ModulePids {
    /// A caller belongs to a module when the module's root process is the caller or one of its
    /// ancestors (containers and process groups fork; the root stays).
    fn is_module_process(&self, module: &ModuleId, pid: u32) -> bool {
        let Some(root) = self.root(module) else {
            return false;
        };
        let mut current = pid;
        for _ in 0..64 {
            if current == root {
                return true;
            }
            match parent_pid(current) {
                Some(parent) if parent > 1 => current = parent,
                _ => return false,
            }
        }
        false
    }

    fn changes(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.recorded)
    }
}

/// Module keys for the workload API, from the identity cache.
#[derive(Debug)]
pub struct CachedKeys(pub SharedCache);

impl KeyStore for CachedKeys {
    fn module_key(&self, module: &ModuleId) -> Option<Vec<u8>> {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = &cache.get(module)?.primary_key;
        base64::engine::general_purpose::STANDARD.decode(key).ok()
    }
}

/// What every module's environment names (spec §2.2).
#[derive(Debug, Clone)]
pub struct ModuleEnvironment {
    /// `IOTEDGE_IOTHUBHOSTNAME`.
    pub hub_hostname: String,
    /// `IOTEDGE_DEVICEID`.
    pub device_id: DeviceId,
    /// `IOTEDGE_GATEWAYHOSTNAME`: where modules connect.
    pub gateway_hostname: String,
}

/// The module runtimes (processes always, Docker when configured) and the PID table; cheap to
/// clone, shared by [`Modules`] and the management API.
#[derive(Clone)]
pub struct Runtimes {
    process: Backend,
    docker: Option<Backend>,
    pids: Arc<ModulePids>,
}

impl Runtimes {
    /// The process runtime, an optional Docker runtime, and the PID table they keep current.
    pub fn new(process: Backend, docker: Option<Backend>, pids: Arc<ModulePids>) -> Self {
        Self {
            process,
            docker,
            pids,
        }
    }

    /// `docker` when a container engine is configured, else `process`.
    pub fn kind(&self) -> &'static str {
        if self.docker.is_some() {
            "docker"
        } else {
            "process"
        }
    }

    fn backends(&self) -> impl Iterator<Item = &Backend> {
        std::iter::once(&self.process).chain(self.docker.as_ref())
    }

    fn backend_for(&self, kind: &ModuleKind) -> Result<&Backend, ModuleError> {
        match kind {
            ModuleKind::Process { .. } => Ok(&self.process),
            ModuleKind::Docker { .. } => {
                self.docker.as_ref().ok_or(ModuleError::NoRuntime("docker"))
            }
        }
    }

    /// The backend that has `module` now.
    pub async fn backend_of(&self, module: &ModuleId) -> Result<&Backend, RuntimeError> {
        for backend in self.backends() {
            if backend.lifecycle.state(module).await.is_ok() {
                return Ok(backend);
            }
        }
        Err(RuntimeError::NotFound {
            name: module.clone(),
        })
    }

    /// Every module the runtimes have; refreshes the PID table.
    pub async fn states(&self) -> Vec<ModuleState> {
        let mut all = Vec::new();
        for backend in self.backends() {
            match backend.lifecycle.list().await {
                Ok(states) => {
                    for state in &states {
                        let pid = (state.status == RuntimeStatus::Running)
                            .then_some(state.pid)
                            .flatten();
                        self.pids.set(&state.name, pid);
                    }
                    all.extend(states);
                }
                Err(e) => {
                    tracing::warn!(runtime = backend.lifecycle.kind(), error = %e, "cannot list modules");
                }
            }
        }
        all
    }

    /// Stops and starts a module.
    pub async fn restart(&self, name: &ModuleId) -> Result<(), RuntimeError> {
        let backend = self.backend_of(name).await?;
        backend.lifecycle.stop(name, STOP_TIMEOUT).await?;
        backend.lifecycle.start(name).await?;
        self.pids
            .set(name, backend.lifecycle.state(name).await?.pid);
        Ok(())
    }

    /// A module's output as `options` select.
    pub async fn logs(
        &self,
        name: &ModuleId,
        options: &LogOptions,
    ) -> Result<crate::runtime::LogStream, RuntimeError> {
        self.backend_of(name).await?.logs.logs(name, options).await
    }
}

/// The runtime settings of a manifest module.
pub fn settings(kind: &ModuleKind) -> ModuleSettings {
    match kind {
        ModuleKind::Docker {
            image,
            create_options,
            ..
        } => ModuleSettings::Docker(DockerSettings {
            image: image.clone(),
            create_options: create_options.clone(),
        }),
        ModuleKind::Process {
            command,
            working_dir,
        } => ModuleSettings::Process(ProcessSettings {
            command: command.clone(),
            working_dir: working_dir.as_ref().map(Into::into),
        }),
    }
}

/// The runtimes, identities and workload sockets of the device's modules.
pub struct Modules {
    runtimes: Runtimes,
    identities: IdentityClient,
    cache: SharedCache,
    workload: WorkloadApi,
    sockets: HashMap<ModuleId, ModuleSocket>,
    env: ModuleEnvironment,
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modules")
            .field("runtime", &self.runtimes.kind())
            .finish_non_exhaustive()
    }
}

impl Modules {
    /// Everything needed to run modules.
    pub fn new(
        runtimes: Runtimes,
        identities: IdentityClient,
        cache: SharedCache,
        workload: WorkloadApi,
        env: ModuleEnvironment,
    ) -> Self {
        Self {
            runtimes,
            identities,
            cache,
            workload,
            sockets: HashMap::new(),
            env,
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, IdentityCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every module the runtimes have, as the agent observes them; refreshes the PID table.
    pub async fn observe(&self) -> Vec<ObservedModule> {
        self.runtimes
            .states()
            .await
            .iter()
            .map(ObservedModule::from)
            .collect()
    }

    /// The shared runtimes.
    pub fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    /// Subscribes to start/exit events of every runtime.
    pub fn events(&self) -> Vec<tokio::sync::broadcast::Receiver<crate::runtime::RuntimeEvent>> {
        self.runtimes
            .backends()
            .map(|b| b.events.subscribe())
            .collect()
    }

    /// Carries out one action.
    pub async fn apply(&mut self, action: &Action) -> Result<(), ModuleError> {
        tracing::info!(%action, "module action");
        match action {
            Action::Create(spec) => self.create(spec).await,
            Action::Update(spec) => {
                self.remove_from_runtime(&spec.name).await?;
                self.create(spec).await
            }
            Action::Start(name) => {
                self.ensure_socket(name)?;
                let backend = self.runtimes.backend_of(name).await?;
                backend.lifecycle.start(name).await?;
                let state = backend.lifecycle.state(name).await?;
                self.runtimes.pids.set(name, state.pid);
                Ok(())
            }
            Action::Stop(name) => {
                if let Ok(backend) = self.runtimes.backend_of(name).await {
                    backend.lifecycle.stop(name, STOP_TIMEOUT).await?;
                }
                self.runtimes.pids.set(name, None);
                Ok(())
            }
            Action::Remove(name) => {
                self.remove_from_runtime(name).await?;
                self.sockets.remove(name);
                if let Err(e) = self.identities.delete(name).await {
                    tracing::warn!(module = %name, error = %e, "module identity not deleted in the hub");
                }
                let _ = self.lock_cache().remove(name);
                Ok(())
            }
        }
    }

    async fn remove_from_runtime(&mut self, name: &ModuleId) -> Result<(), ModuleError> {
        if let Ok(backend) = self.runtimes.backend_of(name).await {
            backend.lifecycle.stop(name, STOP_TIMEOUT).await?;
            backend.lifecycle.remove(name).await?;
        }
        self.runtimes.pids.set(name, None);
        Ok(())
    }

    /// The module's identity: from the hub (creating it), else from the cache (offline).
    pub async fn identity(&self, module: &ModuleId) -> Result<ModuleIdentity, ModuleError> {
        match self.identities.get_or_create(module).await {
            Ok(identity) => {
                if let Err(e) = self.lock_cache().put(identity.clone()) {
                    tracing::warn!(module = %module, error = %e, "identity cache not written");
                }
                Ok(identity)
            }
            Err(e @ IdentityError::Unreachable(_)) => {
                let cached = self.lock_cache().get(module).cloned();
                cached.ok_or_else(|| ModuleError::Identity {
                    module: module.to_string(),
                    source: e,
                })
            }
            Err(source) => Err(ModuleError::Identity {
                module: module.to_string(),
                source,
            }),
        }
    }

    /// Binds the workload sockets of the modules the runtimes already have (after a restart
    /// of spoke-edge: running containers, and process modules about to be started again).
    pub async fn restore_sockets(&mut self) {
        for module in self.observe().await {
            if let Err(e) = self.ensure_socket(&module.name) {
                tracing::warn!(module = %module.name, error = %e, "workload socket not restored");
            }
        }
    }

    /// The module's workload socket, bound if it is not yet.
    fn ensure_socket(&mut self, name: &ModuleId) -> Result<std::path::PathBuf, ModuleError> {
        if let Some(socket) = self.sockets.get(name) {
            return Ok(socket.path().to_owned());
        }
        let socket = self
            .workload
            .bind(name.clone())
            .map_err(|e| ModuleError::Workload {
                module: name.to_string(),
                message: e.to_string(),
            })?;
        let path = socket.path().to_owned();
        self.sockets.insert(name.clone(), socket);
        Ok(path)
    }

    async fn create(&mut self, spec: &ModuleSpec) -> Result<(), ModuleError> {
        let identity = self.identity(&spec.name).await?;
        self.sockets.remove(&spec.name);
        let workload_socket = self.ensure_socket(&spec.name)?;
        let settings = settings(&spec.kind);
        let config = ModuleConfig {
            name: spec.name.clone(),
            settings,
            env: self.environment(spec, &identity),
            workload_socket,
            labels: std::collections::BTreeMap::new(),
            network: None,
            network_aliases: Vec::new(),
        };
        self.runtimes
            .backend_for(&spec.kind)?
            .lifecycle
            .create(&config)
            .await?;
        Ok(())
    }

    /// The module's environment: the manifest's `env`, then what edgeAgent injects (spec
    /// §2.2); the runtime adds `IOTEDGE_WORKLOADURI`.
    fn environment(&self, spec: &ModuleSpec, identity: &ModuleIdentity) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend([
            (
                "IOTEDGE_IOTHUBHOSTNAME".into(),
                self.env.hub_hostname.clone(),
            ),
            ("IOTEDGE_DEVICEID".into(), self.env.device_id.to_string()),
            ("IOTEDGE_MODULEID".into(), spec.name.to_string()),
            (
                "IOTEDGE_MODULEGENERATIONID".into(),
                identity.generation_id.clone(),
            ),
            (
                "IOTEDGE_GATEWAYHOSTNAME".into(),
                self.env.gateway_hostname.clone(),
            ),
            ("IOTEDGE_APIVERSION".into(), WORKLOAD_API_VERSION.into()),
            ("IOTEDGE_AUTHSCHEME".into(), "sasToken".into()),
        ]);
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_belongs_to_the_module_whose_root_is_its_ancestor() {
        let pids = ModulePids::default();
        let me = std::process::id();
        let module = ModuleId::parse("m").unwrap();
        assert!(!pids.is_module_process(&module, me));
        pids.set(&module, Some(me));
        assert!(pids.is_module_process(&module, me));
        let parent = parent_pid(me).unwrap();
        pids.set(&module, Some(parent));
        assert!(
            pids.is_module_process(&module, me),
            "a child of the root belongs to it"
        );
        pids.set(&module, Some(u32::MAX - 1));
        assert!(!pids.is_module_process(&module, me));
    }
}
