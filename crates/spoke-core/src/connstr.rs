//! Hub connection strings for devices, modules and services: `Key=value` pairs separated by `;` (spec §1).
//!
//! The parser follows azure-iot-device 2.14.0 exactly (`common/auth/connection_string.py`):
//! - split on `;`, then each pair on its **first** `=` (base64 keys end in `=`); a pair without
//!   `=` (including the empty pair left by a trailing `;`) is an error;
//! - duplicate keys are an error, keys are case-sensitive and must be one of [`Key`];
//! - an empty value counts as absent, as Python's truthiness does;
//! - `SharedAccessKey` together with a non-empty `x509` is "mixed authentication";
//! - the string must hold `HostName` + `DeviceId` + (`SharedAccessKey` or `x509`), or
//!   `HostName` + `SharedAccessKey` + `SharedAccessKeyName`. `SharedAccessSignature` alone is
//!   therefore "incomplete", as in the SDK.
//!
//! Spoke adds one rule: `DeviceId` and `ModuleId` must be valid identifiers ([`crate::ids`]).
//!
//! Invariants of a [`ConnectionString`]: it satisfies the rules above, no value contains `;`,
//! and `Display` writes the keys in canonical order without a trailing `;`, so parsing the
//! output gives back an equal value.

use std::fmt;
use std::str::FromStr;

use crate::ids::{DeviceId, IdError, Identity, ModuleId};

/// Why a connection string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnStrError {
    /// A `;`-separated pair has no `=` (this includes a trailing `;`).
    #[error("connection string pair {index} has no '='")]
    MissingSeparator {
        /// Zero-based index of the pair.
        index: usize,
    },
    /// A key appears twice.
    #[error("connection string repeats key {key:?}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A key is not one of the known, case-sensitive keys.
    #[error("connection string has unknown key {key:?}")]
    UnknownKey {
        /// The unknown key.
        key: String,
    },
    /// Both `SharedAccessKey` and `x509` are set.
    #[error("connection string mixes SharedAccessKey and x509 authentication")]
    MixedAuth,
    /// The keys present do not form a device, module or service connection string.
    #[error(
        "connection string is incomplete: need HostName, DeviceId and SharedAccessKey or x509, \
         or HostName, SharedAccessKeyName and SharedAccessKey"
    )]
    Incomplete,
    /// `DeviceId` or `ModuleId` is not a valid identifier.
    #[error("connection string {key} is invalid")]
    InvalidId {
        /// The key whose value is invalid.
        key: &'static str,
        /// Why the identifier is invalid.
        #[source]
        source: IdError,
    },
    /// A value given to a constructor is empty or contains `;`.
    #[error("connection string value for {key} is empty or contains ';'")]
    InvalidValue {
        /// The key whose value is invalid.
        key: &'static str,
    },
}

/// The keys a connection string may contain, in the canonical order used by `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `HostName`: the hub's host name (the MQTT username and SAS `sr` use it).
    HostName,
    /// `DeviceId`.
    DeviceId,
    /// `ModuleId`.
    ModuleId,
    /// `SharedAccessKeyName`: the shared access policy of a service connection string.
    SharedAccessKeyName,
    /// `SharedAccessKey`: a base64 key.
    SharedAccessKey,
    /// `SharedAccessSignature`: a ready-made SAS token.
    SharedAccessSignature,
    /// `x509` (lowercase): the device authenticates with a client certificate.
    X509,
    /// `GatewayHostName`: the TCP/TLS target when connecting through an edge gateway.
    GatewayHostName,
}

impl Key {
    /// All keys in canonical order.
    pub const ALL: [Key; 8] = [
        Key::HostName,
        Key::DeviceId,
        Key::ModuleId,
        Key::SharedAccessKeyName,
        Key::SharedAccessKey,
        Key::SharedAccessSignature,
        Key::X509,
        Key::GatewayHostName,
    ];

