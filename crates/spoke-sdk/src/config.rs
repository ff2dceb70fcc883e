//! Client configuration: where to connect, as whom, with which credentials and trust, and the
//! timings (keep-alive, token lifetime and renewal, connect timeout).
//!
//! Invariants checked by [`ClientConfig::validate`] before any connection: the renewal margin
//! is at least one second shorter than the token TTL, the keep-alive is 1-1740 s (spec §3.1),
//! the trust PEM holds at least one certificate and the TLS target is a valid server name.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use spoke_core::connstr::ConnectionString;
use spoke_core::ids::Identity;
use spoke_core::sas;

use crate::auth::Credentials;
use crate::error::ConfigError;

/// MQTT over TLS port (spec §3.1; the device SDK hard-codes it, pitfall §0.1).
pub const DEFAULT_PORT: u16 = 8883;

/// Everything a [`crate::Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP/TLS target and TLS server name: `GatewayHostName` if set, else `HostName`
    /// (spec §1, §3.1).
    pub host: String,
    /// TCP port (default [`DEFAULT_PORT`]).
    pub port: u16,
    /// The hub's host name (`HostName`): it goes into the MQTT username and the SAS `sr`,
    /// even behind a gateway (spec §1).
    pub hub_hostname: String,
    /// The device or module this client is.
    pub identity: Identity,
    /// How the client authenticates.
    pub credentials: Credentials,
    /// PEM text of the CA certificates the server's certificate must chain to.
    pub ca_pem: String,
    /// MQTT keep-alive (default 60 s, spec §3.1).
    pub keep_alive: Duration,
    /// Lifetime of each SAS token (default 3600 s, spec §2.2).
    pub token_ttl: Duration,
    /// How long before a token expires the client reconnects with a new one (default
    /// 120 s, spec §2.2).
    pub renewal_margin: Duration,
    /// Limit on one connection attempt: signing, TCP, TLS, CONNECT/CONNACK and SUBSCRIBE
    /// (default 30 s).
    pub connect_timeout: Duration,
    /// For an IoT Edge device's own connection: also subscribe to the module-scoped twin
    /// responses and desired patches of all its modules (a Spoke extension,
    /// `docs/protocol.md`), desired patches delivered as [`crate::Event::ModuleDesiredPatch`];
    /// a module's method calls are subscribed with [`crate::Client::follow_module_methods`].
    /// Default off.
    pub edge_modules: bool,
}

impl ClientConfig {
    /// A configuration with the defaults for everything but who connects where.
    pub fn new(
        hub_hostname: impl Into<String>,
        identity: Identity,
        credentials: Credentials,
        ca_pem: impl Into<String>,
    ) -> Self {
        let hub_hostname = hub_hostname.into();
        Self {
            host: hub_hostname.clone(),
            port: DEFAULT_PORT,
            hub_hostname,
            identity,
            credentials,
            ca_pem: ca_pem.into(),
            keep_alive: Duration::from_mins(1),
            token_ttl: Duration::from_hours(1),
            renewal_margin: Duration::from_mins(2),
            connect_timeout: Duration::from_secs(30),
            edge_modules: false,
        }
    }

    /// A configuration from a device or module connection string with `SharedAccessKey`
    /// (spec §1) and the PEM of the CA to trust. `GatewayHostName`, when present, becomes
    /// the TLS target.
    pub fn from_connection_string(
        connection_string: &str,
        ca_pem: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let cs =
            ConnectionString::parse(connection_string).map_err(ConfigError::ConnectionString)?;
        if cs.x509() {
            return Err(ConfigError::X509Unsupported);
        }
        let identity = cs.identity().ok_or(ConfigError::NotADevice)?;
        let key = cs.shared_access_key().ok_or(ConfigError::MissingKey)?;
        sas::decode_key(key).map_err(ConfigError::InvalidKey)?;
        let mut config = Self::new(
            cs.host_name(),
            identity,
            Credentials::SymmetricKey(key.to_owned()),
            ca_pem,
        );
        if let Some(gateway) = cs.gateway_host_name() {
            gateway.clone_into(&mut config.host);
        }
        Ok(config)
    }

