//! The Docker runtime: modules as containers, through the Docker Engine API on a Unix socket
//! (bollard; the API version is negotiated down to the engine's, so Podman's Docker-compatible
//! socket works too).
//!
//! What a container gets is in `spec`; how engine answers become module states, log entries
//! and events is in `convert` and `events`.
//!
//! Reaching the edge hub: the edge hub runs inside spoke-edge on the host, not in a container,
//! so no container can carry its network alias (as edgeHub's does in Azure, spec §2.2).
//! Instead every container gets `ExtraHosts` entries mapping the configured host aliases (the
//! device hostname) to the host's address on the Spoke network, the network's gateway
//! ([`DockerRuntime::gateway_ip`]). spoke-edge must listen on that address (or on all
//! addresses) for containers to connect; the gateway exists as soon as the network does, and
//! traffic to it stays on the host. (`host-gateway` is the fallback when the network reports
//! no gateway; it names the default bridge's address instead.)
//!
//! Invariants:
//! - A container is this runtime's only if it carries the instance label
//!   ([`spec::INSTANCE_LABEL`]) with this runtime's value; every other container is invisible
//!   (`NotFound`) and never stopped or removed, so several spoke-edge instances (or tests)
//!   can share one engine.
//! - Container name = prefix + module name without a leading `$`; the module name itself is
//!   kept in a label.
//! - `start` of a running and `stop` of a stopped container succeed (the engine answers 304).

mod convert;
mod events;
mod spec;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerInspectResponse, NetworkCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::{StreamExt, TryStreamExt};
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub(crate) use self::convert::split_log_message;
pub use self::spec::{INSTANCE_LABEL, MODULE_LABEL, ORIGINAL_IMAGE_LABEL, OWNER, OWNER_LABEL};
use super::error::RuntimeError;
use super::types::{
    InstanceId, LogOptions, ModuleConfig, ModuleState, RegistryCredentials, RuntimeEvent,
};
use super::{ImageStore, LogStream, ModuleEvents, ModuleLogs, ModuleProcesses, ModuleRuntime};

/// Timeout of one engine request (a `stop` gets its own grace period on top).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Capacity of the event channel; slower subscribers see `Lagged` and should re-list.
const EVENT_CAPACITY: usize = 256;

/// How the Docker runtime reaches the engine and marks its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The engine's Unix socket.
    pub socket: PathBuf,
    /// Network modules join unless their `createOptions` choose one; created (bridge) if
    /// missing.
    pub network: String,
    /// Value of the instance label; containers with another value are not this runtime's.
    pub instance: String,
    /// Prefix of container names (empty in production, as in Azure).
    pub container_prefix: String,
    /// Hostnames that resolve, inside every container, to the host on the Spoke network
    /// (the device hostname that modules use as `IOTEDGE_GATEWAYHOSTNAME`).
    pub host_aliases: Vec<String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/var/run/docker.sock"),
            network: "spoke-edge".to_owned(),
            instance: "spoke-edge".to_owned(),
            container_prefix: String::new(),
            host_aliases: Vec::new(),
        }
    }
}

/// Runs modules as Docker containers. Dropping it stops following engine events.
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
    gateway: Option<IpAddr>,
    extra_hosts: Vec<String>,
    /// Networks known to exist.
    networks: tokio::sync::Mutex<HashSet<String>>,
    events: broadcast::Sender<RuntimeEvent>,
    follower: tokio::task::JoinHandle<()>,
}

