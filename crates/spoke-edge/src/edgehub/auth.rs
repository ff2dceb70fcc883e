//! CONNECT authentication on the edge hub, done locally so that it also works offline.
//!
//! A module of this edge device connects with client id `{device}/{module}`, a username
//! whose path names the same identity (`{hub}/{device}/{module}/?api-version=...`, edgeHub
//! also accepts it without the query), and as password a SAS token whose `sr` covers
//! `{hub}/devices/{device}/modules/{module}`, signed with the module's key (which the module
//! gets through the workload API's `sign`; the key itself never leaves the daemon).
//!
//! CONNACK codes as IoT Hub's (spec §3.2): 2 when the client id is not a module of this
//! device, 4 for a missing or inconsistent username or a malformed token, 5 for a valid
//! token that is not accepted (unknown module, wrong key, expired, wrong resource).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoke_core::ids::{DeviceId, Identity, ModuleId};
use spoke_core::sas::SasToken;
use spoke_mqtt::codec::ConnectReturnCode;
use spoke_mqtt::server::ConnectInfo;

use crate::workload::KeyStore;

/// An authenticated module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLogin {
    /// The module's identity.
    pub identity: Identity,
    /// When its token expires.
    pub expires_at: SystemTime,
}

/// Verifies a CONNECT against this device's module keys, at `now`.
pub fn authenticate(
    connect: &ConnectInfo,
    device: &DeviceId,
    hub_hostname: &str,
    keys: &dyn KeyStore,
    now: SystemTime,
) -> Result<ModuleLogin, ConnectReturnCode> {
    let identity = Identity::from_client_id(&connect.client_id)
        .map_err(|_| ConnectReturnCode::IdentifierRejected)?;
    let Some(module) = identity
        .module
        .clone()
        .filter(|_| identity.device == *device)
    else {
        return Err(ConnectReturnCode::IdentifierRejected);
    };
    let username = connect
        .username
        .as_deref()
        .ok_or(ConnectReturnCode::BadUsernameOrPassword)?;
    let path = username.split('?').next().unwrap_or_default();
    let named = path.trim_end_matches('/').split_once('/').map(|(_, id)| id);
    if named != Some(connect.client_id.as_str()) {
        return Err(ConnectReturnCode::BadUsernameOrPassword);
    }
    let password = connect
        .password
        .as_deref()
        .ok_or(ConnectReturnCode::NotAuthorized)?;
    let text =
        std::str::from_utf8(password).map_err(|_| ConnectReturnCode::BadUsernameOrPassword)?;
    let expires_at =
        verify_token(text, device, &module, hub_hostname, keys, now).map_err(|e| match e {
            TokenError::Malformed => ConnectReturnCode::BadUsernameOrPassword,
            TokenError::Refused => ConnectReturnCode::NotAuthorized,
        })?;
    Ok(ModuleLogin {
        identity,
        expires_at,
    })
}

/// Why a SAS token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// It is not a SAS token.
    Malformed,
    /// Wrong resource, unknown module, wrong key or expired.
    Refused,
}

/// Verifies a module's SAS token (`sr` covering `{hub}/devices/{device}/modules/{module}`,
/// signed with the module's key, not expired at `now`); returns its expiry.
pub fn verify_token(
    text: &str,
    device: &DeviceId,
    module: &ModuleId,
    hub_hostname: &str,
    keys: &dyn KeyStore,
    now: SystemTime,
) -> Result<SystemTime, TokenError> {
    let token = SasToken::parse(text).map_err(|_| TokenError::Malformed)?;
    let resource = token.resource().map_err(|_| TokenError::Malformed)?;
    let path = ["devices", device.as_str(), "modules", module.as_str()];
    if !resource.covers(hub_hostname, &path) {
        return Err(TokenError::Refused);
    }
    let key = keys.module_key(module).ok_or(TokenError::Refused)?;
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    token
        .verify(&key, now_secs)
        .map_err(|_| TokenError::Refused)?;
    Ok(UNIX_EPOCH + Duration::from_secs(token.se))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use spoke_core::sas::{device_token, resource_uri};

    use super::*;

    const KEY: &str = "c2VjcmV0IGtleSBvZiB0aGUgZmlsdGVyIG1vZHVsZQ==";

    #[derive(Debug)]
    struct Keys(HashMap<String, Vec<u8>>);

    impl KeyStore for Keys {
        fn module_key(&self, module: &ModuleId) -> Option<Vec<u8>> {
            self.0.get(module.as_str()).cloned()
        }
    }

    fn keys() -> Keys {
        let key = spoke_core::sas::decode_key(KEY).unwrap();
        Keys(HashMap::from([("filter".to_owned(), key)]))
    }

    fn connect(client_id: &str, username: &str, token: Option<String>) -> ConnectInfo {
        ConnectInfo {
            client_id: client_id.into(),
            username: Some(username.into()),
            password: token.map(Bytes::from),
            clean_session: false,
            keep_alive: 60,
            will: None,
        }
    }

    fn token(device: &str, module: &str, expiry: u64) -> String {
        let identity = Identity::from_client_id(&format!("{device}/{module}")).unwrap();
        device_token(&resource_uri("hub.example", &identity), KEY, expiry).unwrap()
    }

    fn check(info: &ConnectInfo, at: u64) -> Result<ModuleLogin, ConnectReturnCode> {
        let device = DeviceId::parse("edge1").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(at);
        authenticate(info, &device, "hub.example", &keys(), now)
    }

    const USER: &str = "hub.example/edge1/filter/?api-version=2021-04-12";

    #[test]
    fn a_module_with_a_good_token_is_accepted() {
        let login = check(
            &connect("edge1/filter", USER, Some(token("edge1", "filter", 2000))),
            1000,
        )
        .unwrap();
        assert_eq!(login.identity.client_id(), "edge1/filter");
        assert_eq!(login.expires_at, UNIX_EPOCH + Duration::from_secs(2000));
    }

    #[test]
    fn refusals_carry_iot_hub_connack_codes() {
        let good = || Some(token("edge1", "filter", 2000));
        let cases = [
            (
                connect("edge1", USER, good()),
                ConnectReturnCode::IdentifierRejected,
            ),
            (
                connect("other/filter", USER, good()),
                ConnectReturnCode::IdentifierRejected,
            ),
            (
                connect("edge1/filter", "hub.example/edge1/x/", good()),
                ConnectReturnCode::BadUsernameOrPassword,
            ),
            (
                connect("edge1/filter", USER, Some("garbage".into())),
                ConnectReturnCode::BadUsernameOrPassword,
            ),
            (
                connect("edge1/filter", USER, None),
                ConnectReturnCode::NotAuthorized,
            ),
            (
                connect("edge1/filter", USER, Some(token("edge1", "filter", 10))),
                ConnectReturnCode::NotAuthorized,
            ),
            (
                connect(
                    "edge1/sensor",
                    "hub.example/edge1/sensor",
                    Some(token("edge1", "sensor", 2000)),
                ),
                ConnectReturnCode::NotAuthorized,
            ),
            (
                connect("edge1/filter", USER, Some(token("edge1", "sensor", 2000))),
                ConnectReturnCode::NotAuthorized,
            ),
        ];
        for (info, code) in cases {
            assert_eq!(check(&info, 1000), Err(code), "{info:?}");
        }
    }
}
