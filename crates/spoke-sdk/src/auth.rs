//! Credentials and what the client derives from them for a CONNECT: the SAS token (spec §2.1,
//! device form: `sr = quote(uri, safe="")`, `sig` quoted the same way, no `skn`) and the MQTT
//! username (spec §3.2).
//!
//! Invariant: a token is made fresh for every connection attempt, valid for the configured
//! TTL from that moment (spec §2.2: the SDK renews by reconnecting with a new token).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use spoke_core::ids::Identity;
use spoke_core::sas::{self, PREFIX};

use crate::error::{ConnectionError, SignError};
use crate::topics::quote;

/// The `api-version` in the MQTT username (spec §3.2).
pub const API_VERSION: &str = "2019-10-01";

/// The `DeviceClientType` this client reports in its username (spec §3.2).
pub const USER_AGENT: &str = concat!("spoke-sdk/", env!("CARGO_PKG_VERSION"));

/// Signs SAS strings-to-sign with a key the client never sees, such as the edge daemon's
/// workload API (azure-iot-edge-contracts.md §1.2).
#[async_trait::async_trait]
pub trait Signer: Send + Sync + 'static {
    /// The HMAC-SHA256 digest of `data` under the identity's key (raw bytes, not base64).
    async fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// How the client proves its identity.
#[derive(Clone)]
pub enum Credentials {
    /// The identity's shared access key (base64), as in a connection string.
    SymmetricKey(String),
    /// A signer holding the key elsewhere.
    Signer(Arc<dyn Signer>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SymmetricKey(_) => f.write_str("SymmetricKey(<redacted>)"),
            Self::Signer(_) => f.write_str("Signer(..)"),
        }
    }
}

impl Credentials {
    /// A SAS token for `identity` on `hub_hostname` expiring `ttl` from now, and its expiry
    /// (seconds since the Unix epoch).
    pub(crate) async fn token(
        &self,
        hub_hostname: &str,
        identity: &Identity,
        ttl: Duration,
    ) -> Result<String, ConnectionError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let expiry = (now + ttl).as_secs();
        let uri = sas::resource_uri(hub_hostname, identity);
        match self {
            Self::SymmetricKey(key) => {
                sas::device_token(&uri, key, expiry).map_err(ConnectionError::Token)
            }
            Self::Signer(signer) => {
                let sr = quote(&uri);
                let digest = signer.sign(format!("{sr}\n{expiry}").as_bytes()).await?;
                let sig = BASE64.encode(digest);
                Ok(format!("{PREFIX}sr={sr}&sig={}&se={expiry}", quote(&sig)))
            }
        }
    }
}

/// The MQTT username: `{hub}/{clientId}/?api-version=...&DeviceClientType=...` (spec §3.2).
pub(crate) fn username(hub_hostname: &str, identity: &Identity) -> String {
    format!(
        "{hub_hostname}/{}/?api-version={API_VERSION}&DeviceClientType={}",
        identity.client_id(),
        quote(USER_AGENT)
    )
}

#[cfg(test)]
mod tests {
    use spoke_core::ids::{DeviceId, ModuleId};
    use spoke_core::sas::SasToken;

    use super::*;

    /// Key bytes 0..=31.
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    struct LocalSigner(Vec<u8>);

    #[async_trait::async_trait]
    impl Signer for LocalSigner {
        async fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
            let text = std::str::from_utf8(data).map_err(|e| SignError(Box::new(e)))?;
            Ok(BASE64
                .decode(sas::signature(&self.0, text))
                .map_err(|e| SignError(Box::new(e)))?)
        }
    }

    fn module() -> Identity {
        Identity::module(
            DeviceId::parse("dev1").unwrap(),
            ModuleId::parse("$edgeAgent").unwrap(),
        )
    }

    #[tokio::test]
    async fn signer_tokens_verify_like_key_tokens() {
        let key = sas::decode_key(KEY).unwrap();
        let ttl = Duration::from_hours(1);
        let by_key = Credentials::SymmetricKey(KEY.into())
            .token("hub.local", &module(), ttl)
            .await
            .unwrap();
        let by_signer = Credentials::Signer(Arc::new(LocalSigner(key.clone())))
            .token("hub.local", &module(), ttl)
            .await
            .unwrap();
        for token in [&by_key, &by_signer] {
            let parsed = SasToken::parse(token).unwrap();
            parsed.verify(&key, 0).unwrap();
            assert!(
                parsed
                    .resource()
                    .unwrap()
                    .covers("hub.local", &["devices", "dev1", "modules", "$edgeAgent"])
            );
            assert!(token.starts_with(
                "SharedAccessSignature sr=hub.local%2Fdevices%2Fdev1%2Fmodules%2F%24edgeAgent&sig="
            ));
            assert!(!token.contains("skn="));
        }
    }

    #[test]
    fn username_is_the_sdk_form() {
        assert_eq!(
            username("localhost", &module()),
            format!(
                "localhost/dev1/$edgeAgent/?api-version=2019-10-01&DeviceClientType=spoke-sdk%2F{}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(
            format!("{:?}", Credentials::SymmetricKey(KEY.into())),
            "SymmetricKey(<redacted>)"
        );
    }
}
