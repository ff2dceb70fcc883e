//! The workload API without sockets: a request and the identity of its caller in, a reply
//! out (azure-iot-edge-contracts.md §1.2). [`super::server`] feeds it from HTTP connections;
//! tests and fuzzing call it directly.
//!
//! Checks run in this order, so a caller that fails one learns nothing from later ones:
//! the caller is one of the socket module's processes (else 403); the route exists (404) and
//! takes the method (405); `api-version` is known (400); the module named in the path is the
//! socket's module (403); the body is valid (400).

use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::pki::{IssuedCertificate, PkiError};
use time::OffsetDateTime;
use time::macros::format_description;

use super::crypto::{self, CryptoError, MasterKey};
use super::wire::{
    CertificateResponse, DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse,
    ErrorResponse, PrivateKey, ServerCertRequest, SignRequest, SignResponse, TrustBundleResponse,
};
use super::{CallerCheck, KeyStore, TrustConfig, WorkloadConfig};

/// The `api-version` values the workload API accepts (edgelet `version.rs`). Every route
/// exists since 2018-06-28, so every version is accepted everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// `2018-06-28`
    V2018_06_28,
    /// `2019-01-30`
    V2019_01_30,
    /// `2019-10-22`
    V2019_10_22,
    /// `2019-11-05`
    V2019_11_05,
    /// `2020-07-07`, sent by edgeHub's and edgeAgent's workload clients.
    V2020_07_07,
    /// `2021-12-07`
    V2021_12_07,
    /// `2022-08-03`, the `IOTEDGE_APIVERSION` every module gets.
    V2022_08_03,
}

impl ApiVersion {
    /// Every version, oldest first.
    pub const ALL: [Self; 7] = [
        Self::V2018_06_28,
        Self::V2019_01_30,
        Self::V2019_10_22,
        Self::V2019_11_05,
        Self::V2020_07_07,
        Self::V2021_12_07,
        Self::V2022_08_03,
    ];

    /// The version as it appears in the query string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2018_06_28 => "2018-06-28",
            Self::V2019_01_30 => "2019-01-30",
            Self::V2019_10_22 => "2019-10-22",
            Self::V2019_11_05 => "2019-11-05",
            Self::V2020_07_07 => "2020-07-07",
            Self::V2021_12_07 => "2021-12-07",
            Self::V2022_08_03 => "2022-08-03",
        }
    }

    /// Parses a version string; `None` if it is not one of [`ApiVersion::ALL`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The `api-version` parameter of a query string (the first one, percent-decoded).
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let value = query
            .unwrap_or("")
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| decode(key) == "api-version")
            .map(|(_, value)| decode(value))
            .ok_or(ApiError::MissingApiVersion)?;
        Self::parse(&value).ok_or(ApiError::UnsupportedApiVersion(value))
    }
}

/// A workload API operation, with the module named in its path (percent-decoded, not yet
/// checked against the socket's module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /trust-bundle`
    TrustBundle,
    /// `GET /manifest-trust-bundle`
    ManifestTrustBundle,
    /// `POST /modules/{module}/genid/{genid}/sign`
    Sign(String),
    /// `POST /modules/{module}/genid/{genid}/encrypt`
    Encrypt(String),
    /// `POST /modules/{module}/genid/{genid}/decrypt`
    Decrypt(String),
    /// `POST /modules/{module}/genid/{genid}/certificate/server`
    ServerCertificate(String),
    /// `POST /modules/{module}/certificate/identity`
    IdentityCertificate(String),
}

