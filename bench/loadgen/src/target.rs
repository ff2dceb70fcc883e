//! The server under test: its address, the TLS trust and name to check, and the loopback source
//! addresses connections are spread over.
//!
//! Invariant: every connection goes to `addr`, which the command line restricts to a loopback
//! address, so a benchmark can never send traffic off this machine.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Options shared by every mode that connects to a server.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Server address (`IP:PORT`); must be a loopback address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Name checked against the server certificate (and sent as SNI); defaults to the IP of
    /// `--addr`.
    #[arg(long)]
    pub server_name: Option<String>,
    /// PEM file with the CA certificate(s) that signed the server certificate.
    #[arg(long)]
    pub ca_file: PathBuf,
    /// Loopback source addresses to bind client sockets to, used in turn (comma-separated);
    /// more addresses give more ephemeral ports. Empty: let the kernel choose.
    #[arg(long, value_delimiter = ',')]
    pub source_ip: Vec<IpAddr>,
    /// Time allowed for one TCP connect plus TLS handshake.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout_secs: u64,
}

/// A resolved [`TargetArgs`]: what a connection needs, cheap to share between tasks.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    name: ServerName<'static>,
    connector: TlsConnector,
    sources: Arc<[IpAddr]>,
    timeout: Duration,
}

impl Target {
    /// Checks the addresses and loads the CA file.
    pub fn new(args: &TargetArgs) -> anyhow::Result<Self> {
        if !args.addr.ip().is_loopback() {
            bail!("--addr {} is not a loopback address", args.addr);
        }
        if let Some(ip) = args.source_ip.iter().find(|ip| !ip.is_loopback()) {
            bail!("--source-ip {ip} is not a loopback address");
        }
        let name = args
            .server_name
            .clone()
            .unwrap_or_else(|| args.addr.ip().to_string());
        let name = ServerName::try_from(name.clone())
            .with_context(|| format!("invalid server name {name}"))?;
        Ok(Self {
            addr: args.addr,
            name,
            connector: TlsConnector::from(Arc::new(client_config(&args.ca_file)?)),
            sources: args.source_ip.clone().into(),
            timeout: Duration::from_secs(args.connect_timeout_secs),
        })
    }

    /// The server's host name as clients name it (SNI and SAS resources).
    pub fn server_name(&self) -> String {
        self.name.to_str().into_owned()
    }

    /// Time allowed for one connect step (TCP plus TLS, or an MQTT reply).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Opens connection number `index` (which picks its source address): TCP, then TLS.
    pub async fn connect(&self, index: usize) -> anyhow::Result<TlsStream<TcpStream>> {
        let attempt = async {
            let tcp = match self.sources.get(index % self.sources.len().max(1)) {
                None => TcpStream::connect(self.addr).await,
                Some(source) => {
                    let socket = if source.is_ipv4() {
                        TcpSocket::new_v4()?
                    } else {
                        TcpSocket::new_v6()?
                    };
                    socket.bind(SocketAddr::new(*source, 0))?;
                    socket.connect(self.addr).await
                }
            }
            .context("TCP connect")?;
            tcp.set_nodelay(true)?;
            self.connector
                .connect(self.name.clone(), tcp)
                .await
                .context("TLS handshake")
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .context("connect timed out")?
    }
}

/// A client configuration (ring provider, TLS 1.2 and 1.3) trusting only the CAs in `ca_file`.
fn client_config(ca_file: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let pem =
        std::fs::read(ca_file).with_context(|| format!("cannot read {}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.with_context(|| format!("invalid PEM in {}", ca_file.display()))?)?;
    }
    if roots.is_empty() {
        bail!("no certificate in {}", ca_file.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
