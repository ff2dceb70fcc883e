//! The `spoke-edge` daemon: wires the configuration, identities, edge CA, workload API, module
//! runtimes and the agent core together, and drives the agent.
//!
//! The loop: observe the runtimes, let the agent plan, carry out the actions, save the agent's
//! state when it changed (so a reboot without network brings the modules back), report to the
//! `$edgeAgent` twin, then wait for the first of: a desired-properties change, a module
//! starting or exiting, the agent's next due restart, or shutdown.
//!
//! The daemon talks to the hub as the `$edgeAgent` module (with the key of that identity,
//! which it manages with the device's key). It starts even when the hub is unreachable: it
//! runs the last good deployment and connects in the background. Modules connect to the edge
//! hub (`crate::edgehub`, started here; `IOTEDGE_GATEWAYHOSTNAME` is the configured
//! `hostname`), with identities and SAS tokens from this daemon; `edge_hub.rs` keeps its
//! routes in step with the `$edgeHub` twin.

pub mod control;
mod edge_hub;
pub mod methods;
pub mod modules;
mod upstream;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use spoke_core::connstr::ConnectionString;
use spoke_core::ids::{DeviceId, ModuleId};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use self::control::{Control, Snapshot};
use self::modules::{CachedKeys, ModuleEnvironment, ModulePids, Modules, Runtimes};
use self::upstream::{Upstream, UpstreamEvent};
use crate::agent::{Agent, AgentConfig, AgentState, reported_patch};
use crate::config::{ConfigError, EdgeConfig, RuntimeKind, file_uri_path};
use crate::edgehub::{CloudConfig, EdgeHub, EdgeHubConfig};
use crate::identity::{DeviceCredentials, IdentityCache, IdentityClient, IdentityError};
use crate::management::{DeploymentSummary, ManagementServer, management_socket};
use spoke_store::queue::QueueConfig;

use crate::runtime::docker::{DockerConfig, DockerRuntime};
use crate::runtime::process::{LogRotation, ProcessRuntime};
use crate::runtime::{Backend, RuntimeError};
use crate::workload::{MasterKey, TrustConfig, WorkloadApi, WorkloadConfig};

/// Why the daemon could not start (documented exit code 1 in `main.rs`).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The device connection string lacks something.
    #[error("provisioning.connection_string: {0}")]
    Provisioning(String),
    /// A file of the data directory could not be read or written.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The edge CA could not be loaded or generated.
    #[error(transparent)]
    EdgeCa(#[from] crate::edge_ca::EdgeCaError),
    /// The identity client or cache failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A module runtime could not start.
    #[error("module runtime")]
    Runtime(#[from] RuntimeError),
    /// The saved agent state could not be written.
    #[error("cannot save the agent state")]
    State(#[from] crate::agent::StateError),
    /// The management socket could not be bound.
    #[error("management API: {0}")]
    Management(String),
    /// The edge hub could not start.
    #[error("edge hub")]
    EdgeHub(#[from] crate::edgehub::EdgeHubError),
    /// The master key is corrupt.
    #[error("the workload master key is unusable: {0}")]
    MasterKey(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The device credentials of a manual-provisioning connection string.
fn credentials(config: &EdgeConfig) -> Result<DeviceCredentials, DaemonError> {
    let cs = ConnectionString::parse(&config.provisioning.connection_string)
        .map_err(|e| DaemonError::Provisioning(e.to_string()))?;
    let device_id: DeviceId = cs
        .device_id()
        .cloned()
        .ok_or_else(|| DaemonError::Provisioning("no DeviceId".into()))?;
    let key = cs
        .shared_access_key()
        .ok_or_else(|| DaemonError::Provisioning("no SharedAccessKey".into()))?;
    Ok(DeviceCredentials {
        hub_host: cs.host_name().to_owned(),
        device_id,
        key: key.to_owned(),
    })
}

/// The workload master key (32 random bytes, mode 0600), created on first start.
fn master_key(data_dir: &Path) -> Result<MasterKey, DaemonError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data_dir.join("master.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
                DaemonError::MasterKey(format!("{} is not 32 bytes", path.display()))
            })?;
            Ok(MasterKey::from_bytes(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate().map_err(|e| DaemonError::MasterKey(e.to_string()))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path))?;
            file.write_all(key.expose_bytes()).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
            Ok(key)
        }
        Err(source) => Err(DaemonError::Io { path, source }),
    }
}

fn load_state(path: &Path) -> AgentState {
    match std::fs::read(path) {
        Ok(bytes) => AgentState::from_json(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "saved deployment unreadable; starting empty");
            AgentState::default()
        }),
        Err(_) => AgentState::default(),
    }
}

