//! A client of the edge daemon's management API on its Unix socket
//! (`spoke_edge::management`): HTTP/1.1 over the socket, JSON bodies from
//! `spoke_edge::management::wire`, errors from their `{"message"}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use reqwest::{Method, Response};
use spoke_edge::management::wire::{ErrorBody, ModuleDetails, ModuleList, StatusResponse};

use crate::client::segment;

/// A TLS client configuration (ring, TLS 1.2 and 1.3) trusting only `roots`. reqwest needs one
/// even for plain HTTP on a socket, as the CLI builds it without a default crypto provider.
pub fn tls_config(roots: rustls::RootCertStore) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Which log lines to ask for; the values are passed on as the server's query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// `tail`: a line count or `all`.
    pub tail: Option<String>,
    /// `since`: a duration, an RFC 3339 time or Unix seconds.
    pub since: Option<String>,
    /// `follow`.
    pub follow: bool,
}

impl LogQuery {
    /// The query string, without the `?`.
    pub fn to_query(&self) -> String {
        let mut params = Vec::new();
        if let Some(tail) = &self.tail {
            params.push(format!("tail={}", segment(tail)));
        }
        if let Some(since) = &self.since {
            params.push(format!("since={}", segment(since)));
        }
        if self.follow {
            params.push("follow=true".to_owned());
        }
        params.join("&")
    }
}

/// The management API of one daemon.
#[derive(Debug)]
pub struct ManagementClient {
    http: reqwest::Client,
    socket: PathBuf,
}

impl ManagementClient {
    /// A client of the socket at `socket` (nothing is connected yet).
    pub fn new(socket: &Path) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(rustls::RootCertStore::empty())?)
            .unix_socket(socket)
            .build()
            .context("cannot build the management client")?;
        Ok(Self {
            http,
            socket: socket.to_owned(),
        })
    }

    /// `GET /modules`.
    pub async fn list(&self) -> anyhow::Result<Vec<ModuleDetails>> {
        let list: ModuleList = self.send(Method::GET, "/modules").await?.json().await?;
        Ok(list.modules)
    }

    /// `GET /modules/{m}/logs`: the response, whose body is the log text.
    pub async fn logs(&self, module: &str, query: &LogQuery) -> anyhow::Result<Response> {
        let path = format!("/modules/{}/logs?{}", segment(module), query.to_query());
        self.send(Method::GET, &path).await
    }

    /// `POST /modules/{m}/restart`.
    pub async fn restart(&self, module: &str) -> anyhow::Result<()> {
        let path = format!("/modules/{}/restart", segment(module));
        self.send(Method::POST, &path).await.map(drop)
    }

    /// `GET /status`.
    pub async fn status(&self) -> anyhow::Result<StatusResponse> {
        Ok(self.send(Method::GET, "/status").await?.json().await?)
    }

    async fn send(&self, method: Method, path: &str) -> anyhow::Result<Response> {
        let response = self
            .http
            .request(method, format!("http://localhost{path}"))
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the management socket {} (is spoke-edge running?)",
                    self.socket.display()
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(error) => bail!("{} ({status})", error.message),
            Err(_) => bail!("management API answered {status}: {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_queries_are_encoded() {
        let query = LogQuery {
            tail: Some("10".into()),
            since: Some("2026-05-01T10:00:00+02:00".into()),
            follow: true,
        };
        assert_eq!(
            query.to_query(),
            "tail=10&since=2026%2D05%2D01T10%3A00%3A00%2B02%3A00&follow=true"
        );
        assert_eq!(LogQuery::default().to_query(), "");
    }
}
