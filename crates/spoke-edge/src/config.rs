//! The `spoke-edge` configuration file (TOML).
//!
//! Keys that exist in Azure IoT Edge's `/etc/aziot/config.toml` keep their names and meaning
//! (`hostname`, `parent_hostname`, `trust_bundle_cert`, `[provisioning] source = "manual"` with
//! `connection_string`, `[edge_ca]` with `cert`/`pk`, `[moby_runtime] uri`/`network`); Spoke adds
//! what it needs (`bind`, `data_dir`, `[runtime] kind`, `[upstream]`). Azure sections that
//! Spoke does not use (`[agent]`, `[connect]`, `[listen]`, `[watchdog]`, ...) are accepted and
//! ignored, so an existing Azure file loads unchanged; any other unknown key is an error naming
//! the key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or a key is unknown or mistyped (the message names it).
    #[error("invalid configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key and line.
        message: String,
    },
    /// A value is well-formed TOML but not usable.
    #[error("invalid configuration {path}: {key}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration file. Unknown top-level keys land in `other_keys` and are refused
/// unless they are Azure's (serde cannot combine `deny_unknown_fields` with `flatten`).
#[derive(Debug, Clone, Deserialize)]
pub struct EdgeConfig {
    /// Host name modules use to reach the edge hub (Azure: `hostname`); the edge hub's server
    /// certificate is issued for it.
    pub hostname: String,
    /// Parent edge device, for nested edge (Azure: `parent_hostname`; not yet used).
    #[serde(default)]
    pub parent_hostname: Option<String>,
    /// Extra CA certificates modules should trust, as a `file://` URI (Azure:
    /// `trust_bundle_cert`); also trusted for the upstream connection.
    #[serde(default)]
    pub trust_bundle_cert: Option<String>,
    /// Address the edge hub listens on (Spoke). Default `127.0.0.1`.
    #[serde(default = "default_bind")]
    pub bind: IpAddr,
    /// Directory for the daemon's state: identities cache, last good deployment, module logs,
    /// workload sockets, the edge CA (Spoke). Default `/var/lib/spoke-edge`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How the device gets its identity.
    pub provisioning: Provisioning,
    /// The edge CA; a self-signed quickstart CA is generated when absent.
    #[serde(default)]
    pub edge_ca: Option<EdgeCa>,
    /// Which module runtime runs `docker` modules, and where (Spoke).
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Docker Engine settings (Azure: `[moby_runtime]`).
    #[serde(default)]
    pub moby_runtime: MobyRuntime,
    /// Ports of the upstream hub, for hubs not on the standard ports (Spoke; tests).
    #[serde(default)]
    pub upstream: Upstream,
    /// The edge hub's ports and store limit (Spoke).
    #[serde(default)]
    pub edge_hub: EdgeHubSettings,
    /// Other top-level keys: only Azure's sections that Spoke accepts and ignores
    /// ([`AZURE_ONLY_KEYS`]) are allowed here.
    #[serde(flatten)]
    pub other_keys: BTreeMap<String, toml::Value>,
}

/// Keys of Azure's config.toml that Spoke accepts without using them.
pub const AZURE_ONLY_KEYS: &[&str] = &[
    "agent",
    "connect",
    "listen",
    "watchdog",
    "image_garbage_collection",
    "aziot_keys",
    "preloaded_keys",
    "preloaded_certs",
    "tpm",
    "cert_issuance",
    "allow_elevated_docker_permissions",
    "prefer_module_identity_cache",
    "auto_reprovisioning_mode",
    "cloud_timeout_sec",
    "cloud_retries",
    "iotedge_max_requests",
];

/// `[provisioning]`: only manual provisioning from a connection string so far.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// `"manual"`.
    pub source: String,
    /// The edge device's connection string (`HostName=...;DeviceId=...;SharedAccessKey=...`).
    pub connection_string: String,
}

/// `[edge_ca]`: the CA certificate and key files (`file://` URIs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeCa {
    /// The CA certificate (PEM), `file:///...`.
    pub cert: String,
    /// Its private key (PEM), `file:///...`.
    pub pk: String,
}

/// Which runtime runs modules.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Docker Engine (modules of type `docker`; `process` modules still run as processes).
    #[default]
    Docker,
    /// No container engine: only `process` modules can run.
    Process,
}

/// `[runtime]` (Spoke).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `docker` (default) or `process`.
    #[serde(default)]
    pub kind: RuntimeKind,
}

/// `[moby_runtime]` (Azure names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobyRuntime {
    /// Docker Engine API URI. Default `unix:///var/run/docker.sock`.
    #[serde(default = "default_docker_uri")]
    pub uri: String,
    /// Network modules are attached to. Default `azure-iot-edge`.
    #[serde(default = "default_network")]
    pub network: String,
    /// Azure's content-trust settings (accepted, not used).
    #[serde(default)]
    pub content_trust: Option<toml::Value>,
}

impl Default for MobyRuntime {
    fn default() -> Self {
        Self {
            uri: default_docker_uri(),
            network: default_network(),
            content_trust: None,
        }
    }
}

/// `[upstream]` (Spoke): the hub's ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// MQTT over TLS port. Default 8883.
    #[serde(default = "default_mqtt_port")]
    pub mqtt_port: u16,
    /// HTTPS port. Default 443.
    #[serde(default = "default_https_port")]
    pub https_port: u16,
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            mqtt_port: default_mqtt_port(),
            https_port: default_https_port(),
        }
    }
}

