//! Module identities in the hub, managed by the edge device itself.
//!
//! The edge device authenticates to the hub's registry REST API with a SAS token signed by its
//! own key (scope `{hub}/devices/{device}`), as Azure's identity service does, and creates,
//! reads and deletes the identities of its modules (`managedBy: IotEdge`). Every identity the
//! daemon learns is kept in [`IdentityCache`] (a file in the data directory) so that modules get
//! their keys after a reboot without network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_core::sas::device_token;

/// The API version the daemon sends.
const API_VERSION: &str = "2021-04-12";

/// Errors talking to the hub's registry or the cache.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The hub could not be reached (offline: use the cache).
    #[error("cannot reach the hub")]
    Unreachable(#[source] reqwest::Error),
    /// The hub refused the request.
    #[error("the hub answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The hub's message.
        message: String,
    },
    /// The hub's answer is not what the registry API returns.
    #[error("unexpected answer from the hub: {0}")]
    Protocol(String),
    /// The trust bundle is unusable.
    #[error("invalid trust bundle: {0}")]
    Trust(String),
    /// The device key is not valid base64.
    #[error("the device key is invalid")]
    Key(#[from] spoke_core::sas::SasError),
    /// The cache file could not be read or written.
    #[error("identity cache {path}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A module identity: what a module needs to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleIdentity {
    /// Module id.
    pub module_id: ModuleId,
    /// Generation id (`IOTEDGE_MODULEGENERATIONID`).
    pub generation_id: String,
    /// Primary symmetric key (base64); never handed to the module.
    pub primary_key: String,
}

/// The edge device's credentials, from its connection string.
#[derive(Clone)]
pub struct DeviceCredentials {
    /// The hub's host name (`HostName=`).
    pub hub_host: String,
    /// The edge device.
    pub device_id: DeviceId,
    /// The device's key (base64).
    pub key: String,
}

impl std::fmt::Debug for DeviceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredentials")
            .field("hub_host", &self.hub_host)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// The hub's registry API as the edge device uses it.
#[derive(Debug, Clone)]
pub struct IdentityClient {
    http: reqwest::Client,
    base: String,
    credentials: DeviceCredentials,
}

impl IdentityClient {
    /// A client for the hub at `https://{hub_host}:{port}`, trusting the CA certificates in
    /// `trust_pem`.
    pub fn new(
        credentials: DeviceCredentials,
        https_port: u16,
        trust_pem: &str,
    ) -> Result<Self, IdentityError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(trust_pem.as_bytes()) {
            let cert = cert.map_err(|e| IdentityError::Trust(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| IdentityError::Trust(e.to_string()))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| IdentityError::Trust(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(IdentityError::Unreachable)?;
        let base = format!("https://{}:{https_port}", credentials.hub_host);
        Ok(Self {
            http,
            base,
            credentials,
        })
    }

    fn token(&self) -> Result<String, IdentityError> {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 3600;
        let resource = format!(
            "{}/devices/{}",
            self.credentials.hub_host, self.credentials.device_id
        );
        Ok(device_token(&resource, &self.credentials.key, expiry)?)
    }

    fn module_url(&self, module: &ModuleId) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "{}/devices/{}/modules/{}?api-version={API_VERSION}",
            self.base,
            enc(self.credentials.device_id.as_str()),
            enc(module.as_str())
        )
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Option<Value>, IdentityError> {
        let response = request
            .header("authorization", self.token()?)
            .send()
            .await
            .map_err(IdentityError::Unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(IdentityError::Unreachable)?;
        match status {
            200..=299 if text.is_empty() => Ok(Some(Value::Null)),
            200..=299 => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| IdentityError::Protocol(e.to_string())),
            404 => Ok(None),
            _ => Err(IdentityError::Refused {
                status,
                message: text,
            }),
        }
    }

    /// The module's identity, created (`managedBy: IotEdge`, keys generated by the hub) if the
    /// hub has none.
    pub async fn get_or_create(&self, module: &ModuleId) -> Result<ModuleIdentity, IdentityError> {
        let url = self.module_url(module);
        if let Some(entry) = self.send(self.http.get(&url)).await? {
            return parse_identity(module, &entry);
        }
        let body = json!({
            "moduleId": module,
            "deviceId": self.credentials.device_id,
            "managedBy": "IotEdge",
            "authentication": {"type": "sas", "symmetricKey": {}},
        });
        let entry = self
            .send(self.http.put(&url).json(&body))
            .await?
            .ok_or_else(|| IdentityError::Protocol("module create answered 404".into()))?;
        parse_identity(module, &entry)
    }

    /// Deletes a module identity (no error if it is already gone).
    pub async fn delete(&self, module: &ModuleId) -> Result<(), IdentityError> {
        let request = self
            .http
            .delete(self.module_url(module))
            .header("if-match", "\"*\"");
        self.send(request).await.map(|_| ())
    }
}

fn parse_identity(module: &ModuleId, entry: &Value) -> Result<ModuleIdentity, IdentityError> {
    let key = entry["authentication"]["symmetricKey"]["primaryKey"]
        .as_str()
        .ok_or_else(|| IdentityError::Protocol(format!("module {module} has no primary key")))?;
    Ok(ModuleIdentity {
        module_id: module.clone(),
        generation_id: entry["generationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        primary_key: key.to_owned(),
    })
}

/// Module identities known to the daemon, persisted as JSON (mode 0600) in the data directory.
#[derive(Debug)]
pub struct IdentityCache {
    path: PathBuf,
    identities: BTreeMap<ModuleId, ModuleIdentity>,
}

impl IdentityCache {
    /// Loads the cache at `path` (empty if the file does not exist; a corrupt file is logged
    /// and replaced on the next save).
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let identities = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "identity cache unreadable; starting empty");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(IdentityError::Cache {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            identities,
        })
    }

    /// A cached identity.
    pub fn get(&self, module: &ModuleId) -> Option<&ModuleIdentity> {
        self.identities.get(module)
    }

    /// Remembers (and persists) an identity.
    pub fn put(&mut self, identity: ModuleIdentity) -> Result<(), IdentityError> {
        if self.identities.get(&identity.module_id) == Some(&identity) {
            return Ok(());
        }
        self.identities.insert(identity.module_id.clone(), identity);
        self.save()
    }

    /// Forgets (and persists) an identity.
    pub fn remove(&mut self, module: &ModuleId) -> Result<(), IdentityError> {
        if self.identities.remove(module).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), IdentityError> {
        let bytes = serde_json::to_vec_pretty(&self.identities).unwrap_or_default();
        crate::state_file::write(&self.path, &bytes).map_err(|source| IdentityError::Cache {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trips_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identities.json");
        let mut cache = IdentityCache::load(&path).unwrap();
        let id = ModuleIdentity {
            module_id: ModuleId::parse("filter").unwrap(),
            generation_id: "g1".into(),
            primary_key: "a2V5".into(),
        };
        cache.put(id.clone()).unwrap();
        let again = IdentityCache::load(&path).unwrap();
        assert_eq!(again.get(&id.module_id), Some(&id));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            IdentityCache::load(&path)
                .unwrap()
                .get(&id.module_id)
                .is_none()
        );
    }

    #[test]
    fn identities_parse_from_registry_json() {
        let module = ModuleId::parse("m").unwrap();
        let entry = json!({"moduleId": "m", "generationId": "7", "authentication": {"symmetricKey": {"primaryKey": "k"}}});
        assert_eq!(parse_identity(&module, &entry).unwrap().primary_key, "k");
        assert!(parse_identity(&module, &json!({})).is_err());
    }
}