fn save_state(path: &Path, state: &AgentState) -> Result<(), DaemonError> {
    crate::state_file::write(path, &state.to_json()?).map_err(io(path))
}

/// Runs the daemon until `shutdown` resolves. Modules keep running across a daemon restart.
pub async fn run(
    config: EdgeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let creds = credentials(&config)?;
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
    let trust_bundle = match &config.trust_bundle_cert {
        Some(uri) => {
            let path = file_uri_path(uri).map_err(DaemonError::Provisioning)?;
            Some(std::fs::read_to_string(&path).map_err(io(&path))?)
        }
        None => None,
    };
    let now = OffsetDateTime::now_utc();
    let edge_ca = crate::edge_ca::load(config.edge_ca.as_ref(), &data_dir, &creds.device_id, now)?;
    let cache = Arc::new(Mutex::new(IdentityCache::load(
        &data_dir.join("identities.json"),
    )?));
    let identities = IdentityClient::new(
        creds.clone(),
        config.upstream.https_port,
        trust_bundle.as_deref().unwrap_or_default(),
    )?;
    let socket_dir = data_dir.join("sockets");
    std::fs::create_dir_all(&socket_dir).map_err(io(&socket_dir))?;
    let pids = Arc::new(ModulePids::default());
    let workload = WorkloadApi::new(
        &WorkloadConfig::new(
            socket_dir,
            creds.hub_host.clone(),
            creds.device_id.clone(),
            TrustConfig {
                edge_ca: edge_ca.clone(),
                trust_bundle: trust_bundle.clone(),
                manifest_trust_bundle: None,
            },
            master_key(&data_dir)?,
        ),
        Arc::new(CachedKeys(cache.clone())),
        pids.clone(),
    );
    let process = Backend::process(ProcessRuntime::open(
        data_dir.join("process"),
        LogRotation::default(),
    )?);
    let mut container_gateway = None;
    let docker = match config.runtime.kind {
        RuntimeKind::Process => None,
        RuntimeKind::Docker => {
            let socket = file_uri_path(&config.moby_runtime.uri.replacen("unix://", "file://", 1))
                .map_err(DaemonError::Provisioning)?;
            let runtime = DockerRuntime::connect(DockerConfig {
                socket,
                network: config.moby_runtime.network.clone(),
                host_aliases: vec![config.hostname.clone()],
                ..DockerConfig::default()
            })
            .await?;
            container_gateway = runtime.gateway_ip();
            Some(Backend::docker(runtime))
        }
    };
    let upstream_ca = trust_bundle.clone().unwrap_or_default();
    let edge_hub = EdgeHub::start(
        EdgeHubConfig {
            hostname: config.hostname.clone(),
            bind: config.bind,
            // Containers reach the edge hub at their network's gateway (unless `bind` already
            // covers it).
            also_bind: container_gateway
                .filter(|ip| !config.bind.is_unspecified() && *ip != config.bind)
                .into_iter()
                .collect(),
            mqtt_port: config.edge_hub.mqtt_port,
            https_port: config.edge_hub.https_port,
            metrics_port: config.edge_hub.metrics_port,
            store_dir: data_dir.join("store"),
            sessions_file: data_dir.join("edgehub-sessions.json"),
            twins_file: data_dir.join("edgehub-twins.json"),
            queue: QueueConfig {
                max_total_bytes: config.edge_hub.max_store_bytes,
                ..QueueConfig::default()
            },
            upstream: CloudConfig {
                hub_hostname: creds.hub_host.clone(),
                port: config.upstream.mqtt_port,
                ca_pem: upstream_ca.clone(),
                device: creds.device_id.clone(),
            },
            device_key: creds.key.clone(),
        },
        &edge_ca,
        Arc::new(CachedKeys(cache.clone())),
        edge_hub::initial(&data_dir.join("edgehub-desired.json")),
    )
    .await?;
    let (stop_hub_twin, hub_twin_stop) = tokio::sync::watch::channel(false);
    let (hub_twin_tx, hub_twin_rx) = mpsc::channel(16);
    let hub_twin = tokio::spawn(edge_hub::follow(
        Upstream::start(
            identities.clone(),
            cache.clone(),
            ModuleId::parse("$edgeHub").map_err(|e| DaemonError::Provisioning(e.to_string()))?,
            &creds,
            config.upstream.mqtt_port,
            upstream_ca,
            hub_twin_tx,
        ),
        hub_twin_rx,
        edge_hub.route_control(),
        data_dir.join("edgehub-desired.json"),
        hub_twin_stop,
    ));
    let runtimes = Runtimes::new(process, docker, pids);
    let runtime_type = runtimes.kind();
    let upstream_identities = identities.clone();
    let upstream_cache = cache.clone();
    let mut modules = Modules::new(
        runtimes,
        identities,
        cache,
        workload,
        ModuleEnvironment {
            hub_hostname: creds.hub_host.clone(),
            device_id: creds.device_id.clone(),
            gateway_hostname: config.hostname.clone(),
        },
    );
    modules.restore_sockets().await;
    let state_path = data_dir.join("agent-state.json");
    let mut agent = Agent::new(AgentConfig::new(runtime_type, now), load_state(&state_path));
    let agent_id =
        ModuleId::parse("$edgeAgent").map_err(|e| DaemonError::Provisioning(e.to_string()))?;
    let (upstream_tx, upstream_rx) = mpsc::channel(64);
    let upstream = Upstream::start(
        upstream_identities,
        upstream_cache,
        agent_id,
        &creds,
        config.upstream.mqtt_port,
        trust_bundle.unwrap_or_default(),
        upstream_tx,
    );
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let control = Control::new(
        modules.runtimes().clone(),
        snapshot.clone(),
        creds.device_id.clone(),
        creds.hub_host.clone(),
    );
    let mgmt_path = management_socket(&config);
    let _management = ManagementServer::bind(&mgmt_path, Arc::new(control))
        .map_err(|e| DaemonError::Management(e.to_string()))?;
    tracing::info!(device = %creds.device_id, hub = creds.hub_host, runtime = runtime_type, "spoke-edge started");
    let result = drive(
        &mut agent,
        &mut modules,
        &upstream,
        upstream_rx,
        &state_path,
        &snapshot,
        shutdown,
    )
    .await;
    upstream.close().await;
    let _ = stop_hub_twin.send(true);
    let _ = hub_twin.await;
    edge_hub.shutdown().await;
    tracing::info!("spoke-edge stopped");
    result
}

