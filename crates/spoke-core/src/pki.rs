//! Certificates: a root CA that issues TLS server certificates, and certificate thumbprints.
//!
//! Spoke keeps one trust anchor per installation (ARCHITECTURE.md "Identities, scopes"): the hub's
//! root CA signs the hub's server certificate, and later the edge CAs. Everything here is pure
//! computation on PEM text; callers decide where the files live.
//!
//! Keys are ECDSA P-256 (accepted by Python's `ssl` with TLS 1.2 and 1.3, and by rustls).

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha1::Digest as _;
use time::{Duration, OffsetDateTime};

/// Errors from generating or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters or the key.
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    /// A PEM block could not be decoded.
    #[error("invalid PEM: {0}")]
    Pem(&'static str),
}

/// A certificate authority: its certificate (PEM) and private key (PKCS#8 PEM).
#[derive(Clone)]
pub struct CertificateAuthority {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA private key, PKCS#8 PEM. Never leaves the process that owns the CA.
    pub key_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

/// A leaf certificate issued by a [`CertificateAuthority`], with its key.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The leaf private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Expiry of the leaf certificate.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a new self-signed root CA named `common_name`, valid for `validity` from `now`.
    pub fn generate(
        common_name: &str,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + validity;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a TLS server certificate for `names` (DNS names or IP addresses), valid for
    /// `validity` from `now`. The first name is also the subject's common name.
    pub fn issue_server(
        &self,
        names: &[String],
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(names.first().map_or("localhost", String::as_str));
        let mut sans = Vec::with_capacity(names.len());
        for n in names {
            let san = match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.clone().try_into()?),
            };
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue_leaf(params, now, validity)
    }

    /// Issues a TLS client certificate for an identity: subject CN `common_name`, one SAN URI
    /// `uri` and EKU clientAuth, valid for `validity` from `now`. Azure IoT Edge's module
    /// identity certificates use `azureiot://{hub}/devices/{device}/modules/{module}`
    /// (azure-iot-edge-contracts.md §1.2).
    pub fn issue_identity(
        &self,
        common_name: &str,
        uri: &str,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.subject_alt_names = vec![SanType::URI(uri.to_owned().try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue_leaf(params, now, validity)
    }

    /// Signs a leaf certificate with a fresh key, valid for `validity` from `now`.
    fn issue_leaf(
        &self,
        mut params: CertificateParams,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<IssuedCertificate, PkiError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        params.not_before = now - Duration::hours(1);
        params.not_after = now + validity;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after,
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Hex SHA-1 and SHA-256 thumbprints (uppercase, as Azure shows them) of a DER certificate.
pub fn thumbprints(der: &[u8]) -> (String, String) {
    (
        hex_upper(&sha1::Sha1::digest(der)),
        hex_upper(&sha2::Sha256::digest(der)),
    )
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_server_certificate_with_ip_and_dns_sans() {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate("test CA", now, Duration::days(1)).unwrap();
        let leaf = ca
            .issue_server(
                &["hub.local".into(), "127.0.0.9".into(), "hub.local".into()],
                now,
                Duration::days(1),
            )
            .unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn issues_identity_certificate_with_uri_san() {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate("test CA", now, Duration::days(1)).unwrap();
        let leaf = ca
            .issue_identity(
                "$edgeHub",
                "azureiot://hub.local/devices/edge1/modules/$edgeHub",
                now,
                Duration::days(1),
            )
            .unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(leaf.not_after, now + Duration::days(1));
    }

    #[test]
    fn thumbprints_are_uppercase_hex() {
        let (s1, s256) = thumbprints(b"abc");
        assert_eq!(s1, "A9993E364706816ABA3E25717850C26C9CD0D89D");
        assert_eq!(s256.len(), 64);
    }
}
