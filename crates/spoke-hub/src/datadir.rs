//! The data directory: created on first start, reused afterwards.
//!
//! Layout (ARCHITECTURE.md contracts marked *):
//! - `ca.pem`* — the root CA that signs the server certificate; clients trust this file.
//! - `ca.key` — the CA's private key (mode 0600).
//! - `server.pem`, `server.key` — the TLS server certificate, re-issued at every start so that
//!   it always covers the current `--hostname` and `--bind`.
//! - `service.connstr`* — the `iothubowner` connection string, no trailing `;`.
//! - `hub.db` — the SQL store (identities, twins, sessions, C2D queues, policies).
//! - `events/` — the built-in events log (telemetry).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use spoke_core::connstr::ConnectionString;
use spoke_core::pki::{CertificateAuthority, IssuedCertificate};
use time::{Duration, OffsetDateTime};

use crate::config::HubConfig;
use crate::policies::Policy;

/// Files and material loaded from the data directory.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    /// The root CA.
    pub ca: CertificateAuthority,
    /// This start's server certificate.
    pub server: IssuedCertificate,
}

impl DataDir {
    /// Creates the directory and its CA if needed, and issues this start's server certificate.
    pub fn open(config: &HubConfig) -> anyhow::Result<Self> {
        let root = config.data_dir.clone();
        fs::create_dir_all(&root)
            .with_context(|| format!("cannot create data directory {}", root.display()))?;
        let now = OffsetDateTime::now_utc();
        let ca_pem = root.join("ca.pem");
        let ca_key = root.join("ca.key");
        let ca = if ca_pem.exists() && ca_key.exists() {
            CertificateAuthority {
                cert_pem: read(&ca_pem)?,
                key_pem: read(&ca_key)?,
            }
        } else {
            let ca = CertificateAuthority::generate(
                &format!("Spoke Hub root CA for {}", config.hostname),
                now,
                Duration::days(3650),
            )?;
            write_private(&ca_key, &ca.key_pem)?;
            write_public(&ca_pem, &ca.cert_pem)?;
            ca
        };
        let mut names = vec![config.hostname.clone(), config.bind.to_string()];
        names.push("localhost".into());
        let server = ca
            .issue_server(&names, now, Duration::days(365))
            .context("cannot issue the server certificate")?;
        write_private(&root.join("server.key"), &server.key_pem)?;
        write_public(&root.join("server.pem"), &server.cert_pem)?;
        Ok(Self { root, ca, server })
    }

    /// Path of the SQL database.
    pub fn database(&self) -> PathBuf {
        self.root.join("hub.db")
    }

    /// Directory of the events log.
    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }

    /// Writes `service.connstr` for the `iothubowner` policy.
    pub fn write_service_connstr(&self, hostname: &str, owner: &Policy) -> anyhow::Result<()> {
        let cs = ConnectionString::service(hostname, &owner.key_name, &owner.primary_key)?;
        write_private(&self.root.join("service.connstr"), &cs.to_string())
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write_public(path: &Path, text: &str) -> anyhow::Result<()> {
    write_mode(path, text, 0o644)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    write_mode(path, text, 0o600)
}

/// Writes a file atomically (temporary file, fsync, rename) with the given mode.
fn write_mode(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
