//! MQTT CONNECT authentication for devices and modules (spec §2, §3.2).
//!
//! - client id: `{deviceId}` or `{deviceId}/{moduleId}`; the username's path must name the
//!   same identity (`{host}/{clientId}/?api-version=...`).
//! - password: a SAS token whose `sr` covers `{host}/devices/{d}[/modules/{m}]`, signed with the
//!   identity's key, or with a policy key granting `DeviceConnect` when it names `skn`.
//! - no password: an X.509 client certificate whose SHA-1 or SHA-256 thumbprint is registered
//!   (`selfSigned`).
//!
//! CONNACK codes: 2 when the client id is not an identity, 4 when the username is missing,
//! malformed or names another identity, or the token is malformed, 5 for everything that is a refusal of valid input
//! (unknown identity, wrong key, expired token, disabled device, unregistered certificate).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoke_core::ids::Identity;
use spoke_core::pki::thumbprints;
use spoke_core::sas::{SasToken, decode_key};
use spoke_mqtt::codec::ConnectReturnCode;
use spoke_mqtt::server::{ConnectInfo, PeerInfo};

use crate::policies::{Policy, Right};
use crate::registry::core::Credentials;
use crate::registry::model::AuthType;

/// Who connected and how.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The identity.
    pub identity: Identity,
    /// `sas` or `x509`.
    pub auth_type: &'static str,
    /// Token expiry, for SAS.
    pub expires_at: Option<SystemTime>,
}

/// The identity a CONNECT claims, checked for consistency between client id and username.
pub fn claimed_identity(connect: &ConnectInfo) -> Result<Identity, ConnectReturnCode> {
    let identity = Identity::from_client_id(&connect.client_id)
        .map_err(|_| ConnectReturnCode::IdentifierRejected)?;
    let username = connect
        .username
        .as_deref()
        .ok_or(ConnectReturnCode::BadUsernameOrPassword)?;
    let path = username.split('?').next().unwrap_or_default();
    let mut parts = path.trim_end_matches('/').splitn(2, '/');
    let _host = parts.next();
    if parts.next() != Some(connect.client_id.as_str()) {
        return Err(ConnectReturnCode::BadUsernameOrPassword);
    }
    Ok(identity)
}

/// Verifies the CONNECT's credentials against the registry entry (`None` if unknown).
pub fn verify(
    connect: &ConnectInfo,
    peer: &PeerInfo,
    identity: Identity,
    credentials: Option<Credentials>,
    policies: &[Policy],
    hostname: &str,
) -> Result<Authenticated, ConnectReturnCode> {
    let credentials = credentials.ok_or(ConnectReturnCode::NotAuthorized)?;
    if !credentials.enabled {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    match &connect.password {
        Some(password) => verify_sas(password, identity, &credentials, policies, hostname),
        None => verify_certificate(peer, identity, &credentials),
    }
}

fn verify_sas(
    password: &[u8],
    identity: Identity,
    credentials: &Credentials,
    policies: &[Policy],
    hostname: &str,
) -> Result<Authenticated, ConnectReturnCode> {
    let malformed = |_| ConnectReturnCode::BadUsernameOrPassword;
    let text =
        std::str::from_utf8(password).map_err(|_| ConnectReturnCode::BadUsernameOrPassword)?;
    let token = SasToken::parse(text).map_err(malformed)?;
    let resource = token.resource().map_err(malformed)?;
    let mut path = vec!["devices", identity.device.as_str()];
    if let Some(m) = &identity.module {
        path.extend(["modules", m.as_str()]);
    }
    if !resource.covers(hostname, &path) {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    let keys: Vec<&str> = match token.skn.as_deref() {
        None => credentials.authentication.keys().collect(),
        Some(name) => policies
            .iter()
            .filter(|p| p.key_name == name && p.grants(Right::DeviceConnect))
            .flat_map(|p| [p.primary_key.as_str(), p.secondary_key.as_str()])
            .collect(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let ok = keys
        .iter()
        .filter_map(|k| decode_key(k).ok())
        .any(|key| token.verify(&key, now).is_ok());
    if !ok {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    Ok(Authenticated {
        identity,
        auth_type: "sas",
        expires_at: Some(UNIX_EPOCH + Duration::from_secs(token.se)),
    })
}

fn verify_certificate(
    peer: &PeerInfo,
    identity: Identity,
    credentials: &Credentials,
) -> Result<Authenticated, ConnectReturnCode> {
    let cert = peer
        .client_certificates
        .first()
        .ok_or(ConnectReturnCode::NotAuthorized)?;
    let auth = &credentials.authentication;
    if auth.kind != AuthType::SelfSigned {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    let (sha1, sha256) = thumbprints(cert);
    if !(auth.matches_thumbprint(&sha1) || auth.matches_thumbprint(&sha256)) {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    Ok(Authenticated {
        identity,
        auth_type: "x509",
        expires_at: None,
    })
}