/// Runs one `$edgeAgent` direct method; returns the status and payload to answer with.
async fn run_method(modules: &Modules, name: &str, payload: &Value) -> (i32, Value) {
    let call = match methods::parse(name, payload, OffsetDateTime::now_utc()) {
        Ok(call) => call,
        Err(e) => return (e.status, e.payload()),
    };
    let failed = |e: &dyn std::fmt::Display| (500, serde_json::json!({"message": e.to_string()}));
    match call {
        methods::AgentMethod::Ping => (200, Value::Null),
        methods::AgentMethod::Restart(module) => match modules.runtimes().restart(&module).await {
            Ok(()) => (200, Value::Null),
            Err(e) => failed(&e),
        },
        methods::AgentMethod::Logs { items, json } => {
            let names: Vec<ModuleId> = modules
                .observe()
                .await
                .into_iter()
                .map(|m| m.name)
                .collect();
            let mut answer = Vec::new();
            let mut budget = methods::MAX_ANSWER;
            for item in &items {
                for name in names
                    .iter()
                    .filter(|n| methods::matches(&item.pattern, n.as_str()))
                {
                    let entries = match collect_logs(modules.runtimes(), name, &item.options).await
                    {
                        Ok(entries) => entries,
                        Err(e) => return failed(&e),
                    };
                    let text = methods::render_logs(name.as_str(), &entries, json, budget);
                    budget = budget.saturating_sub(text.len());
                    answer.push(serde_json::json!({"id": name, "payload": text}));
                }
            }
            (200, Value::Array(answer))
        }
    }
}

