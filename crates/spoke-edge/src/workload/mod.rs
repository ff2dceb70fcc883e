//! The workload API: what a module asks the edge daemon for over its own Unix socket
//! (azure-iot-edge-contracts.md §1.1, §1.2, §2.3). It signs SAS tokens with the module's key
//! (keys never leave the daemon), encrypts and decrypts data for the module, hands out the trust
//! bundle, and issues server and identity certificates from the edge CA.
//!
//! Layers: [`api`] is the sans-I/O core (request in, reply out, no sockets), [`crypto`] holds
//! the signing and sealing primitives, and [`server`] owns the sockets and the HTTP/1.1
//! connections.
//!
//! Invariants:
//! - There is one socket per module, `<socket_dir>/<module>.sock` with a leading `$` dropped
//!   (`$edgeHub` → `edgeHub.sock`, as Azure names it), mode 0666. Every request on it acts as
//!   that module and no other: the module named in a path must be the socket's module, and the
//!   connecting process (its `SO_PEERCRED` PID) must be one of that module's processes as the
//!   daemon's [`CallerCheck`] reports them. Anything else is 403.
//! - Every request carries a known `api-version` (2018-06-28 … 2022-08-03), else 400.
//! - Errors are JSON `{"message": "..."}` with 400, 403, 404, 405, 413 or 500.

pub mod api;
pub mod crypto;
pub mod fuzzing;
pub mod server;
mod wire;

use std::path::PathBuf;

use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::pki::CertificateAuthority;

pub use api::ApiVersion;
pub use crypto::MasterKey;
pub use server::{ModuleSocket, WorkloadApi};

/// The daemon's module keys. The workload API signs with them; it never returns them.
pub trait KeyStore: Send + Sync + 'static {
    /// The symmetric key of `module`'s identity (the decoded primary key), or `None` when the
    /// module has no identity.
    fn module_key(&self, module: &ModuleId) -> Option<Vec<u8>>;
}

/// Tells whether a process belongs to a module (Azure: the PIDs that `docker top` lists for
/// the module's container; a process module's own process tree).
pub trait CallerCheck: Send + Sync + 'static {
    /// Whether `pid` (in the daemon's PID namespace) is one of `module`'s processes. `module`
    /// is the name the socket was bound for, such as `$edgeHub` or `filter`.
    fn is_module_process(&self, module: &ModuleId, pid: u32) -> bool;

    /// Notified when a module's processes are recorded (it started). A module can call the
    /// workload API before the runtime has reported its PID; the API then waits for this, up
    /// to [`api::CALLER_GRACE`], before refusing. `None`: the answer never changes.
    fn changes(&self) -> Option<&tokio::sync::Notify> {
        None
    }
}

/// What the workload API trusts and hands out as trust: the edge CA and the extra bundles.
#[derive(Debug, Clone)]
pub struct TrustConfig {
    /// The edge CA: it signs module server and identity certificates, and its certificate
    /// heads the trust bundle.
    pub edge_ca: CertificateAuthority,
    /// Extra PEM certificates appended to `/trust-bundle` (config.toml `trust_bundle_cert`).
    pub trust_bundle: Option<String>,
    /// PEM served by `/manifest-trust-bundle` (signed deployments); `""` when unset.
    pub manifest_trust_bundle: Option<String>,
}

/// Configuration of the workload API. [`WorkloadConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Directory holding the per-module sockets.
    pub socket_dir: PathBuf,
    /// The IoT hub's host name, used in identity certificate URIs.
    pub hub_hostname: String,
    /// This edge device, used in identity certificate URIs.
    pub device_id: DeviceId,
    /// The edge CA and trust bundles.
    pub trust: TrustConfig,
    /// The secret the per-module encryption keys are derived from (see [`crypto`]).
    pub master_key: MasterKey,
    /// Lifetime of issued server certificates (default 30 days). The request's `expiration`
    /// is ignored, as in Azure.
    pub server_cert_validity: time::Duration,
    /// Lifetime of issued identity certificates (default 30 days).
    pub identity_cert_validity: time::Duration,
    /// Connections served at once on one module's socket (default 10, Azure's
    /// `iotedge_max_requests`). Further clients wait in the listen backlog instead of being
    /// dropped as Azure does.
    pub max_concurrent_requests: usize,
    /// Time allowed for one connection, from accept to the end of its response (default
    /// 30 s). Connections serve one request each, so a slow or idle client cannot hold a
    /// slot for longer.
    pub request_timeout: std::time::Duration,
}

impl WorkloadConfig {
    /// A configuration with the default limits and certificate lifetimes.
    pub fn new(
        socket_dir: PathBuf,
        hub_hostname: String,
        device_id: DeviceId,
        trust: TrustConfig,
        master_key: MasterKey,
    ) -> Self {
        Self {
            socket_dir,
            hub_hostname,
            device_id,
            trust,
            master_key,
            server_cert_validity: time::Duration::days(30),
            identity_cert_validity: time::Duration::days(30),
            max_concurrent_requests: 10,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Errors from running the workload API (per-request errors are HTTP replies, see [`api`]).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A module socket could not be created or set up.
    #[error("cannot bind workload socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something other than a socket is in the way of a module socket.
    #[error("{path} exists and is not a socket")]
    NotASocket {
        /// The path in the way.
        path: PathBuf,
    },
}