    /// The key as written in a connection string.
    pub fn name(self) -> &'static str {
        match self {
            Key::HostName => "HostName",
            Key::DeviceId => "DeviceId",
            Key::ModuleId => "ModuleId",
            Key::SharedAccessKeyName => "SharedAccessKeyName",
            Key::SharedAccessKey => "SharedAccessKey",
            Key::SharedAccessSignature => "SharedAccessSignature",
            Key::X509 => "x509",
            Key::GatewayHostName => "GatewayHostName",
        }
    }

    /// Looks a key up by its exact, case-sensitive name.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A validated connection string (device, module or service).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    host_name: String,
    device_id: Option<DeviceId>,
    module_id: Option<ModuleId>,
    shared_access_key_name: Option<String>,
    shared_access_key: Option<String>,
    shared_access_signature: Option<String>,
    x509: bool,
    gateway_host_name: Option<String>,
}

/// A non-empty value without `;`, or an error naming `key`.
fn checked_value(key: Key, value: &str) -> Result<String, ConnStrError> {
    if value.is_empty() || value.contains(';') {
        return Err(ConnStrError::InvalidValue { key: key.name() });
    }
    Ok(value.to_owned())
}

impl ConnectionString {
    /// A service connection string: `HostName=..;SharedAccessKeyName=..;SharedAccessKey=..`.
    pub fn service(host: &str, policy: &str, key: &str) -> Result<Self, ConnStrError> {
        Ok(Self {
            host_name: checked_value(Key::HostName, host)?,
            shared_access_key_name: Some(checked_value(Key::SharedAccessKeyName, policy)?),
            shared_access_key: Some(checked_value(Key::SharedAccessKey, key)?),
            ..Self::empty()
        })
    }

    /// A device connection string: `HostName=..;DeviceId=..;SharedAccessKey=..`.
    pub fn device(host: &str, device: DeviceId, key: &str) -> Result<Self, ConnStrError> {
        Ok(Self {
            host_name: checked_value(Key::HostName, host)?,
            device_id: Some(device),
            shared_access_key: Some(checked_value(Key::SharedAccessKey, key)?),
            ..Self::empty()
        })
    }

    /// A module connection string: `HostName=..;DeviceId=..;ModuleId=..;SharedAccessKey=..`.
    pub fn module(
        host: &str,
        device: DeviceId,
        module: ModuleId,
        key: &str,
    ) -> Result<Self, ConnStrError> {
        Ok(Self {
            module_id: Some(module),
            ..Self::device(host, device, key)?
        })
    }

    /// The same connection string with `GatewayHostName` set (spec §1: it changes only the
    /// TCP/TLS target).
    pub fn with_gateway_host_name(self, gateway: &str) -> Result<Self, ConnStrError> {
        Ok(Self {
            gateway_host_name: Some(checked_value(Key::GatewayHostName, gateway)?),
            ..self
        })
    }

    fn empty() -> Self {
        Self {
            host_name: String::new(),
            device_id: None,
            module_id: None,
            shared_access_key_name: None,
            shared_access_key: None,
            shared_access_signature: None,
            x509: false,
            gateway_host_name: None,
        }
    }

    /// Parses a connection string with the device SDK's rules (see the module docs).
    pub fn parse(s: &str) -> Result<Self, ConnStrError> {
        let mut pairs = Vec::new();
        for (index, pair) in s.split(';').enumerate() {
            let (key, value) = pair
                .split_once('=')
                .ok_or(ConnStrError::MissingSeparator { index })?;
            pairs.push((key, value));
        }
        for (i, (key, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(ConnStrError::DuplicateKey {
                    key: (*key).to_owned(),
                });
            }
        }
        let mut cs = Self::empty();
        for (key, value) in pairs {
            let key = Key::from_name(key).ok_or_else(|| ConnStrError::UnknownKey {
                key: key.to_owned(),
            })?;
            cs.set(key, value)?;
        }
        let has_key = cs.shared_access_key.is_some();
        if has_key && cs.x509 {
            return Err(ConnStrError::MixedAuth);
        }
        let host = !cs.host_name.is_empty();
        let device_ok = host && cs.device_id.is_some() && (has_key || cs.x509);
        let service_ok = host && has_key && cs.shared_access_key_name.is_some();
        if !(device_ok || service_ok) {
            return Err(ConnStrError::Incomplete);
        }
        Ok(cs)
    }