    /// Checks the invariants in the module docs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token_ttl < self.renewal_margin + Duration::from_secs(1) {
            return Err(ConfigError::InvalidTiming {
                reason: "token_ttl must exceed renewal_margin by at least 1 s",
            });
        }
        if !(1..=1740).contains(&self.keep_alive.as_secs()) {
            return Err(ConfigError::InvalidTiming {
                reason: "keep_alive must be 1-1740 s",
            });
        }
        self.server_name()?;
        self.tls()?;
        Ok(())
    }

    /// The TLS server name of [`Self::host`].
    pub(crate) fn server_name(&self) -> Result<ServerName<'static>, ConfigError> {
        ServerName::try_from(self.host.clone()).map_err(|_| ConfigError::InvalidServerName {
            host: self.host.clone(),
        })
    }

    /// The rustls client configuration: TLS 1.2 and 1.3 (the hub must offer 1.2, pitfall
    /// §0.3), ring, trusting only [`Self::ca_pem`].
    pub(crate) fn tls(&self) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let cert = cert.map_err(|_| ConfigError::InvalidTrust(None))?;
            roots
                .add(cert)
                .map_err(|e| ConfigError::InvalidTrust(Some(e)))?;
        }
        if roots.is_empty() {
            return Err(ConfigError::InvalidTrust(None));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| ConfigError::InvalidTrust(Some(e)))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn from_device_and_module_connection_strings() {
        let config = ClientConfig::from_connection_string(
            &format!("HostName=hub.local;DeviceId=dev1;SharedAccessKey={KEY}"),
            "",
        )
        .unwrap();
        assert_eq!(config.host, "hub.local");
        assert_eq!(config.hub_hostname, "hub.local");
        assert_eq!(config.port, 8883);
        assert_eq!(config.identity.to_string(), "dev1");
        assert_eq!(config.keep_alive, Duration::from_mins(1));
        assert_eq!(config.token_ttl, Duration::from_hours(1));
        assert_eq!(config.renewal_margin, Duration::from_mins(2));

        let config = ClientConfig::from_connection_string(
            &format!(
                "HostName=hub.local;DeviceId=dev1;ModuleId=m1;SharedAccessKey={KEY};GatewayHostName=edge.local"
            ),
            "",
        )
        .unwrap();
        assert_eq!(config.host, "edge.local", "the gateway is the TLS target");
        assert_eq!(config.hub_hostname, "hub.local", "the hub signs and names");
        assert_eq!(config.identity.to_string(), "dev1/m1");
    }

    #[test]
    fn rejects_unusable_connection_strings() {
        let cases = [
            "HostName=h;DeviceId=d;x509=true",
            "HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=AAAA",
            "HostName=h;DeviceId=d;SharedAccessKey=not*base64",
            "HostName=h;DeviceId=d;SharedAccessKey=AAAA;",
        ];
        for cs in cases {
            assert!(
                ClientConfig::from_connection_string(cs, "").is_err(),
                "{cs}"
            );
        }
    }

    #[test]
    fn validation() {
        let mut config = ClientConfig::from_connection_string(
            &format!("HostName=hub.local;DeviceId=dev1;SharedAccessKey={KEY}"),
            "not a pem",
        )
        .unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidTrust(_))
        ));
        config.token_ttl = Duration::from_secs(3);
        config.renewal_margin = Duration::from_secs(3);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidTiming { .. })
        ));
        config.renewal_margin = Duration::from_secs(2);
        config.keep_alive = Duration::ZERO;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidTiming { .. })
        ));
        config.keep_alive = Duration::from_secs(5);
        config.host = "bad host".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidServerName { .. })
        ));
    }
}