impl Drop for DockerRuntime {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

fn status_code(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn engine(operation: &'static str, error: DockerError) -> RuntimeError {
    RuntimeError::Engine {
        operation,
        source: Box::new(error),
    }
}

fn now_nanos() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

impl DockerRuntime {
    /// Connects to the engine, creates the default network if missing, and starts following
    /// engine events (from now on). Must be called inside a Tokio runtime.
    pub async fn connect(config: DockerConfig) -> Result<Self, RuntimeError> {
        let endpoint = config.socket.display().to_string();
        let unavailable = |error: DockerError| RuntimeError::Unavailable {
            endpoint: endpoint.clone(),
            source: Box::new(error),
        };
        let docker =
            Docker::connect_with_socket(&endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                .map_err(unavailable)?
                .negotiate_version()
                .await
                .map_err(unavailable)?;
        let since = now_nanos();
        let gateway = ensure_network(&docker, &config.network, &config.instance).await?;
        let target = gateway.map_or_else(|| "host-gateway".to_owned(), |ip| ip.to_string());
        let extra_hosts = config
            .host_aliases
            .iter()
            .map(|host| format!("{host}:{target}"))
            .collect();
        let events = broadcast::channel(EVENT_CAPACITY).0;
        let follower = tokio::spawn(events::follow(
            docker.clone(),
            config.instance.clone(),
            events.clone(),
            since,
        ));
        tracing::info!(%endpoint, network = %config.network, ?gateway, "connected to Docker");
        Ok(Self {
            docker,
            networks: tokio::sync::Mutex::new(HashSet::from([config.network.clone()])),
            config,
            gateway,
            extra_hosts,
            events,
            follower,
        })
    }

    /// The host's address on the default network: where containers reach spoke-edge, and so
    /// an address the edge hub should listen on.
    pub fn gateway_ip(&self) -> Option<IpAddr> {
        self.gateway
    }

    /// The default network's name.
    pub fn network(&self) -> &str {
        &self.config.network
    }

    fn container_name(&self, name: &ModuleId) -> Result<String, RuntimeError> {
        spec::container_name(&self.config.container_prefix, name)
    }

    /// Inspects module `name`'s container, if it is this runtime's.
    async fn owned(
        &self,
        name: &ModuleId,
    ) -> Result<(String, ContainerInspectResponse), RuntimeError> {
        let container = self.container_name(name)?;
        let inspect = match self
            .docker
            .inspect_container(&container, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => inspect,
            Err(e) if status_code(&e) == Some(404) => {
                return Err(RuntimeError::NotFound { name: name.clone() });
            }
            Err(e) => return Err(engine("inspect container", e)),
        };
        let ours = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|labels| labels.get(INSTANCE_LABEL))
            .is_some_and(|instance| *instance == self.config.instance);
        if ours {
            Ok((container, inspect))
        } else {
            Err(RuntimeError::NotFound { name: name.clone() })
        }
    }

    async fn ensure_network(&self, network: &str) -> Result<(), RuntimeError> {
        let mut known = self.networks.lock().await;
        if !known.contains(network) {
            ensure_network(&self.docker, network, &self.config.instance).await?;
            known.insert(network.to_owned());
        }
        Ok(())
    }
}

/// Creates bridge network `name` unless it exists; returns its gateway address.
async fn ensure_network(
    docker: &Docker,
    name: &str,
    instance: &str,
) -> Result<Option<IpAddr>, RuntimeError> {
    let inspect = match docker.inspect_network(name, None).await {
        Err(e) if status_code(&e) == Some(404) => {
            let request = NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".to_owned()),
                labels: Some(HashMap::from([
                    (OWNER_LABEL.to_owned(), OWNER.to_owned()),
                    (INSTANCE_LABEL.to_owned(), instance.to_owned()),
                ])),
                ..NetworkCreateRequest::default()
            };
            match docker.create_network(request).await {
                // 409: created concurrently by someone else; fine.
                Err(e) if status_code(&e) != Some(409) => return Err(engine("create network", e)),
                _ => tracing::info!(network = name, "created network"),
            }
            docker.inspect_network(name, None).await
        }
        other => other,
    }
    .map_err(|e| engine("inspect network", e))?;
    Ok(inspect
        .ipam
        .and_then(|ipam| ipam.config)
        .into_iter()
        .flatten()
        .filter_map(|c| c.gateway?.parse::<IpAddr>().ok())
        .min_by_key(IpAddr::is_ipv6))
}

#[async_trait]
impl ModuleRuntime for DockerRuntime {
    fn kind(&self) -> &'static str {
        "docker"
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %config.name, runtime = "docker"))]
    async fn create(&self, config: &ModuleConfig) -> Result<InstanceId, RuntimeError> {
        let container = self.container_name(&config.name)?;
        let ctx = spec::Context {
            instance: &self.config.instance,
            network: &self.config.network,
            extra_hosts: &self.extra_hosts,
        };
        let (body, network) = spec::container_body(config, &ctx)?;
        if let Some(network) = network {
            self.ensure_network(&network).await?;
        }
        let image = body.image.clone().unwrap_or_default();
        let options = CreateContainerOptions {
            name: Some(container),
            ..CreateContainerOptions::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| match status_code(&e) {
                Some(404) => RuntimeError::ImageNotFound { image },
                Some(409) => RuntimeError::AlreadyExists {
                    name: config.name.clone(),
                },
                _ => engine("create container", e),
            })?;
        for warning in created.warnings.iter().filter(|w| !w.is_empty()) {
            tracing::warn!(warning, "engine warning on create");
        }
        tracing::info!(id = %created.id, "created");
        Ok(InstanceId::new(created.id))
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %name, runtime = "docker"))]
    async fn start(&self, name: &ModuleId) -> Result<(), RuntimeError> {
        let (container, _) = self.owned(name).await?;
        self.docker
            .start_container(&container, None)
            .await
            .map_err(|e| engine("start container", e))
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %name, runtime = "docker"))]
    async fn stop(&self, name: &ModuleId, timeout: Duration) -> Result<(), RuntimeError> {
        let (container, _) = self.owned(name).await?;
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let options = StopContainerOptions {
            t: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
            signal: None,
        };
        // The engine answers once the container is gone, so the request may take `timeout`.
        self.docker
            .clone()
            .with_timeout(timeout + Duration::from_secs(REQUEST_TIMEOUT_SECS))
            .stop_container(&container, Some(options))
            .await
            .map_err(|e| engine("stop container", e))
    }

    #[tracing::instrument(name = "module", skip_all, fields(module = %name, runtime = "docker"))]
    async fn remove(&self, name: &ModuleId) -> Result<(), RuntimeError> {
        let (container, _) = self.owned(name).await?;
        let options = RemoveContainerOptions {
            force: true,
            ..RemoveContainerOptions::default()
        };
        match self
            .docker
            .remove_container(&container, Some(options))
            .await
        {
            Err(e) if status_code(&e) == Some(404) => {
                Err(RuntimeError::NotFound { name: name.clone() })
            }
            other => other.map_err(|e| engine("remove container", e)),
        }
    }

    async fn state(&self, name: &ModuleId) -> Result<ModuleState, RuntimeError> {
        let (_, inspect) = self.owned(name).await?;
        Ok(convert::module_state(name.clone(), &inspect))
    }

    async fn list(&self) -> Result<Vec<ModuleState>, RuntimeError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!("{INSTANCE_LABEL}={}", self.config.instance)],
            )])),
            ..ListContainersOptions::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine("list containers", e))?;
        let mut states = Vec::with_capacity(containers.len());
        for id in containers.into_iter().filter_map(|c| c.id) {
            match self.docker.inspect_container(&id, None).await {
                Ok(inspect) => {
                    if let Some(name) = convert::module_name(&inspect) {
                        states.push(convert::module_state(name, &inspect));
                    }
                }
                // Removed since it was listed.
                Err(e) if status_code(&e) == Some(404) => {}
                Err(e) => return Err(engine("inspect container", e)),
            }
        }
        states.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(states)
    }
}

