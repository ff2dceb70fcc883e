//! The process runtime: modules as plain host processes, for devices without a container
//! engine (`"type": "process"`, ARCHITECTURE.md).
//!
//! Each module gets a directory under the data directory (see `store`) with its
//! configuration, its last run, its logs (see `logfile`) and a default working directory.
//! A run is a child process leading its own process group, with a clean environment (see
//! `launch`); a task per run captures its output and records its exit.
//!
//! Invariants:
//! - At most one run per module; `start` of a running module and `stop` of a stopped one do
//!   nothing.
//! - A module's state is updated before its exit is announced (the exit watch, then the
//!   [`RuntimeEvent`]), so after an event or a returned `stop`, `state` already shows the exit.
//! - Runs do not outlive the runtime's knowledge of them: `open` kills any run a previous
//!   spoke-edge left behind (verified by PID and start time) and records it as killed, since
//!   its output pipes died with that spoke-edge. Callers serialize operations on one module
//!   (the agent does).

mod launch;
mod logfile;
mod store;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream;
use rustix::process::Signal;
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

pub use self::logfile::LogRotation;
use self::logfile::LogSink;
pub(crate) use self::logfile::{
    format_record as format_log_record, parse_record as parse_log_record,
};
use self::store::{RunRecord, StoredModule};
use super::error::RuntimeError;
use super::types::{
    InstanceId, LogOptions, ModuleConfig, ModuleSettings, ModuleState, ProcessSettings,
    RuntimeEvent, RuntimeEventKind, RuntimeStatus,
};
use super::{LogStream, ModuleEvents, ModuleLogs, ModuleProcesses, ModuleRuntime};

/// How long `stop` and `remove` wait for a run to end after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Capacity of the event channel; slower subscribers see `Lagged` and should re-list.
const EVENT_CAPACITY: usize = 256;

/// Runs modules as host processes. Cheap to share behind an `Arc`.
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    rotation: LogRotation,
    modules: Mutex<HashMap<ModuleId, Entry>>,
    events: broadcast::Sender<RuntimeEvent>,
}

struct Entry {
    id: InstanceId,
    config: ModuleConfig,
    dir: PathBuf,
    run: RunRecord,
    live: Option<Live>,
    sink: Arc<LogSink>,
}

/// A run in progress.
#[derive(Clone)]
struct Live {
    pid: u32,
    /// Becomes `true` once the run's end is recorded.
    exited: watch::Receiver<bool>,
}

impl ProcessRuntime {
    /// Opens (creating if needed) the runtime's state in `data_dir`, loads the modules created
    /// earlier and kills runs a previous spoke-edge left behind. Blocking.
    pub fn open(data_dir: impl Into<PathBuf>, rotation: LogRotation) -> Result<Self, RuntimeError> {
        let root = data_dir.into();
        let modules_dir = root.join("modules");
        fs::create_dir_all(&modules_dir)
            .map_err(|e| RuntimeError::io("creating", &modules_dir, e))?;
        let mut modules = HashMap::new();
        for (stored, mut run, dir) in store::load_all(&root)? {
            if run.finished_at.is_none() && run.pid.is_some() {
                reap_orphan(&stored.config.name, &mut run);
                store::write_json(&dir.join("run.json"), &run)?;
            }
            let sink = Arc::new(LogSink::new(dir.join("logs"), rotation));
            let name = stored.config.name.clone();
            let entry = Entry {
                id: stored.id,
                config: stored.config,
                dir,
                run,
                live: None,
                sink,
            };
            modules.insert(name, entry);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                rotation,
                modules: Mutex::new(modules),
                events: broadcast::channel(EVENT_CAPACITY).0,
            }),
        })
    }
}

