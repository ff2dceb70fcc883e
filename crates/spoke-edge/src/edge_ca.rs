//! The edge CA: issues the edge hub's server certificate and the modules' certificates.
//!
//! Either the files named by `[edge_ca] cert`/`pk` (as in Azure's config.toml), or a
//! self-signed quickstart CA that the daemon generates in `<data_dir>/edge-ca/` and replaces
//! when it is within [`RENEW_BEFORE`] of expiry (Azure's quickstart CA also lasts 90 days).

use std::path::{Path, PathBuf};

use spoke_core::ids::DeviceId;
use spoke_core::pki::{CertificateAuthority, PkiError};
use time::{Duration, OffsetDateTime};

use crate::config::{EdgeCa, file_uri_path};

/// Lifetime of a generated quickstart CA.
pub const QUICKSTART_VALIDITY: Duration = Duration::days(90);
/// A generated CA is replaced when it expires within this long.
pub const RENEW_BEFORE: Duration = Duration::days(7);

/// Errors loading or generating the edge CA.
#[derive(Debug, thiserror::Error)]
pub enum EdgeCaError {
    /// A file could not be read or written.
    #[error("edge CA file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configured paths are not usable `file://` URIs.
    #[error("edge CA: {0}")]
    Config(String),
    /// Generating the CA failed.
    #[error("cannot generate the edge CA")]
    Generate(#[from] PkiError),
}

fn read(path: &Path) -> Result<String, EdgeCaError> {
    std::fs::read_to_string(path).map_err(|source| EdgeCaError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), EdgeCaError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| EdgeCaError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Expiry of the first certificate in `pem`, if it parses.
pub fn not_after(pem: &str) -> Option<OffsetDateTime> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()
}

/// Loads the configured edge CA, or the generated one (creating or renewing it as needed).
pub fn load(
    configured: Option<&EdgeCa>,
    data_dir: &Path,
    device: &DeviceId,
    now: OffsetDateTime,
) -> Result<CertificateAuthority, EdgeCaError> {
    if let Some(files) = configured {
        let cert = file_uri_path(&files.cert).map_err(EdgeCaError::Config)?;
        let key = file_uri_path(&files.pk).map_err(EdgeCaError::Config)?;
        return Ok(CertificateAuthority {
            cert_pem: read(&cert)?,
            key_pem: read(&key)?,
        });
    }
    let dir = data_dir.join("edge-ca");
    std::fs::create_dir_all(&dir).map_err(|source| EdgeCaError::Io {
        path: dir.clone(),
        source,
    })?;
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    if let (Ok(cert_pem), Ok(key_pem)) = (read(&cert_path), read(&key_path)) {
        if not_after(&cert_pem).is_some_and(|t| t - RENEW_BEFORE > now) {
            return Ok(CertificateAuthority { cert_pem, key_pem });
        }
        tracing::info!("the quickstart edge CA expires soon; generating a new one");
    }
    let ca = CertificateAuthority::generate(
        &format!("Spoke Edge quickstart CA {device}"),
        now,
        QUICKSTART_VALIDITY,
    )?;
    write(&key_path, &ca.key_pem, 0o600)?;
    write(&cert_path, &ca.cert_pem, 0o644)?;
    Ok(ca)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickstart_ca_is_generated_kept_and_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let device = DeviceId::parse("edge1").unwrap();
        let now = OffsetDateTime::now_utc();
        let first = load(None, dir.path(), &device, now).unwrap();
        let again = load(None, dir.path(), &device, now).unwrap();
        assert_eq!(first.cert_pem, again.cert_pem, "kept while valid");
        let expiry = not_after(&first.cert_pem).unwrap();
        assert!(expiry > now + Duration::days(89));
        let late = load(None, dir.path(), &device, expiry - Duration::days(1)).unwrap();
        assert_ne!(late.cert_pem, first.cert_pem, "renewed near expiry");
    }

    #[test]
    fn configured_files_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let device = DeviceId::parse("edge1").unwrap();
        let generated = load(None, dir.path(), &device, OffsetDateTime::now_utc()).unwrap();
        let ca_dir = dir.path().join("edge-ca");
        let files = EdgeCa {
            cert: format!("file://{}", ca_dir.join("ca.pem").display()),
            pk: format!("file://{}", ca_dir.join("ca.key").display()),
        };
        let loaded = load(
            Some(&files),
            Path::new("/nonexistent"),
            &device,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(loaded.cert_pem, generated.cert_pem);
        let missing = EdgeCa {
            cert: "file:///nonexistent/ca.pem".into(),
            pk: "file:///nonexistent/ca.key".into(),
        };
        assert!(
            load(
                Some(&missing),
                dir.path(),
                &device,
                OffsetDateTime::now_utc()
            )
            .is_err()
        );
    }
}