/// A module's log history (no following).
async fn collect_logs(
    runtimes: &Runtimes,
    name: &ModuleId,
    options: &crate::runtime::LogOptions,
) -> Result<Vec<crate::runtime::LogEntry>, RuntimeError> {
    use futures_util::TryStreamExt as _;
    let options = crate::runtime::LogOptions {
        follow: false,
        ..options.clone()
    };
    runtimes.logs(name, &options).await?.try_collect().await
}

async fn drive(
    agent: &mut Agent,
    modules: &mut Modules,
    upstream: &Upstream,
    mut upstream_rx: mpsc::Receiver<UpstreamEvent>,
    state_path: &Path,
    snapshot: &Mutex<Snapshot>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let mut runtime_events = modules.events();
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(16);
    for mut events in runtime_events.drain(..) {
        let wake = wake_tx.clone();
        tokio::spawn(async move {
            while events.recv().await.is_ok() || !events.is_empty() {
                if wake.send(()).await.is_err() {
                    return;
                }
            }
        });
    }
    let mut last_reported = Value::Null;
    tokio::pin!(shutdown);
    loop {
        let now = OffsetDateTime::now_utc();
        let observed = modules.observe().await;
        for action in agent.reconcile(observed, now) {
            if let Err(e) = modules.apply(&action).await {
                tracing::warn!(%action, error = %e, "module action failed");
                agent.action_failed(&action, &e);
            }
        }
        if agent.take_state_changed() {
            save_state(state_path, agent.state())?;
        }
        *snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Snapshot {
            specs: agent
                .state()
                .desired()
                .map(|d| d.modules.clone())
                .unwrap_or_default(),
            deployment: agent.state().version().map(|version| DeploymentSummary {
                version,
                status: agent.status(),
            }),
            upstream_connected: upstream.connected(),
        };
        let reported = agent.reported(OffsetDateTime::now_utc());
        if let Some(patch) = reported_patch(&last_reported, &reported)
            && upstream.report(patch).await
        {
            last_reported = reported;
        }
        let sleep = agent.next_wakeup(OffsetDateTime::now_utc()).map(|at| {
            let wait = (at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
            std::time::Duration::try_from(wait).unwrap_or_default()
        });
        let sleep = sleep.unwrap_or(std::time::Duration::from_hours(1));
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = upstream_rx.recv() => match event {
                Some(UpstreamEvent::Desired(desired)) => agent.apply_twin(&desired),
                Some(UpstreamEvent::Connected) => last_reported = Value::Null,
                Some(UpstreamEvent::Method { rid, name, payload }) => {
                    let (status, answer) = run_method(modules, &name, &payload).await;
                    upstream.respond(&rid, status, &answer).await;
                }
                None => {}
            },
            _ = wake_rx.recv() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}