/// Ends a run recorded as going by a previous spoke-edge.
fn reap_orphan(name: &ModuleId, run: &mut RunRecord) {
    let pid = run.pid.unwrap_or_default();
    let alive =
        super::procfs::read_stat(pid).is_some_and(|s| Some(s.start_ticks) == run.start_ticks);
    run.finished_at = Some(OffsetDateTime::now_utc());
    if alive {
        tracing::warn!(module = %name, pid, "killing a module run left by a previous spoke-edge");
        if let Err(error) = launch::signal_group(pid, Signal::KILL) {
            tracing::warn!(module = %name, %error, "killing the orphaned run failed");
        }
        run.exit_code = Some(128 + 9);
        run.description = Some("killed: left running by a previous spoke-edge".to_owned());
    } else {
        run.exit_code = None;
        run.description = Some("ended while spoke-edge was not running".to_owned());
    }
}

fn process_settings(config: &ModuleConfig) -> Result<&ProcessSettings, RuntimeError> {
    let invalid = |reason: String| RuntimeError::InvalidConfig {
        name: config.name.clone(),
        runtime: "process",
        reason,
    };
    let ModuleSettings::Process(settings) = &config.settings else {
        return Err(invalid(format!(
            "module type is {}, not process",
            config.settings.kind()
        )));
    };
    if settings.command.is_empty() {
        return Err(invalid("settings.command is empty".to_owned()));
    }
    if !config.workload_socket.is_absolute() {
        return Err(invalid(
            "the workload socket path is not absolute".to_owned(),
        ));
    }
    Ok(settings)
}

impl Entry {
    fn working_dir(&self, settings: &ProcessSettings) -> PathBuf {
        settings
            .working_dir
            .clone()
            .unwrap_or_else(|| self.dir.join("work"))
    }