/// `[edge_hub]` (Spoke): where the edge hub listens and how much disk its store may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeHubSettings {
    /// MQTT over TLS port on `bind`. Default 8883.
    #[serde(default = "default_mqtt_port")]
    pub mqtt_port: u16,
    /// HTTPS port on `bind` (module-to-module direct methods). Default 443.
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// Prometheus metrics port on `bind` (`GET /metrics`). Default 9600, as Azure's edgeHub.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
    /// Disk the message store may use, in bytes; when it is full new messages are refused
    /// (the sender gets no PUBACK and retries). Default 1 GiB.
    #[serde(default = "default_store_bytes")]
    pub max_store_bytes: u64,
}

impl Default for EdgeHubSettings {
    fn default() -> Self {
        Self {
            mqtt_port: default_mqtt_port(),
            https_port: default_https_port(),
            metrics_port: default_metrics_port(),
            max_store_bytes: default_store_bytes(),
        }
    }
}

fn default_metrics_port() -> u16 {
    9600
}
fn default_store_bytes() -> u64 {
    1 << 30
}
fn default_bind() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/spoke-edge")
}
fn default_docker_uri() -> String {
    "unix:///var/run/docker.sock".into()
}
fn default_network() -> String {
    "azure-iot-edge".into()
}
fn default_mqtt_port() -> u16 {
    8883
}
fn default_https_port() -> u16 {
    443
}

impl EdgeConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text (`path` is only used in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let value_error = |key, message: String| ConfigError::Value {
            path: path.to_owned(),
            key,
            message,
        };
        if let Some(key) = config
            .other_keys
            .keys()
            .find(|k| !AZURE_ONLY_KEYS.contains(&k.as_str()))
        {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("unknown key `{key}`"),
            });
        }
        if config.provisioning.source != "manual" {
            return Err(value_error(
                "provisioning.source",
                format!(
                    "{:?} is not supported; use \"manual\" with connection_string",
                    config.provisioning.source
                ),
            ));
        }
        spoke_core::connstr::ConnectionString::parse(&config.provisioning.connection_string)
            .map_err(|e| value_error("provisioning.connection_string", e.to_string()))?;
        if config.hostname.is_empty() {
            return Err(value_error("hostname", "must not be empty".into()));
        }
        for (key, uri) in [
            ("trust_bundle_cert", config.trust_bundle_cert.as_deref()),
            (
                "edge_ca.cert",
                config.edge_ca.as_ref().map(|c| c.cert.as_str()),
            ),
            ("edge_ca.pk", config.edge_ca.as_ref().map(|c| c.pk.as_str())),
        ] {
            if let Some(uri) = uri {
                file_uri_path(uri).map_err(|message| value_error(key, message))?;
            }
        }
        Ok(config)
    }
}

/// The path of a `file://` URI (Azure writes `file:///abs/path`); a bare absolute path is
/// accepted too.
pub fn file_uri_path(uri: &str) -> Result<PathBuf, String> {
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(format!(
            "{uri:?} is not a file:// URI with an absolute path"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: &str = "HostName=hub.local;DeviceId=edge1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::parse(text, Path::new("config.toml"))
    }

    #[test]
    fn an_azure_config_loads_unchanged() {
        let text = format!(
            r#"
hostname = "edge1.local"
trust_bundle_cert = "file:///var/secrets/trust-bundle.pem"
auto_reprovisioning_mode = "Dynamic"

[provisioning]
source = "manual"
connection_string = "{CS}"

[agent]
name = "edgeAgent"
type = "docker"
[agent.config]
image = "mcr.microsoft.com/azureiotedge-agent:1.5"

[connect]
workload_uri = "unix:///var/run/iotedge/workload.sock"

[edge_ca]
cert = "file:///var/secrets/edge-ca.pem"
pk = "file:///var/secrets/edge-ca.key.pem"

[moby_runtime]
uri = "unix:///var/run/docker.sock"
network = "azure-iot-edge"
"#
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.hostname, "edge1.local");
        assert_eq!(config.runtime.kind, RuntimeKind::Docker);
        assert_eq!(config.upstream.mqtt_port, 8883);
        assert_eq!(config.moby_runtime.network, "azure-iot-edge");
    }

    #[test]
    fn spoke_keys() {
        let text = format!(
            "hostname = \"e\"\nbind = \"127.0.0.2\"\ndata_dir = \"/tmp/e\"\n[runtime]\nkind = \"process\"\n[upstream]\nmqtt_port = 18883\n[provisioning]\nsource = \"manual\"\nconnection_string = \"{CS}\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.runtime.kind, RuntimeKind::Process);
        assert_eq!(config.bind, IpAddr::from([127, 0, 0, 2]));
        assert_eq!(config.upstream.mqtt_port, 18883);
        assert_eq!(config.upstream.https_port, 443);
    }

    #[test]
    fn bad_configs_name_the_key() {
        let base = format!("[provisioning]\nsource = \"manual\"\nconnection_string = \"{CS}\"\n");
        let cases = [
            (format!("hostnme = \"e\"\n{base}"), "hostnme"),
            (format!("hostname = \"e\"\n[runtime]\nkind = \"vm\"\n{base}"), "vm"),
            (
                "hostname = \"e\"\n[provisioning]\nsource = \"dps\"\nconnection_string = \"x\"\n".into(),
                "provisioning.source",
            ),
            (
                "hostname = \"e\"\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=h\"\n".into(),
                "provisioning.connection_string",
            ),
            (format!("hostname = \"e\"\ntrust_bundle_cert = \"relative.pem\"\n{base}"), "trust_bundle_cert"),
            (format!("hostname = \"e\"\n[upstream]\nmqtt = 1\n{base}"), "mqtt"),
        ];
        for (text, needle) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
    }
}