#[async_trait]
impl ModuleProcesses for DockerRuntime {
    async fn pids(&self, name: &ModuleId) -> Result<Vec<u32>, RuntimeError> {
        let (_, inspect) = self.owned(name).await?;
        let Some(pid) = convert::module_state(name.clone(), &inspect).pid else {
            return Ok(Vec::new());
        };
        Ok(
            tokio::task::spawn_blocking(move || super::procfs::module_pids(pid, None))
                .await
                .unwrap_or_default(),
        )
    }
}

#[async_trait]
impl ModuleLogs for DockerRuntime {
    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, RuntimeError> {
        let (container, _) = self.owned(name).await?;
        let since = options
            .since
            .map_or(0, |t| i32::try_from(t.unix_timestamp()).unwrap_or(i32::MAX));
        let request = LogsOptions {
            follow: options.follow,
            stdout: true,
            stderr: true,
            since,
            until: 0,
            timestamps: true,
            tail: options
                .tail
                .map_or_else(|| "all".to_owned(), |n| n.to_string()),
        };
        let stream = self
            .docker
            .logs(&container, Some(request))
            .map_err(|e| engine("container logs", e))
            .filter_map(|item| async move { item.map(convert::log_entry).transpose() });
        Ok(stream.boxed())
    }
}

impl ModuleEvents for DockerRuntime {
    fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.events.subscribe()
    }
}

#[async_trait]
impl ImageStore for DockerRuntime {
    #[tracing::instrument(skip(self, credentials))]
    async fn pull(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
    ) -> Result<(), RuntimeError> {
        let options = CreateImageOptions {
            from_image: Some(with_default_tag(image)),
            ..CreateImageOptions::default()
        };
        let credentials = credentials.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            serveraddress: Some(c.server_address.clone()),
            ..DockerCredentials::default()
        });
        self.docker
            .create_image(Some(options), None, credentials)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|e| RuntimeError::ImagePull {
                image: image.to_owned(),
                message: match e {
                    DockerError::DockerResponseServerError { message, .. }
                    | DockerError::DockerStreamError { error: message } => message,
                    other => other.to_string(),
                },
            })?;
        tracing::info!("pulled");
        Ok(())
    }

    async fn exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if status_code(&e) == Some(404) => Ok(false),
            Err(e) => Err(engine("inspect image", e)),
        }
    }
}

/// `image` with `:latest` added when it names neither a tag nor a digest (the engine would
/// otherwise pull every tag).
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        assert_eq!(with_default_tag("alpine"), "alpine:latest");
        assert_eq!(
            with_default_tag("localhost:5000/a/b"),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            with_default_tag("localhost:5000/a/b:1"),
            "localhost:5000/a/b:1"
        );
        assert_eq!(with_default_tag("a/b@sha256:00"), "a/b@sha256:00");
    }
}