    fn state(&self) -> ModuleState {
        let (status, exit_code) = match (&self.live, self.run.finished_at) {
            (Some(_), _) => (RuntimeStatus::Running, None),
            (None, None) => (RuntimeStatus::Stopped, None),
            (None, Some(_)) => match self.run.exit_code {
                Some(code) => (RuntimeStatus::from_exit_code(code), Some(code)),
                None => (RuntimeStatus::Unknown, None),
            },
        };
        ModuleState {
            name: self.config.name.clone(),
            id: self.id.clone(),
            status,
            exit_code,
            started_at: self.run.started_at,
            finished_at: self.run.finished_at,
            pid: self.live.as_ref().map(|l| l.pid),
            description: self.run.description.clone(),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<ModuleId, Entry>> {
        self.modules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, name: &ModuleId, kind: RuntimeEventKind) {
        // No subscribers is fine: events are notifications, `list` is the truth.
        let _ = self.events.send(RuntimeEvent {
            name: name.clone(),
            kind,
        });
    }

    fn live(&self, name: &ModuleId) -> Result<Option<Live>, RuntimeError> {
        let modules = self.lock();
        let entry = modules.get(name).ok_or_else(|| not_found(name))?;
        Ok(entry.live.clone())
    }

    /// Records the end of run `pid` of instance `id`, unless the module was removed or
    /// re-created meanwhile.
    fn record_exit(&self, name: &ModuleId, id: &InstanceId, pid: u32, exit: launch::Exit) {
        let mut modules = self.lock();
        let Some(entry) = modules.get_mut(name) else {
            return;
        };
        if &entry.id != id || entry.live.as_ref().map(|l| l.pid) != Some(pid) {
            return;
        }
        entry.live = None;
        entry.run.finished_at = Some(OffsetDateTime::now_utc());
        entry.run.exit_code = exit.code;
        entry.run.description = exit.description;
        if let Err(error) = store::write_json(&entry.dir.join("run.json"), &entry.run) {
            tracing::warn!(%error, "recording the exit failed");
        }
    }
}

fn signal_failed(name: &ModuleId, source: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        operation: format!("signalling the processes of module {name}"),
        source,
    }
}

fn not_found(name: &ModuleId) -> RuntimeError {
    RuntimeError::NotFound { name: name.clone() }
}

/// Waits until `live` has exited, up to `timeout`; `true` if it has.
async fn wait_exit(live: &mut Live, timeout: Duration) -> bool {
    // An error means the supervisor is gone, which happens only after the exit is recorded.
    tokio::time::timeout(timeout, live.exited.wait_for(|exited| *exited))
        .await
        .is_ok()
}

/// Kills run `live` of module `name` and waits for its end to be recorded.
async fn kill(name: &ModuleId, mut live: Live) -> Result<(), RuntimeError> {
    launch::signal_group(live.pid, Signal::KILL).map_err(|e| signal_failed(name, e))?;
    if wait_exit(&mut live, KILL_WAIT).await {
        Ok(())
    } else {
        Err(RuntimeError::StopTimedOut { name: name.clone() })
    }
}

/// Creates a new module's directories and files, after checking it can run.
fn prepare(entry: &Entry, settings: &ProcessSettings) -> Result<(), RuntimeError> {
    let config = &entry.config;
    for sub in ["logs", "work"] {
        let path = entry.dir.join(sub);
        fs::create_dir_all(&path).map_err(|e| RuntimeError::io("creating", &path, e))?;
    }
    let cwd = entry.working_dir(settings);
    launch::check_working_dir(config, &cwd)?;
    let path_var = launch::module_env(config, std::env::var_os("PATH")).remove("PATH");
    let program = &settings.command[0];
    if launch::resolve_program(program, &cwd, &path_var.unwrap_or_default()).is_none() {
        return Err(RuntimeError::CommandNotFound {
            name: config.name.clone(),
            program: program.clone(),
        });
    }
    let stored = StoredModule {
        id: entry.id.clone(),
        config: config.clone(),
    };
    store::write_json(&entry.dir.join("module.json"), &stored)?;
    store::write_json(&entry.dir.join("run.json"), &entry.run)
}

#[async_trait]
impl ModuleRuntime for ProcessRuntime {
    fn kind(&self) -> &'static str {
        "process"
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %config.name, runtime = "process"))]
    async fn create(&self, config: &ModuleConfig) -> Result<InstanceId, RuntimeError> {
        let settings = process_settings(config)?;
        let mut modules = self.inner.lock();
        if modules.contains_key(&config.name) {
            return Err(RuntimeError::AlreadyExists {
                name: config.name.clone(),
            });
        }
        let dir = store::module_dir(&self.inner.root, config.name.as_str());
        let entry = Entry {
            id: InstanceId::new(uuid::Uuid::new_v4().to_string()),
            config: config.clone(),
            sink: Arc::new(LogSink::new(dir.join("logs"), self.inner.rotation)),
            dir,
            run: RunRecord::default(),
            live: None,
        };
        if let Err(error) = prepare(&entry, settings) {
            // Leave nothing behind for a module that was not created.
            let _ = fs::remove_dir_all(&entry.dir);
            return Err(error);
        }
        let id = entry.id.clone();
        modules.insert(config.name.clone(), entry);
        tracing::info!(id = %id, "created");
        Ok(id)
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %name, runtime = "process"))]
    async fn start(&self, name: &ModuleId) -> Result<(), RuntimeError> {
        let mut modules = self.inner.lock();
        let entry = modules.get_mut(name).ok_or_else(|| not_found(name))?;
        if entry.live.is_some() {
            return Ok(());
        }
        let settings = process_settings(&entry.config)?;
        let cwd = entry.working_dir(settings);
        entry.sink.begin_run();
        let child = match launch::spawn(&entry.config, settings, &cwd) {
            Ok(child) => child,
            Err(error) => {
                entry.sink.end_run();
                return Err(error);
            }
        };
        let pid = child.id().unwrap_or_default();
        entry.run = RunRecord {
            pid: Some(pid),
            start_ticks: super::procfs::read_stat(pid).map(|s| s.start_ticks),
            started_at: Some(OffsetDateTime::now_utc()),
            ..RunRecord::default()
        };
        if let Err(error) = store::write_json(&entry.dir.join("run.json"), &entry.run) {
            // The run is going and supervised; only a restart of spoke-edge would miss it.
            tracing::warn!(%error, "recording the start failed");
        }
        let (exited_tx, exited) = watch::channel(false);
        entry.live = Some(Live { pid, exited });
        let (inner, id, sink, task_name) = (
            self.inner.clone(),
            entry.id.clone(),
            entry.sink.clone(),
            name.clone(),
        );
        drop(modules);
        let span = tracing::info_span!("module", module = %name, runtime = "process", pid);
        tokio::spawn(
            async move {
                let exit = launch::supervise(child, pid, sink.clone()).await;
                sink.end_run();
                tracing::info!(exit_code = ?exit.code, "exited");
                let exit_code = exit.code;
                inner.record_exit(&task_name, &id, pid, exit);
                exited_tx.send_replace(true);
                inner.emit(&task_name, RuntimeEventKind::Exited { exit_code });
            }
            .instrument(span),
        );
        tracing::info!(pid, "started");
        self.inner.emit(name, RuntimeEventKind::Started);
        Ok(())
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %name, runtime = "process"))]
    async fn stop(&self, name: &ModuleId, timeout: Duration) -> Result<(), RuntimeError> {
        let Some(mut live) = self.inner.live(name)? else {
            return Ok(());
        };
        launch::signal_group(live.pid, Signal::TERM).map_err(|e| signal_failed(name, e))?;
        if wait_exit(&mut live, timeout).await {
            return Ok(());
        }
        tracing::info!(?timeout, "still running after SIGTERM; killing");
        kill(name, live).await
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %name, runtime = "process"))]
    async fn remove(&self, name: &ModuleId) -> Result<(), RuntimeError> {
        if let Some(live) = self.inner.live(name)? {
            kill(name, live).await?;
        }
        let Some(entry) = self.inner.lock().remove(name) else {
            return Err(not_found(name));
        };
        fs::remove_dir_all(&entry.dir).map_err(|e| RuntimeError::io("removing", &entry.dir, e))?;
        tracing::info!("removed");
        Ok(())
    }

    async fn state(&self, name: &ModuleId) -> Result<ModuleState, RuntimeError> {
        let modules = self.inner.lock();
        modules
            .get(name)
            .map(Entry::state)
            .ok_or_else(|| not_found(name))
    }

    async fn list(&self) -> Result<Vec<ModuleState>, RuntimeError> {
        let mut states: Vec<_> = self.inner.lock().values().map(Entry::state).collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(states)
    }
}

