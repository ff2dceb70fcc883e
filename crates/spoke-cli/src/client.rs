//! A small client of the hub's HTTPS API: the hub named by a service connection string, trusted
//! through a CA file, each request signed with a fresh SAS token (as the Azure service SDK does).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use reqwest::{Method, RequestBuilder, Response};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use spoke_core::connstr::ConnectionString;
use spoke_core::sas::service_token;

/// The API version the CLI sends (what azure-iot-hub 2.7.0 sends).
const API_VERSION: &str = "2021-04-12";

/// A signed HTTPS client for one hub.
#[derive(Debug)]
pub struct HubClient {
    http: reqwest::Client,
    host: String,
    policy: String,
    key: String,
}

impl HubClient {
    /// Builds a client from a service connection string and an optional CA file.
    pub fn new(connection_string: &str, ca_file: Option<&str>) -> anyhow::Result<Self> {
        let cs =
            ConnectionString::parse(connection_string).context("invalid hub connection string")?;
        let (Some(policy), Some(key)) = (cs.shared_access_key_name(), cs.shared_access_key())
        else {
            bail!("the hub connection string needs SharedAccessKeyName and SharedAccessKey");
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).with_context(|| format!("cannot read CA file {path}"))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(cert.with_context(|| format!("invalid PEM in {path}"))?)
                    .with_context(|| format!("unusable CA certificate in {path}"))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTPS client")?;
        Ok(Self {
            http,
            host: cs.host_name().to_owned(),
            policy: policy.to_owned(),
            key: key.to_owned(),
        })
    }

    /// A request to `path` (already percent-encoded), signed, with the api-version.
    pub fn request(&self, method: Method, path: &str) -> anyhow::Result<RequestBuilder> {
        let expiry = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
        let token = service_token(&self.host, &self.policy, &self.key, expiry)?;
        let url = format!("https://{}{path}", self.host);
        Ok(self
            .http
            .request(method, url)
            .query(&[("api-version", API_VERSION)])
            .header("authorization", token))
    }

    /// Sends a request and returns the JSON answer (or `null` for an empty one); a non-2xx
    /// answer becomes an error carrying the hub's message.
    pub async fn json(&self, builder: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(builder).await?;
        let text = response.text().await?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).context("the hub answered with invalid JSON")
    }

    /// Sends a request; a non-2xx answer becomes an error carrying the hub's message.
    pub async fn send(&self, builder: RequestBuilder) -> anyhow::Result<Response> {
        let response = builder
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {}", self.host))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("Message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or(text);
        bail!("the hub answered {status}: {message}")
    }

    /// The hub's host name.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Percent-encodes one path segment (ids may contain reserved characters).
pub fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}