    /// Stores one parsed pair; an empty value leaves the field absent.
    fn set(&mut self, key: Key, value: &str) -> Result<(), ConnStrError> {
        let text = (!value.is_empty()).then(|| value.to_owned());
        let id_error = |source| ConnStrError::InvalidId {
            key: key.name(),
            source,
        };
        match key {
            Key::HostName => value.clone_into(&mut self.host_name),
            Key::DeviceId => {
                self.device_id = text
                    .map(|v| DeviceId::parse(&v))
                    .transpose()
                    .map_err(id_error)?;
            }
            Key::ModuleId => {
                self.module_id = text
                    .map(|v| ModuleId::parse(&v))
                    .transpose()
                    .map_err(id_error)?;
            }
            Key::SharedAccessKeyName => self.shared_access_key_name = text,
            Key::SharedAccessKey => self.shared_access_key = text,
            Key::SharedAccessSignature => self.shared_access_signature = text,
            Key::X509 => self.x509 = text.is_some(),
            Key::GatewayHostName => self.gateway_host_name = text,
        }
        Ok(())
    }

    /// The value stored for `key`, as `Display` writes it.
    pub fn get(&self, key: Key) -> Option<&str> {
        match key {
            Key::HostName => Some(&self.host_name),
            Key::DeviceId => self.device_id.as_ref().map(DeviceId::as_str),
            Key::ModuleId => self.module_id.as_ref().map(ModuleId::as_str),
            Key::SharedAccessKeyName => self.shared_access_key_name.as_deref(),
            Key::SharedAccessKey => self.shared_access_key.as_deref(),
            Key::SharedAccessSignature => self.shared_access_signature.as_deref(),
            Key::X509 => self.x509.then_some("true"),
            Key::GatewayHostName => self.gateway_host_name.as_deref(),
        }
    }

    /// `HostName`: the hub's host name, possibly with `:port` (spec §0.1-2).
    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    /// `DeviceId`, if present.
    pub fn device_id(&self) -> Option<&DeviceId> {
        self.device_id.as_ref()
    }

    /// `ModuleId`, if present.
    pub fn module_id(&self) -> Option<&ModuleId> {
        self.module_id.as_ref()
    }

    /// `SharedAccessKeyName` (the policy of a service connection string), if present.
    pub fn shared_access_key_name(&self) -> Option<&str> {
        self.shared_access_key_name.as_deref()
    }

    /// `SharedAccessKey` (base64), if present.
    pub fn shared_access_key(&self) -> Option<&str> {
        self.shared_access_key.as_deref()
    }

    /// `SharedAccessSignature`, if present.
    pub fn shared_access_signature(&self) -> Option<&str> {
        self.shared_access_signature.as_deref()
    }

    /// Whether `x509` is set (to any non-empty value, as in the SDK).
    pub fn x509(&self) -> bool {
        self.x509
    }

    /// `GatewayHostName`, if present.
    pub fn gateway_host_name(&self) -> Option<&str> {
        self.gateway_host_name.as_deref()
    }

    /// The device or module identity named by `DeviceId` and `ModuleId`, if any.
    pub fn identity(&self) -> Option<Identity> {
        let device = self.device_id.clone()?;
        Some(Identity {
            device,
            module: self.module_id.clone(),
        })
    }
}

impl FromStr for ConnectionString {
    type Err = ConnStrError;

    fn from_str(s: &str) -> Result<Self, ConnStrError> {
        Self::parse(s)
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for key in Key::ALL {
            if let Some(value) = self.get(key) {
                if !first {
                    f.write_str(";")?;
                }
                first = false;
                write!(f, "{}={value}", key.name())?;
            }
        }
        Ok(())
    }
}