impl Route {
    /// Matches a request path. The generation id is ignored, as in Azure.
    pub fn parse(method: &Method, path: &str) -> Result<Self, ApiError> {
        let not_found = || ApiError::NotFound {
            path: path.to_owned(),
        };
        let segments: Vec<&str> = path
            .strip_prefix('/')
            .ok_or_else(not_found)?
            .split('/')
            .collect();
        let module = |raw: &str| decode(raw);
        let (route, expected) = match segments.as_slice() {
            ["trust-bundle"] => (Self::TrustBundle, Method::GET),
            ["manifest-trust-bundle"] => (Self::ManifestTrustBundle, Method::GET),
            ["modules", m, "genid", _, "sign"] => (Self::Sign(module(m)), Method::POST),
            ["modules", m, "genid", _, "encrypt"] => (Self::Encrypt(module(m)), Method::POST),
            ["modules", m, "genid", _, "decrypt"] => (Self::Decrypt(module(m)), Method::POST),
            ["modules", m, "genid", _, "certificate", "server"] => {
                (Self::ServerCertificate(module(m)), Method::POST)
            }
            ["modules", m, "certificate", "identity"] => {
                (Self::IdentityCertificate(module(m)), Method::POST)
            }
            _ => return Err(not_found()),
        };
        if *method == expected {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed {
                method: method.clone(),
                path: path.to_owned(),
            })
        }
    }

    /// The module the path names, for module-scoped routes.
    pub fn module(&self) -> Option<&str> {
        match self {
            Self::TrustBundle | Self::ManifestTrustBundle => None,
            Self::Sign(m)
            | Self::Encrypt(m)
            | Self::Decrypt(m)
            | Self::ServerCertificate(m)
            | Self::IdentityCertificate(m) => Some(m),
        }
    }
}

