//! Module sockets: binding `<socket_dir>/<module>.sock`, accepting connections, and serving
//! HTTP/1.1 on them with the [`Workload`] core (azure-iot-edge-contracts.md §1.1).
//!
//! Each socket runs one accept task, which owns its connection tasks; dropping the
//! [`ModuleSocket`] stops them all and removes the socket file. At most
//! `max_concurrent_requests` connections are served at once per socket; the accept task waits
//! for a free slot before accepting more, so extra clients wait in the listen backlog (Azure
//! drops them instead, and the client has to retry). Each connection serves one request
//! (no keep-alive) within `request_timeout`, so an idle client cannot keep a slot.

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use spoke_core::ids::ModuleId;
use time::OffsetDateTime;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;

use super::api::{ApiError, Caller, Reply, Request, Workload};
use super::{CallerCheck, KeyStore, TrustConfig, WorkloadConfig, WorkloadError};

/// Largest request body accepted (base64 of the data to encrypt is the big one).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Pause after a failed `accept` (for example, out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The workload API service: one HTTP/1.1 server per module socket, all sharing keys, trust
/// and limits.
pub struct WorkloadApi {
    core: Arc<Workload>,
    socket_dir: PathBuf,
    max_concurrent: usize,
    request_timeout: Duration,
}

impl WorkloadApi {
    /// The service for `config`; `keys` holds the module keys and `callers` says which
    /// processes belong to which module.
    pub fn new(
        config: &WorkloadConfig,
        keys: Arc<dyn KeyStore>,
        callers: Arc<dyn CallerCheck>,
    ) -> Self {
        Self {
            core: Arc::new(Workload::new(config, keys, callers)),
            socket_dir: config.socket_dir.clone(),
            max_concurrent: config.max_concurrent_requests.max(1),
            request_timeout: config.request_timeout,
        }
    }

    /// Where `module`'s socket lives: `<socket_dir>/<module>.sock`, without a leading `$`.
    pub fn socket_path(&self, module: &ModuleId) -> PathBuf {
        let name = module.as_str();
        let name = name.strip_prefix('$').unwrap_or(name);
        self.socket_dir.join(format!("{name}.sock"))
    }

    /// Binds `module`'s socket (mode 0666, replacing a stale socket file) and starts serving
    /// it. Must be called within a Tokio runtime. Drop the old [`ModuleSocket`] of a module
    /// before binding it again: dropping removes the socket file.
    pub fn bind(&self, module: ModuleId) -> Result<ModuleSocket, WorkloadError> {
        let path = self.socket_path(&module);
        let bind_err = |source| WorkloadError::Bind {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.socket_dir).map_err(bind_err)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(&path).map_err(bind_err)?;
            }
            Ok(_) => return Err(WorkloadError::NotASocket { path }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(bind_err(err)),
        }
        let listener = UnixListener::bind(&path).map_err(bind_err)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
            .map_err(bind_err)?;
        let span = tracing::info_span!("workload", module = %module);
        let task = tokio::spawn(
            accept_loop(
                listener,
                module.clone(),
                Arc::clone(&self.core),
                Arc::new(Semaphore::new(self.max_concurrent)),
                self.request_timeout,
            )
            .instrument(span),
        );
        tracing::info!(module = %module, path = %path.display(), "workload socket bound");
        Ok(ModuleSocket { module, path, task })
    }

    /// Replaces the edge CA and trust bundles on every socket (after a renewal).
    pub fn replace_trust(&self, trust: TrustConfig) {
        self.core.replace_trust(trust);
    }
}

/// A bound module socket. Dropping it stops serving and removes the socket file.
pub struct ModuleSocket {
    module: ModuleId,
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ModuleSocket {
    /// The module the socket serves.
    pub fn module(&self) -> &ModuleId {
        &self.module
    }

    /// The socket file (mount it into the module at `/var/run/iotedge/workload.sock`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ModuleSocket {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), %err, "cannot remove workload socket");
        }
    }
}

async fn accept_loop(
    listener: UnixListener,
    module: ModuleId,
    core: Arc<Workload>,
    slots: Arc<Semaphore>,
    request_timeout: Duration,
) {
    // Owning the connection tasks here means aborting this task aborts them too.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(%err, "workload socket accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let pid = stream
            .peer_cred()
            .ok()
            .and_then(|cred| cred.pid())
            .and_then(|pid| u32::try_from(pid).ok());
        let span = tracing::debug_span!("connection", pid);
        let connection = serve_connection(stream, module.clone(), pid, Arc::clone(&core));
        connections.spawn(
            async move {
                match tokio::time::timeout(request_timeout, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::debug!(%err, "workload connection failed"),
                    Err(_) => tracing::debug!("workload connection timed out"),
                }
                drop(slot);
            }
            .instrument(span),
        );
    }
}

async fn serve_connection(
    stream: UnixStream,
    module: ModuleId,
    pid: Option<u32>,
    core: Arc<Workload>,
) -> Result<(), hyper::Error> {
    let service = service_fn(move |request| {
        let core = Arc::clone(&core);
        let module = module.clone();
        async move { Ok::<_, Infallible>(respond(&core, &module, pid, request).await) }
    });
    http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await
}

async fn respond(
    core: &Workload,
    module: &ModuleId,
    pid: Option<u32>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // A declared Content-Length over the limit is refused before reading any of the body.
    let reply = if body.size_hint().lower() > MAX_BODY as u64 {
        Reply::from(&ApiError::TooLarge(MAX_BODY))
    } else {
        read_and_handle(core, module, pid, &parts, body).await
    };
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = reply.status.as_u16(), "workload request");
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn read_and_handle(
    core: &Workload,
    module: &ModuleId,
    pid: Option<u32>,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Reply {
    if let Some(pid) = pid {
        core.await_caller(module, pid).await;
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => core.handle(
            Caller { module, pid },
            Request {
                method: &parts.method,
                path: parts.uri.path(),
                query: parts.uri.query(),
                body: &body.to_bytes(),
            },
            OffsetDateTime::now_utc(),
        ),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Reply::from(&ApiError::TooLarge(MAX_BODY))
        }
        Err(_) => Reply::from(&ApiError::BodyRead),
    }
}
