//! Modules started by an edge runtime (Spoke Edge or Azure IoT Edge): the `IOTEDGE_*`
//! environment and the workload API client that fetches the trust bundle and signs SAS
//! tokens with a key that stays in the daemon (azure-iot-edge-contracts.md §1.2, §2.3; spec
//! §8).
//!
//! The workload API is HTTP/1.1 over the Unix socket named by `IOTEDGE_WORKLOADURI`; every
//! request opens its own connection (the daemon limits concurrent connections per socket),
//! carries `api-version=$IOTEDGE_APIVERSION`, and is bounded in time and response size.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use spoke_core::ids::{DeviceId, Identity, ModuleId};
use tokio::net::UnixStream;

use crate::auth::{Credentials, Signer, USER_AGENT};
use crate::config::ClientConfig;
use crate::error::{ConfigError, SignError, WorkloadError};
use crate::topics::quote;

/// Limit on one workload API request (the SDK's HTTP timeout, spec §8).
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest workload API response body read.
const MAX_RESPONSE: usize = 1 << 20;

/// The variables `create_from_edge_environment` requires (contracts §2.3 step 1).
const EDGE_VARIABLES: [&str; 7] = [
    "IOTEDGE_IOTHUBHOSTNAME",
    "IOTEDGE_DEVICEID",
    "IOTEDGE_MODULEID",
    "IOTEDGE_GATEWAYHOSTNAME",
    "IOTEDGE_MODULEGENERATIONID",
    "IOTEDGE_WORKLOADURI",
    "IOTEDGE_APIVERSION",
];

/// A client of one workload API socket.
#[derive(Debug, Clone)]
pub struct WorkloadClient {
    socket: PathBuf,
    api_version: String,
}

#[derive(Deserialize)]
struct TrustBundle {
    certificate: String,
}

#[derive(Deserialize)]
struct Digest {
    digest: String,
}

impl WorkloadClient {
    /// A client for `uri` (`unix:///path/to/workload.sock`) sending `api_version`.
    pub fn new(uri: &str, api_version: impl Into<String>) -> Result<Self, WorkloadError> {
        let path = uri
            .strip_prefix("unix://")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| WorkloadError::UnsupportedUri {
                uri: uri.to_owned(),
            })?;
        Ok(Self {
            socket: PathBuf::from(path),
            api_version: api_version.into(),
        })
    }

    /// `GET /trust-bundle`: the PEM certificates modules trust.
    pub async fn trust_bundle(&self) -> Result<String, WorkloadError> {
        let body = self.request(Method::GET, "/trust-bundle", None).await?;
        let bundle: TrustBundle =
            serde_json::from_slice(&body).map_err(WorkloadError::InvalidResponse)?;
        Ok(bundle.certificate)
    }

    /// `POST /modules/{module}/genid/{generation}/sign`: the HMAC-SHA256 digest of `data`
    /// under the module's key.
    pub async fn sign(
        &self,
        module: &ModuleId,
        generation_id: &str,
        data: &[u8],
    ) -> Result<Vec<u8>, WorkloadError> {
        let path = format!(
            "/modules/{}/genid/{}/sign",
            quote(module.as_str()),
            quote(generation_id)
        );
        let request =
            json!({"keyId": "primary", "algo": "HMACSHA256", "data": BASE64.encode(data)});
        let body = self
            .request(Method::POST, &path, Some(request.to_string()))
            .await?;
        let digest: Digest =
            serde_json::from_slice(&body).map_err(WorkloadError::InvalidResponse)?;
        BASE64
            .decode(digest.digest)
            .map_err(WorkloadError::InvalidDigest)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Bytes, WorkloadError> {
        tokio::time::timeout(WORKLOAD_TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| WorkloadError::Timeout)?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Bytes, WorkloadError> {
        let http = |e| WorkloadError::Http(Box::new(e));
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| WorkloadError::Connect {
                    path: self.socket.display().to_string(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "workload API connection ended with an error");
            }
        });
        let uri = format!("{path}?api-version={}", quote(&self.api_version));
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "localhost")
            .header(header::USER_AGENT, quote(USER_AGENT).as_ref());
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| WorkloadError::Http(Box::new(e)))?;
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(WorkloadError::Http)?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(WorkloadError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }
}

/// Signs through the workload API as one module generation.
#[derive(Debug, Clone)]
pub struct WorkloadSigner {
    client: WorkloadClient,
    module: ModuleId,
    generation_id: String,
}

impl WorkloadSigner {
    /// A signer for `module` at `generation_id`.
    pub fn new(client: WorkloadClient, module: ModuleId, generation_id: impl Into<String>) -> Self {
        Self {
            client,
            module,
            generation_id: generation_id.into(),
        }
    }
}

