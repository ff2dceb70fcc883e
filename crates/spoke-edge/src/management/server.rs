//! The management socket: binding it, accepting connections, and serving HTTP/1.1 on them with
//! [`Route`] and a [`ModuleControl`] (azure-iot-edge-contracts.md §1.1, §1.3).
//!
//! One accept task owns the connection tasks; dropping the [`ManagementServer`] stops them all
//! and removes the socket file. At most [`MAX_CONNECTIONS`] connections are served at once
//! (followed logs hold theirs until the client goes); further clients wait in the listen
//! backlog. A client must send its request head within [`HEADER_TIMEOUT`]. Each connection
//! serves one request (no keep-alive).

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;

use super::api::{ApiError, Route};
use super::wire::{ErrorBody, ModuleDetails, ModuleList, StatusResponse};
use super::{ControlError, ModuleControl};
use crate::runtime::{LogEntry, RuntimeError};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;

/// How long a client may take to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (for example, out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A response body: a whole JSON document, or a stream of log lines.
type Body = UnsyncBoxBody<Bytes, RuntimeError>;

/// Why the management socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// Creating its directory, binding, or setting its mode failed.
    #[error("cannot bind the management socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something other than a socket is in the way.
    #[error("{path} exists and is not a socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
}

/// The running management API. Dropping it stops serving and removes the socket file.
pub struct ManagementServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ManagementServer {
    /// Binds `path` (mode 0660, replacing a stale socket file, creating its directory) and
    /// starts serving `control` on it. Must be called within a Tokio runtime.
    pub fn bind(path: &Path, control: Arc<dyn ModuleControl>) -> Result<Self, ManagementError> {
        let bind_err = |source| ManagementError::Bind {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(bind_err)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(bind_err)?;
            }
            Ok(_) => {
                return Err(ManagementError::NotASocket {
                    path: path.to_owned(),
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(bind_err(err)),
        }
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
        let task = tokio::spawn(
            accept_loop(listener, control, Arc::new(Semaphore::new(MAX_CONNECTIONS)))
                .instrument(tracing::info_span!("management")),
        );
        tracing::info!(path = %path.display(), "management socket bound");
        Ok(Self {
            path: path.to_owned(),
            task,
        })
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ManagementServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), %err, "cannot remove management socket");
        }
    }
}

async fn accept_loop(
    listener: UnixListener,
    control: Arc<dyn ModuleControl>,
    slots: Arc<Semaphore>,
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
                tracing::warn!(%err, "management socket accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let connection = serve_connection(stream, Arc::clone(&control));
        connections.spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "management connection failed");
            }
            drop(slot);
        });
    }
}

async fn serve_connection(
    stream: UnixStream,
    control: Arc<dyn ModuleControl>,
) -> Result<(), hyper::Error> {
    let service = service_fn(move |request| {
        let control = Arc::clone(&control);
        async move { Ok::<_, Infallible>(respond(control.as_ref(), &request).await) }
    });
    http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await
}

async fn respond(
    control: &dyn ModuleControl,
    request: &hyper::Request<Incoming>,
) -> Response<Body> {
    let uri = request.uri();
    let route = Route::parse(
        request.method(),
        uri.path(),
        uri.query(),
        OffsetDateTime::now_utc(),
    );
    let response = match route {
        Ok(route) => handle(control, route).await,
        Err(err) => Err(err),
    }
    .unwrap_or_else(|err| {
        if err.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %err.message(), "management request failed");
        }
        json(
            err.status(),
            &ErrorBody {
                message: err.message(),
            },
        )
    });
    tracing::debug!(method = %request.method(), path = uri.path(), status = response.status().as_u16(), "management request");
    response
}

async fn handle(control: &dyn ModuleControl, route: Route) -> Result<Response<Body>, ApiError> {
    match route {
        Route::ListModules => {
            let modules = control.list().await?;
            Ok(json(
                StatusCode::OK,
                &ModuleList {
                    modules: modules.iter().map(ModuleDetails::from).collect(),
                },
            ))
        }
        Route::GetModule(name) => {
            let modules = control.list().await?;
            let module = modules
                .iter()
                .find(|m| m.name == name)
                .ok_or(ControlError::NotFound { name })?;
            Ok(json(StatusCode::OK, &ModuleDetails::from(module)))
        }
        Route::Logs(name, options) => {
            let lines = control
                .logs(&name, &options)
                .await?
                .map(|entry| entry.map(|entry| line_frame(&entry)));
            let mut response = Response::new(StreamBody::new(lines).boxed_unsync());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(response)
        }
        Route::Restart(name) => {
            control.restart(&name).await?;
            tracing::info!(module = %name, "module restarted by request");
            let mut response = Response::new(empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok(response)
        }
        Route::Status => {
            let status = control.status().await?;
            let modules = control.list().await?;
            Ok(json(
                StatusCode::OK,
                &StatusResponse::new(&status, &modules),
            ))
        }
    }
}

/// One log line as a body chunk, newline-terminated.
fn line_frame(entry: &LogEntry) -> Frame<Bytes> {
    let mut line = Vec::with_capacity(entry.line.len() + 1);
    line.extend_from_slice(&entry.line);
    line.push(b'\n');
    Frame::data(Bytes::from(line))
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    // Serializing these plain structs cannot fail; an empty object is the fallback anyway.
    let text = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
