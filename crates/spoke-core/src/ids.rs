//! Device and module identifiers, and the identity (device, optional module) a client
//! authenticates as.
//!
//! Invariants: a [`DeviceId`] or [`ModuleId`] is 1..=128 ASCII characters drawn from the
//! alphanumerics and `- . % _ * ? ! ( ) , : = @ $ '` (spec §5.3, current Azure registry
//! docs). `+` and `#` are rejected: the current docs no longer support them and they are MQTT
//! wildcards, so they could not appear in a subscription filter. `/` never appears, so an MQTT
//! client ID `device/module` splits unambiguously (spec §3.2). `$` is allowed anywhere, which
//! covers the system modules `$edgeAgent` and `$edgeHub`.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Maximum length of a device or module ID, in characters (spec §5.3).
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid identifier or client ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("identifier is empty")]
    Empty,
    /// The identifier is longer than [`MAX_ID_LEN`].
    #[error("identifier is {len} characters long, more than {MAX_ID_LEN}")]
    TooLong {
        /// Length of the rejected identifier, in bytes.
        len: usize,
    },
    /// The identifier contains a character outside the allowed set.
    #[error("identifier contains {ch:?} at byte {index}, which is not allowed")]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset in the identifier.
        index: usize,
    },
    /// An MQTT client ID is not `device` or `device/module`.
    #[error("client ID has {segments} '/'-separated segments; expected 1 or 2")]
    ClientIdSegments {
        /// Number of segments found.
        segments: usize,
    },
}

/// Whether `c` may appear in a device or module ID.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '%'
                | '_'
                | '*'
                | '?'
                | '!'
                | '('
                | ')'
                | ','
                | ':'
                | '='
                | '@'
                | '$'
                | '\''
        )
}

/// Checks the shared identifier rules.
fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some((index, ch)) = s.char_indices().find(|&(_, c)| !is_id_char(c)) {
        return Err(IdError::InvalidChar { ch, index });
    }
    // All characters are ASCII now, so bytes == characters.
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { len: s.len() });
    }
    Ok(())
}

/// Defines a validated string identifier newtype with the traits every ID needs.
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` as an identifier.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                validate(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                validate(&s).map_err(serde::de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

id_newtype!(
    /// A device ID: case-sensitive, validated on construction (spec §5.3).
    DeviceId
);

id_newtype!(
    /// A module ID within a device, such as `$edgeAgent` or `filter` (spec §5.3).
    ModuleId
);

/// The identity a client authenticates as: a device, or a module of a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// The device, or the device that owns the module.
    #[serde(rename = "deviceId")]
    pub device: DeviceId,
    /// The module, when the identity is a module.
    #[serde(rename = "moduleId", default, skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleId>,
}

impl Identity {
    /// A device identity.
    pub fn device(device: DeviceId) -> Self {
        Self {
            device,
            module: None,
        }
    }

    /// A module identity.
    pub fn module(device: DeviceId, module: ModuleId) -> Self {
        Self {
            device,
            module: Some(module),
        }
    }

    /// The MQTT client ID: `device` or `device/module` (spec §3.2).
    pub fn client_id(&self) -> String {
        self.to_string()
    }

    /// Parses an MQTT client ID `device` or `device/module` (spec §3.2).
    pub fn from_client_id(client_id: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = client_id.split('/').collect();
        match parts.as_slice() {
            [device] => Ok(Self::device(DeviceId::parse(device)?)),
            [device, module] => Ok(Self::module(
                DeviceId::parse(device)?,
                ModuleId::parse(module)?,
            )),
            _ => Err(IdError::ClientIdSegments {
                segments: parts.len(),
            }),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.module {
            None => write!(f, "{}", self.device),
            Some(module) => write!(f, "{}/{}", self.device, module),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        let long = "a".repeat(MAX_ID_LEN);
        for s in [
            "dev1",
            "D-1.x",
            "$edgeAgent",
            "$edgeHub",
            "a%b",
            "x_*?!(),:=@$'",
            "0",
            long.as_str(),
        ] {
            assert_eq!(DeviceId::parse(s).unwrap().as_str(), s);
            assert_eq!(ModuleId::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn invalid_ids() {
        let too_long = "a".repeat(MAX_ID_LEN + 1);
        let cases = [
            ("", IdError::Empty),
            (too_long.as_str(), IdError::TooLong { len: 129 }),
            ("a/b", IdError::InvalidChar { ch: '/', index: 1 }),
            ("dev 1", IdError::InvalidChar { ch: ' ', index: 3 }),
            ("a+b", IdError::InvalidChar { ch: '+', index: 1 }),
            ("#", IdError::InvalidChar { ch: '#', index: 0 }),
            ("é", IdError::InvalidChar { ch: 'é', index: 0 }),
            ("a;b", IdError::InvalidChar { ch: ';', index: 1 }),
            ("a&b", IdError::InvalidChar { ch: '&', index: 1 }),
        ];
        for (s, err) in cases {
            assert_eq!(DeviceId::parse(s), Err(err.clone()), "{s:?}");
            assert_eq!(s.parse::<ModuleId>(), Err(err), "{s:?}");
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = DeviceId::parse("dev1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"dev1\"");
        assert_eq!(serde_json::from_str::<DeviceId>("\"dev1\"").unwrap(), id);
        assert!(serde_json::from_str::<DeviceId>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<ModuleId>("\"\"").is_err());
    }

    #[test]
    fn ids_borrow_as_str_in_maps() {
        let mut set = std::collections::HashSet::new();
        set.insert(DeviceId::parse("dev1").unwrap());
        assert!(set.contains("dev1"));
    }

    #[test]
    fn client_ids() {
        let d = Identity::from_client_id("dev1").unwrap();
        assert_eq!(d, Identity::device(DeviceId::parse("dev1").unwrap()));
        assert_eq!(d.client_id(), "dev1");

        let m = Identity::from_client_id("dev1/$edgeHub").unwrap();
        assert_eq!(m.module.as_ref().map(ModuleId::as_str), Some("$edgeHub"));
        assert_eq!(m.client_id(), "dev1/$edgeHub");

        assert_eq!(
            Identity::from_client_id("a/b/c"),
            Err(IdError::ClientIdSegments { segments: 3 })
        );
        assert_eq!(Identity::from_client_id("dev1/"), Err(IdError::Empty));
        assert_eq!(Identity::from_client_id(""), Err(IdError::Empty));
    }

    #[test]
    fn identity_json() {
        let m = Identity::from_client_id("d1/m1").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"deviceId":"d1","moduleId":"m1"}"#);
        assert_eq!(serde_json::from_str::<Identity>(&json).unwrap(), m);
        let d: Identity = serde_json::from_str(r#"{"deviceId":"d1"}"#).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"deviceId":"d1"}"#);
    }
}