#[async_trait::async_trait]
impl Signer for WorkloadSigner {
    async fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        self.client
            .sign(&self.module, &self.generation_id, data)
            .await
            .map_err(|e| SignError(Box::new(e)))
    }
}

impl ClientConfig {
    /// The configuration of a module started by an edge runtime, from the process
    /// environment (see [`Self::from_edge_variables`]).
    pub async fn from_edge_environment() -> Result<Self, ConfigError> {
        Self::from_edge_variables(|name| std::env::var(name).ok()).await
    }

    /// The configuration of a module started by an edge runtime, reading variables through
    /// `lookup`, as azure-iot-device does (contracts §2.3): with all seven `IOTEDGE_*`
    /// variables, the gateway is the TLS target, trust comes from the workload API's trust
    /// bundle and tokens are signed by the workload API; otherwise, the development fallback
    /// `EdgeHubConnectionString` (with `GatewayHostName`) plus the PEM file
    /// `EdgeModuleCACertificateFile`. The port is [`crate::DEFAULT_PORT`]; set
    /// [`ClientConfig::port`] afterwards for an edge hub listening elsewhere.
    pub async fn from_edge_variables(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let values: Vec<Option<String>> = EDGE_VARIABLES.iter().map(|n| lookup(n)).collect();
        if let [
            Some(hub),
            Some(device),
            Some(module),
            Some(gateway),
            Some(generation),
            Some(uri),
            Some(api_version),
        ] = values.as_slice()
        {
            let invalid = |name| ConfigError::InvalidVariable { name };
            let device = DeviceId::parse(device).map_err(|_| invalid("IOTEDGE_DEVICEID"))?;
            let module = ModuleId::parse(module).map_err(|_| invalid("IOTEDGE_MODULEID"))?;
            let workload = WorkloadClient::new(uri, api_version.clone())
                .map_err(|_| invalid("IOTEDGE_WORKLOADURI"))?;
            let trust = workload
                .trust_bundle()
                .await
                .map_err(ConfigError::TrustBundle)?;
            let signer = WorkloadSigner::new(workload, module.clone(), generation.clone());
            let mut config = Self::new(
                hub.clone(),
                Identity::module(device, module),
                Credentials::Signer(Arc::new(signer)),
                trust,
            );
            config.host.clone_from(gateway);
            return Ok(config);
        }
        let Some(cs) = lookup("EdgeHubConnectionString") else {
            let missing = EDGE_VARIABLES
                .iter()
                .zip(&values)
                .find_map(|(name, value)| value.is_none().then_some(*name))
                .unwrap_or("EdgeHubConnectionString");
            return Err(ConfigError::MissingVariable { name: missing });
        };
        let path = lookup("EdgeModuleCACertificateFile").ok_or(ConfigError::MissingVariable {
            name: "EdgeModuleCACertificateFile",
        })?;
        let ca_pem = tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| ConfigError::ReadCaFile { path, source })?;
        Self::from_connection_string(&cs, ca_pem)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn workload_uris() {
        let client =
            WorkloadClient::new("unix:///var/run/iotedge/workload.sock", "2022-08-03").unwrap();
        assert_eq!(
            client.socket,
            PathBuf::from("/var/run/iotedge/workload.sock")
        );
        for uri in ["http://localhost:15580", "unix://", "/var/run/x.sock"] {
            assert!(matches!(
                WorkloadClient::new(uri, "2022-08-03"),
                Err(WorkloadError::UnsupportedUri { .. })
            ));
        }
    }

    #[tokio::test]
    async fn missing_variables_are_named() {
        let vars: HashMap<&str, &str> = HashMap::from([
            ("IOTEDGE_IOTHUBHOSTNAME", "hub"),
            ("IOTEDGE_DEVICEID", "dev1"),
        ]);
        let err = ClientConfig::from_edge_variables(|n| vars.get(n).map(|v| (*v).to_owned()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::MissingVariable {
                    name: "IOTEDGE_MODULEID"
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn development_fallback_reads_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "PEM").unwrap();
        let vars: HashMap<&str, String> = HashMap::from([
            (
                "EdgeHubConnectionString",
                "HostName=hub;DeviceId=d;ModuleId=m;SharedAccessKey=AAAA;GatewayHostName=edge"
                    .to_owned(),
            ),
            ("EdgeModuleCACertificateFile", ca.display().to_string()),
        ]);
        let config = ClientConfig::from_edge_variables(|n| vars.get(n).cloned())
            .await
            .unwrap();
        assert_eq!(config.host, "edge");
        assert_eq!(config.hub_hostname, "hub");
        assert_eq!(config.identity.to_string(), "d/m");
        assert_eq!(config.ca_pem, "PEM");
    }
}