/// Secrets (`SharedAccessKey`, `SharedAccessSignature`) are redacted.
impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: Option<&str>| v.map(|_| "<redacted>");
        f.debug_struct("ConnectionString")
            .field("host_name", &self.host_name)
            .field("device_id", &self.device_id)
            .field("module_id", &self.module_id)
            .field("shared_access_key_name", &self.shared_access_key_name)
            .field("shared_access_key", &redact(self.shared_access_key()))
            .field(
                "shared_access_signature",
                &redact(self.shared_access_signature()),
            )
            .field("x509", &self.x509)
            .field("gateway_host_name", &self.gateway_host_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    #[test]
    fn parses_every_kind_of_spec_section_1() {
        let device = format!("HostName=myhub.example.com;DeviceId=dev1;SharedAccessKey={KEY}");
        let cs = ConnectionString::parse(&device).unwrap();
        assert_eq!(cs.host_name(), "myhub.example.com");
        assert_eq!(cs.device_id().map(DeviceId::as_str), Some("dev1"));
        assert_eq!(cs.shared_access_key(), Some(KEY));
        assert_eq!(cs.module_id(), None);
        assert_eq!(cs.identity(), Some(Identity::device(id("dev1"))));
        assert_eq!(cs.to_string(), device);

        let x509 = "HostName=h;DeviceId=dev1;x509=true";
        let cs = ConnectionString::parse(x509).unwrap();
        assert!(cs.x509());
        assert_eq!(cs.to_string(), x509);

        let module = format!("HostName=h;DeviceId=dev1;ModuleId=mod1;SharedAccessKey={KEY}");
        let cs = ConnectionString::parse(&module).unwrap();
        assert_eq!(cs.identity().unwrap().client_id(), "dev1/mod1");
        assert_eq!(cs.to_string(), module);

        let leaf =
            format!("HostName=h;DeviceId=leaf;SharedAccessKey={KEY};GatewayHostName=edge.local");
        let cs = ConnectionString::parse(&leaf).unwrap();
        assert_eq!(cs.gateway_host_name(), Some("edge.local"));
        assert_eq!(cs.to_string(), leaf);

        let service = format!(
            "HostName=localhost:8443;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
        );
        let cs = ConnectionString::parse(&service).unwrap();
        assert_eq!(cs.shared_access_key_name(), Some("iothubowner"));
        assert_eq!(cs.identity(), None);
        assert_eq!(cs.to_string(), service);
    }

    #[test]
    fn canonical_order_and_first_equals_split() {
        let cs = ConnectionString::parse("SharedAccessKey=a==;DeviceId=d;HostName=h").unwrap();
        assert_eq!(cs.shared_access_key(), Some("a=="));
        assert_eq!(cs.to_string(), "HostName=h;DeviceId=d;SharedAccessKey=a==");
    }

    #[test]
    fn sdk_rejections() {
        let cases: &[(&str, ConnStrError)] = &[
            (
                "HostName=h;DeviceId=d;SharedAccessKey=k;",
                ConnStrError::MissingSeparator { index: 3 },
            ),
            ("", ConnStrError::MissingSeparator { index: 0 }),
            (
                "HostName=h;;DeviceId=d;SharedAccessKey=k",
                ConnStrError::MissingSeparator { index: 1 },
            ),
            (
                "HostName=h;DeviceId=d;DeviceId=e;SharedAccessKey=k",
                ConnStrError::DuplicateKey {
                    key: "DeviceId".into(),
                },
            ),
            (
                "hostname=h;DeviceId=d;SharedAccessKey=k",
                ConnStrError::UnknownKey {
                    key: "hostname".into(),
                },
            ),
            (
                "HostName=h;DeviceId=d;SharedAccessKey=k;X509=true",
                ConnStrError::UnknownKey { key: "X509".into() },
            ),
            (
                "Endpoint=sb://h/;SharedAccessKeyName=p;SharedAccessKey=k;EntityPath=e",
                ConnStrError::UnknownKey {
                    key: "Endpoint".into(),
                },
            ),
            (
                "HostName=h;DeviceId=d;SharedAccessKey=k;x509=true",
                ConnStrError::MixedAuth,
            ),
            (
                "HostName=h;DeviceId=d;SharedAccessKey=k;x509=false",
                ConnStrError::MixedAuth,
            ),
            (
                "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=x",
                ConnStrError::Incomplete,
            ),
            ("HostName=h;DeviceId=d", ConnStrError::Incomplete),
            ("HostName=h;SharedAccessKey=k", ConnStrError::Incomplete),
            (
                "HostName=;DeviceId=d;SharedAccessKey=k",
                ConnStrError::Incomplete,
            ),
            (
                "HostName=h;DeviceId=;SharedAccessKey=k",
                ConnStrError::Incomplete,
            ),
            (
                "HostName=h;DeviceId=d;SharedAccessKey=",
                ConnStrError::Incomplete,
            ),
            ("HostName=h;DeviceId=d;x509=", ConnStrError::Incomplete),
            (
                "HostName=h;SharedAccessKeyName=;SharedAccessKey=k",
                ConnStrError::Incomplete,
            ),
        ];
        for (s, err) in cases {
            assert_eq!(ConnectionString::parse(s).as_ref(), Err(err), "{s:?}");
        }
    }

    #[test]
    fn invalid_ids_are_rejected() {
        let err = ConnectionString::parse("HostName=h;DeviceId=a b;SharedAccessKey=k").unwrap_err();
        assert!(
            matches!(
                err,
                ConnStrError::InvalidId {
                    key: "DeviceId",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = ConnectionString::parse("HostName=h;DeviceId=d;ModuleId=m/x;SharedAccessKey=k")
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConnStrError::InvalidId {
                    key: "ModuleId",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn sdk_accepts_these_too() {
        // x509 with any non-empty value, an empty optional value, and a service string that
        // also names a device are all valid for the SDK.
        let cs = ConnectionString::parse("HostName=h;DeviceId=d;x509=yes").unwrap();
        assert!(cs.x509());
        let cs =
            ConnectionString::parse("HostName=h;DeviceId=d;SharedAccessKey=k;GatewayHostName=")
                .unwrap();
        assert_eq!(cs.gateway_host_name(), None);
        assert_eq!(cs.to_string(), "HostName=h;DeviceId=d;SharedAccessKey=k");
        let cs = ConnectionString::parse(
            "HostName=h;SharedAccessKeyName=p;SharedAccessKey=k;DeviceId=d;SharedAccessSignature=s",
        )
        .unwrap();
        assert_eq!(
            cs.to_string(),
            "HostName=h;DeviceId=d;SharedAccessKeyName=p;SharedAccessKey=k;SharedAccessSignature=s"
        );
    }

    #[test]
    fn constructors() {
        let s = ConnectionString::service("localhost", "iothubowner", KEY).unwrap();
        assert_eq!(
            s.to_string(),
            format!("HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}")
        );
        let d = ConnectionString::device("h", id("dev1"), "k").unwrap();
        assert_eq!(d.to_string(), "HostName=h;DeviceId=dev1;SharedAccessKey=k");
        let m = ConnectionString::module("h", id("dev1"), ModuleId::parse("m").unwrap(), "k")
            .unwrap()
            .with_gateway_host_name("edge")
            .unwrap();
        assert_eq!(
            m.to_string(),
            "HostName=h;DeviceId=dev1;ModuleId=m;SharedAccessKey=k;GatewayHostName=edge"
        );
        assert_eq!(ConnectionString::parse(&m.to_string()).unwrap(), m);
        assert_eq!(
            ConnectionString::service("h;x", "p", "k"),
            Err(ConnStrError::InvalidValue { key: "HostName" })
        );
        assert_eq!(
            ConnectionString::device("h", id("d"), ""),
            Err(ConnStrError::InvalidValue {
                key: "SharedAccessKey"
            })
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let cs = ConnectionString::device("h", id("d"), "secret-key").unwrap();
        let debug = format!("{cs:?}");
        assert!(!debug.contains("secret-key"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }
}