#[async_trait]
impl ModuleProcesses for ProcessRuntime {
    async fn pids(&self, name: &ModuleId) -> Result<Vec<u32>, RuntimeError> {
        let Some(live) = self.inner.live(name)? else {
            return Ok(Vec::new());
        };
        Ok(tokio::task::spawn_blocking(move || {
            super::procfs::module_pids(live.pid, Some(live.pid))
        })
        .await
        .unwrap_or_default())
    }
}

#[async_trait]
impl ModuleLogs for ProcessRuntime {
    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, RuntimeError> {
        let (sink, dir) = {
            let modules = self.inner.lock();
            let entry = modules.get(name).ok_or_else(|| not_found(name))?;
            (entry.sink.clone(), entry.dir.join("logs"))
        };
        let options = options.clone();
        let snapshot = tokio::task::spawn_blocking(move || sink.snapshot(&options))
            .await
            .map_err(|e| RuntimeError::io("reading logs in", &dir, std::io::Error::other(e)))?
            .map_err(|e| RuntimeError::io("reading logs in", &dir, e))?;
        let history = stream::iter(snapshot.history.into_iter().map(Ok));
        let live = stream::unfold(snapshot.live, |live| async move {
            let mut receiver = live?;
            loop {
                match receiver.recv().await {
                    Ok(entry) => return Some((Ok(entry), Some(receiver))),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "log follower fell behind; lines skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(history.chain(live).boxed())
    }
}

impl ModuleEvents for ProcessRuntime {
    fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }
}