/// Percent-decodes a path segment or query component; invalid UTF-8 becomes U+FFFD, which no
/// module id contains.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Why a request failed. [`ApiError::status`] is its HTTP status; the reply body is
/// `{"message": <Display>}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The connecting process is not one of the socket module's processes.
    #[error("the caller is not a process of module {0}")]
    NotModuleProcess(ModuleId),
    /// The path names a module other than the socket's.
    #[error("module {requested:?} cannot be used on the workload socket of module {socket}")]
    WrongModule {
        /// The module in the path.
        requested: String,
        /// The socket's module.
        socket: ModuleId,
    },
    /// No such route.
    #[error("no route for {path}")]
    NotFound {
        /// The request path.
        path: String,
    },
    /// The route exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The request method.
        method: Method,
        /// The request path.
        path: String,
    },
    /// No `api-version` query parameter.
    #[error("the api-version query parameter is missing")]
    MissingApiVersion,
    /// An `api-version` this server does not know.
    #[error("unsupported api-version {0:?}")]
    UnsupportedApiVersion(String),
    /// The body is not the JSON the route expects.
    #[error("invalid request body: {0}")]
    Json(serde_json::Error),
    /// A body field is not valid base64.
    #[error("{0} is not valid base64")]
    Base64(&'static str),
    /// The requested common name cannot be put in a certificate.
    #[error("invalid commonName: {0}")]
    CommonName(&'static str),
    /// The body could not be read from the connection.
    #[error("cannot read the request body")]
    BodyRead,
    /// The body is larger than the server accepts.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The daemon holds no key for the module.
    #[error("module {0} has no identity key")]
    NoKey(ModuleId),
    /// Decryption failed: a changed ciphertext, or another IV.
    #[error("cannot decrypt: {0}")]
    Decrypt(CryptoError),
    /// Encryption failed.
    #[error("cannot encrypt: {0}")]
    Encrypt(CryptoError),
    /// The edge CA could not issue a certificate.
    #[error("cannot issue the certificate")]
    Certificate(#[source] PkiError),
}

impl ApiError {
    /// The HTTP status of the error reply.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotModuleProcess(_) | Self::WrongModule { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } | Self::NoKey(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingApiVersion
            | Self::UnsupportedApiVersion(_)
            | Self::BodyRead
            | Self::Json(_)
            | Self::Base64(_)
            | Self::CommonName(_)
            | Self::Decrypt(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Encrypt(_) | Self::Certificate(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A reply: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: StatusCode, value: &impl Serialize) -> Self {
        // Serializing these plain structs of strings cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_default();
        Self { status, body }
    }
}

impl From<&ApiError> for Reply {
    fn from(err: &ApiError) -> Self {
        Self::json(
            err.status(),
            &ErrorResponse {
                message: err.to_string(),
            },
        )
    }
}

/// Who is calling: the module whose socket the connection arrived on, and the peer PID.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The socket's module.
    pub module: &'a ModuleId,
    /// The connecting process (`SO_PEERCRED`), if the OS reported one.
    pub pid: Option<u32>,
}

/// One HTTP request as the core sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path, still percent-encoded.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The body, parsed as JSON whatever the `Content-Type` (the Python SDK sends none).
    pub body: &'a [u8],
}

/// How long a caller not (yet) known as a process of the socket's module is given to become
/// one: the time from a module's process start to the runtime reporting its PID.
pub const CALLER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The workload API's state: keys, trust and certificate settings. Shared by every module
/// socket.
pub struct Workload {
    hub_hostname: String,
    device_id: DeviceId,
    master_key: MasterKey,
    server_cert_validity: time::Duration,
    identity_cert_validity: time::Duration,
    trust: RwLock<Arc<TrustConfig>>,
    keys: Arc<dyn KeyStore>,
    callers: Arc<dyn CallerCheck>,
}

impl Workload {
    /// The core for `config`, signing with `keys` and authorizing with `callers`.
    pub fn new(
        config: &WorkloadConfig,
        keys: Arc<dyn KeyStore>,
        callers: Arc<dyn CallerCheck>,
    ) -> Self {
        Self {
            hub_hostname: config.hub_hostname.clone(),
            device_id: config.device_id.clone(),
            master_key: config.master_key.clone(),
            server_cert_validity: config.server_cert_validity,
            identity_cert_validity: config.identity_cert_validity,
            trust: RwLock::new(Arc::new(config.trust.clone())),
            keys,
            callers,
        }
    }

    /// Waits, up to [`CALLER_GRACE`], until `pid` is known as a process of `module` (see
    /// [`CallerCheck::changes`]); [`Self::handle`] decides either way.
    pub async fn await_caller(&self, module: &ModuleId, pid: u32) {
        let Some(changes) = self.callers.changes() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + CALLER_GRACE;
        loop {
            let recorded = changes.notified();
            tokio::pin!(recorded);
            recorded.as_mut().enable();
            if self.callers.is_module_process(module, pid)
                || tokio::time::timeout_at(deadline, recorded).await.is_err()
            {
                return;
            }
        }
    }

    /// Replaces the edge CA and trust bundles (after a renewal); later requests use the new ones.
    pub fn replace_trust(&self, trust: TrustConfig) {
        *self.trust.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(trust);
    }

    fn trust(&self) -> Arc<TrustConfig> {
        Arc::clone(&self.trust.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Answers `request` from `caller` at time `now` (used for certificate validity).
    pub fn handle(&self, caller: Caller<'_>, request: Request<'_>, now: OffsetDateTime) -> Reply {
        match self.try_handle(caller, request, now) {
            Ok(reply) => reply,
            Err(err) => Reply::from(&err),
        }
    }

    fn try_handle(
        &self,
        caller: Caller<'_>,
        request: Request<'_>,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let module = caller.module;
        if !caller
            .pid
            .is_some_and(|pid| self.callers.is_module_process(module, pid))
        {
            return Err(ApiError::NotModuleProcess(module.clone()));
        }
        let route = Route::parse(request.method, request.path)?;
        ApiVersion::from_query(request.query)?;
        if let Some(requested) = route.module()
            && strip_dollar(requested) != strip_dollar(module.as_str())
        {
            return Err(ApiError::WrongModule {
                requested: requested.to_owned(),
                socket: module.clone(),
            });
        }
        let body = request.body;
        let ok = StatusCode::OK;
        Ok(match route {
            Route::TrustBundle => {
                let trust = self.trust();
                let mut certificate = trust.edge_ca.cert_pem.clone();
                if let Some(extra) = &trust.trust_bundle {
                    if !certificate.ends_with('\n') {
                        certificate.push('\n');
                    }
                    certificate.push_str(extra);
                }
                Reply::json(ok, &TrustBundleResponse { certificate })
            }
            Route::ManifestTrustBundle => {
                let certificate = self
                    .trust()
                    .manifest_trust_bundle
                    .clone()
                    .unwrap_or_default();
                Reply::json(ok, &TrustBundleResponse { certificate })
            }
            Route::Sign(_) => {
                let req: SignRequest = parse_body(body)?;
                let data = decode_b64(&req.data, "data")?;
                let key = self
                    .keys
                    .module_key(module)
                    .ok_or_else(|| ApiError::NoKey(module.clone()))?;
                let digest = BASE64.encode(crypto::sign(&key, &data));
                Reply::json(ok, &SignResponse { digest })
            }
            Route::Encrypt(_) => {
                let req: EncryptRequest = parse_body(body)?;
                let plaintext = decode_b64(&req.plaintext, "plaintext")?;
                let iv = decode_b64(&req.initialization_vector, "initializationVector")?;
                let sealed = crypto::encrypt(&self.master_key, module, &iv, &plaintext)
                    .map_err(ApiError::Encrypt)?;
                let ciphertext = BASE64.encode(sealed);
                Reply::json(ok, &EncryptResponse { ciphertext })
            }
            Route::Decrypt(_) => {
                let req: DecryptRequest = parse_body(body)?;
                let ciphertext = decode_b64(&req.ciphertext, "ciphertext")?;
                let iv = decode_b64(&req.initialization_vector, "initializationVector")?;
                let opened = crypto::decrypt(&self.master_key, module, &iv, &ciphertext)
                    .map_err(ApiError::Decrypt)?;
                let plaintext = BASE64.encode(opened);
                Reply::json(ok, &DecryptResponse { plaintext })
            }
            Route::ServerCertificate(_) => {
                let req: ServerCertRequest = parse_body(body)?;
                check_common_name(&req.common_name)?;
                let names = [req.common_name, strip_dollar(module.as_str()).to_owned()];
                let trust = self.trust();
                let issued = trust
                    .edge_ca
                    .issue_server(&names, now, self.server_cert_validity)
                    .map_err(ApiError::Certificate)?;
                certificate_reply(&trust, issued)
            }
            Route::IdentityCertificate(_) => {
                // The optional body ({"expiration"}) is ignored, as in Azure.
                let uri = format!(
                    "azureiot://{}/devices/{}/modules/{}",
                    self.hub_hostname, self.device_id, module
                );
                let trust = self.trust();
                let issued = trust
                    .edge_ca
                    .issue_identity(module.as_str(), &uri, now, self.identity_cert_validity)
                    .map_err(ApiError::Certificate)?;
                certificate_reply(&trust, issued)
            }
        })
    }
}

/// `name` without one leading `$` (`$edgeHub` and `edgeHub` name the same module, as in
/// Azure's caller check).
fn strip_dollar(name: &str) -> &str {
    name.strip_prefix('$').unwrap_or(name)
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::Json)
}

fn decode_b64(value: &str, field: &'static str) -> Result<Vec<u8>, ApiError> {
    BASE64.decode(value).map_err(|_| ApiError::Base64(field))
}

/// A common name must fit X.509's 64-character limit and be printable ASCII without spaces.
fn check_common_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        Err(ApiError::CommonName("it is empty"))
    } else if name.len() > 64 {
        Err(ApiError::CommonName("it is longer than 64 characters"))
    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
        Err(ApiError::CommonName(
            "it contains characters other than printable ASCII",
        ))
    } else {
        Ok(())
    }
}

fn certificate_reply(trust: &TrustConfig, issued: IssuedCertificate) -> Reply {
    let mut certificate = issued.cert_pem;
    if !certificate.ends_with('\n') {
        certificate.push('\n');
    }
    certificate.push_str(&trust.edge_ca.cert_pem);
    let expiration = issued
        .not_after
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+00:00"
        ))
        .unwrap_or_default();
    Reply::json(
        StatusCode::CREATED,
        &CertificateResponse {
            private_key: PrivateKey {
                kind: "key",
                bytes: issued.key_pem,
            },
            certificate,
            expiration,
        },
    )
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
