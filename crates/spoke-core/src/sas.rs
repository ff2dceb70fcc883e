//! Shared access signature (SAS) tokens: parsing, verification, scope checks and generation
//! (spec §2.1, pitfall §0.8).
//!
//! Format: `SharedAccessSignature sr={resource}&sig={signature}&se={expiry}[&skn={policy}]`.
//! The string to sign is `sr` **exactly as transmitted**, `"\n"`, and `se`; it is signed with
//! HMAC-SHA256 under the base64-decoded key. Clients encode `sr` differently (device:
//! `quote(uri, safe="")`; service REST: `quote_plus(host)`; service AMQP: raw), so verification
//! never re-encodes `sr`. Scope checks use the percent-decoded `sr` ([`Resource`]).
//!
//! Invariants of a parsed [`SasToken`]: `sr` is the raw transmitted text, `sig` is
//! percent-decoded, `se` had canonical decimal form (so `se.to_string()` is what was signed),
//! and `skn` is `None` when absent or empty (the C SDK sends `skn=`).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::Identity;
use crate::percent::{quote, quote_keep_slash, quote_plus, unquote};

/// The prefix of every SAS token.
pub const PREFIX: &str = "SharedAccessSignature ";

/// Why a SAS token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// A `&`-separated field has no `=`.
    #[error("SAS token field {field:?} is not name=value")]
    Malformed {
        /// The offending field text.
        field: String,
    },
    /// A field other than `sr`, `sig`, `se` and `skn`.
    #[error("SAS token has unknown field {name:?}")]
    UnknownField {
        /// The field name.
        name: String,
    },
    /// A field appears twice.
    #[error("SAS token repeats field {name}")]
    DuplicateField {
        /// The field name.
        name: &'static str,
    },
    /// A required field (`sr`, `sig`, `se`) is missing.
    #[error("SAS token lacks field {name}")]
    MissingField {
        /// The field name.
        name: &'static str,
    },
    /// `se` is not a canonical unsigned decimal number.
    #[error("SAS token expiry {value:?} is not a canonical decimal number")]
    InvalidExpiry {
        /// The rejected value.
        value: String,
    },
    /// A field does not percent-decode to UTF-8.
    #[error("SAS token field {name} does not percent-decode to UTF-8")]
    Encoding {
        /// The field name.
        name: &'static str,
    },
    /// The resource URI has no host.
    #[error("SAS token resource {sr:?} has no host")]
    InvalidResource {
        /// The decoded resource.
        sr: String,
    },
    /// A shared access key is not valid base64.
    #[error("shared access key is not valid base64")]
    InvalidKey(#[source] base64::DecodeError),
    /// The signature does not match the key.
    #[error("SAS token signature does not match")]
    BadSignature,
    /// The token expired at `expiry`, which is not after `now`.
    #[error("SAS token expired at {expiry} (now {now})")]
    Expired {
        /// The token's `se`.
        expiry: u64,
        /// The time of verification, in Unix seconds.
        now: u64,
    },
}

/// A parsed SAS token.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken {
    /// The resource URI, raw as transmitted (still percent-encoded).
    pub sr: String,
    /// The base64 signature, percent-decoded.
    pub sig: String,
    /// Expiry, in seconds since the Unix epoch.
    pub se: u64,
    /// The shared access policy name, for policy-signed tokens.
    pub skn: Option<String>,
}

/// Stores a field's raw value, rejecting a repeated field.
fn set_once<'a>(
    slot: &mut Option<&'a str>,
    name: &'static str,
    value: &'a str,
) -> Result<(), SasError> {
    if slot.replace(value).is_some() {
        return Err(SasError::DuplicateField { name });
    }
    Ok(())
}

impl SasToken {
    /// Parses a token, with or without the `SharedAccessSignature ` prefix, fields in any order.
    /// Like the device SDK, whitespace around names and values is ignored.
    pub fn parse(token: &str) -> Result<Self, SasError> {
        let token = token.trim();
        let body = token.strip_prefix(PREFIX).unwrap_or(token).trim();
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for field in body.split('&') {
            let (name, value) = field.split_once('=').ok_or_else(|| SasError::Malformed {
                field: field.to_owned(),
            })?;
            let value = value.trim();
            match name.trim() {
                "sr" => set_once(&mut sr, "sr", value)?,
                "sig" => set_once(&mut sig, "sig", value)?,
                "se" => set_once(&mut se, "se", value)?,
                "skn" => set_once(&mut skn, "skn", value)?,
                other => {
                    return Err(SasError::UnknownField {
                        name: other.to_owned(),
                    });
                }
            }
        }
        let sr = sr.ok_or(SasError::MissingField { name: "sr" })?;
        let sig = sig.ok_or(SasError::MissingField { name: "sig" })?;
        let se = se.ok_or(SasError::MissingField { name: "se" })?;
        let decode = |name, v| {
            unquote(v)
                .map(Cow::into_owned)
                .map_err(|_| SasError::Encoding { name })
        };
        Ok(Self {
            sr: sr.to_owned(),
            sig: decode("sig", sig)?,
            se: parse_expiry(se)?,
            skn: skn
                .filter(|s| !s.is_empty())
                .map(|s| decode("skn", s))
                .transpose()?,
        })
    }

    /// The string that was signed: raw `sr`, a newline, `se`.
    pub fn string_to_sign(&self) -> String {
        format!("{}\n{}", self.sr, self.se)
    }

    /// Checks the signature against `key` (decoded bytes) in constant time, then that the token
    /// has not expired at `now_unix` (it must hold `se > now`).
    pub fn verify(&self, key: &[u8], now_unix: u64) -> Result<(), SasError> {
        let expected = signature(key, &self.string_to_sign());
        if !bool::from(expected.as_bytes().ct_eq(self.sig.as_bytes())) {
            return Err(SasError::BadSignature);
        }
        if self.se <= now_unix {
            return Err(SasError::Expired {
                expiry: self.se,
                now: now_unix,
            });
        }
        Ok(())
    }

    /// The scope of the token: the percent-decoded `sr` split into host and path segments.
    pub fn resource(&self) -> Result<Resource, SasError> {
        let decoded = unquote(&self.sr).map_err(|_| SasError::Encoding { name: "sr" })?;
        let without_scheme = match decoded.split_once("://") {
            Some((scheme, rest)) if is_scheme(scheme) => rest,
            _ => &decoded,
        };
        let (authority, path) = without_scheme
            .split_once('/')
            .unwrap_or((without_scheme, ""));
        let host = strip_port(authority);
        if host.is_empty() {
            return Err(SasError::InvalidResource {
                sr: decoded.into_owned(),
            });
        }
        Ok(Resource {
            host: host.to_ascii_lowercase(),
            path: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// `se` must be non-empty ASCII digits without leading zeros, so that it formats back to the
/// exact text that was signed.
fn parse_expiry(se: &str) -> Result<u64, SasError> {
    let invalid = || SasError::InvalidExpiry {
        value: se.to_owned(),
    };
    let canonical = !se.is_empty()
        && se.bytes().all(|b| b.is_ascii_digit())
        && (se == "0" || !se.starts_with('0'));
    if !canonical {
        return Err(invalid());
    }
    se.parse().map_err(|_| invalid())
}

/// Whether `s` looks like a URI scheme (`sb`, `https`, ...).
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `authority` without a trailing `:port` of digits (bracketed IPv6 literals keep their
/// brackets). Idempotent: the result never ends in a strippable port.
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Formats with `sig` and `skn` percent-encoded, so that parsing gives the token back.
impl fmt::Display for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}sr={}&sig={}&se={}",
            self.sr,
            quote(&self.sig),
            self.se
        )?;
        if let Some(skn) = &self.skn {
            write!(f, "&skn={}", quote(skn))?;
        }
        Ok(())
    }
}

/// The signature is redacted: it is a bearer credential until `se`.
impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasToken")
            .field("sr", &self.sr)
            .field("sig", &"<redacted>")
            .field("se", &self.se)
            .field("skn", &self.skn)
            .finish()
    }
}

/// What a token grants access to: a host and a path prefix (spec §2.1, verification step 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Host name without port, lowercased.
    pub host: String,
    /// Decoded, non-empty path segments, such as `["devices", "dev1"]`.
    pub path: Vec<String>,
}

impl Resource {
    /// Whether this resource covers `path_segments` on `host`: the host matches
    /// case-insensitively (ports ignored on both sides) and `self.path` is a segment prefix of
    /// `path_segments` (`a/b` covers `a/b/c` but not `a/bc`).
    pub fn covers(&self, host: &str, path_segments: &[&str]) -> bool {
        strip_port(host).eq_ignore_ascii_case(&self.host)
            && self.path.len() <= path_segments.len()
            && self.path.iter().zip(path_segments).all(|(a, b)| a == b)
    }
}

/// The resource URI a device or module signs: `{host}/devices/{d}[/modules/{m}]`.
pub fn resource_uri(host: &str, identity: &Identity) -> String {
    match &identity.module {
        None => format!("{host}/devices/{}", identity.device),
        Some(module) => format!("{host}/devices/{}/modules/{module}", identity.device),
    }
}

/// The base64 HMAC-SHA256 of `string_to_sign` under `key`.
pub fn signature(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Decodes a base64 shared access key.
pub fn decode_key(key_b64: &str) -> Result<Vec<u8>, SasError> {
    BASE64.decode(key_b64).map_err(SasError::InvalidKey)
}

/// A token as the device SDK builds it: `sr = quote(uri, safe="")`, `sig` quoted the same way,
/// no `skn` (spec §2.1 table, `RenewableSasToken`).
pub fn device_token(resource_uri: &str, key_b64: &str, expiry: u64) -> Result<String, SasError> {
    let sr = quote(resource_uri);
    let sig = signature(&decode_key(key_b64)?, &format!("{sr}\n{expiry}"));
    Ok(format!("{PREFIX}sr={sr}&sig={}&se={expiry}", quote(&sig)))
}

/// A token as the service SDK's REST client builds it: `sr = quote_plus(host)`, `sig` quoted
/// keeping `/`, `skn = policy` (spec §2.1 table, §5.1).
pub fn service_token(
    host: &str,
    policy: &str,
    key_b64: &str,
    expiry: u64,
) -> Result<String, SasError> {
    let sr = quote_plus(host);
    let sig = signature(&decode_key(key_b64)?, &format!("{sr}\n{expiry}"));
    Ok(format!(
        "{PREFIX}sr={sr}&sig={}&se={expiry}&skn={policy}",
        quote_keep_slash(&sig)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DeviceId, ModuleId};

    /// The key bytes 0..=31; the vectors below were produced with it by the SDKs' own code
    /// (azure-iot-device 2.14.0 `RenewableSasToken`, azure-iot-hub 2.7.0 `SasToken`).
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    const DEVICE_VECTORS: [(&str, &str); 3] = [
        (
            "localhost/devices/dev1",
            "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=wAGQlvO1QgCRxWObPQO2gR81iI7mdu0AzuXfKaQefxM%3D&se=1795721226",
        ),
        (
            "localhost/devices/dev1/modules/mod1",
            "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1%2Fmodules%2Fmod1&sig=nRYWBAefy684BCKxyQsdVzBl08v8ARCSdiGC9xZM1N8%3D&se=1795721226",
        ),
        (
            "myhub.example.com/devices/a%b+c",
            "SharedAccessSignature sr=myhub.example.com%2Fdevices%2Fa%25b%2Bc&sig=e4GbwNKl5iUQM%2FEbUyIz5Y1E4nSMK1rYBNkHM6FdLXY%3D&se=1795721226",
        ),
    ];

    /// Includes the `localhost%3A8443\n1795717593` case of spec §2.1.
    const SERVICE_VECTORS: [(&str, &str); 2] = [
        (
            "localhost:8443",
            "SharedAccessSignature sr=localhost%3A8443&sig=VbkdUt6Nj/DEGJN1GVZVKHqGP72UWUdJisV2CGHjnRs%3D&se=1795717593&skn=iothubowner",
        ),
        (
            "myhub.example.com",
            "SharedAccessSignature sr=myhub.example.com&sig=Tt3Xeud3o5u9Lyf%2B%2BkMtn8og1KROJW31B%2Bm9q/jZqsU%3D&se=1795717593&skn=iothubowner",
        ),
    ];

    fn key() -> Vec<u8> {
        decode_key(KEY).unwrap()
    }

    #[test]
    fn device_tokens_match_the_sdk_and_verify() {
        for (uri, expected) in DEVICE_VECTORS {
            let token = device_token(uri, KEY, 1_795_721_226).unwrap();
            assert_eq!(token, expected);
            let parsed = SasToken::parse(&token).unwrap();
            assert_eq!(parsed.skn, None);
            parsed.verify(&key(), 1_795_721_225).unwrap();
            assert_eq!(
                parsed.to_string(),
                token,
                "Display round-trips the device encoding"
            );
        }
    }

    #[test]
    fn service_tokens_match_the_sdk_and_verify() {
        for (host, expected) in SERVICE_VECTORS {
            let token = service_token(host, "iothubowner", KEY, 1_795_717_593).unwrap();
            assert_eq!(token, expected);
            let parsed = SasToken::parse(&token).unwrap();
            assert_eq!(parsed.skn.as_deref(), Some("iothubowner"));
            assert_eq!(
                parsed.string_to_sign().split('\n').next(),
                Some(parsed.sr.as_str())
            );
            parsed.verify(&key(), 0).unwrap();
            let reparsed = SasToken::parse(&parsed.to_string()).unwrap();
            assert_eq!(reparsed, parsed);
            reparsed.verify(&key(), 0).unwrap();
        }
        let parsed = SasToken::parse(SERVICE_VECTORS[0].1).unwrap();
        assert_eq!(parsed.sr, "localhost%3A8443");
        assert_eq!(parsed.string_to_sign(), "localhost%3A8443\n1795717593");
        assert_eq!(parsed.sig, "VbkdUt6Nj/DEGJN1GVZVKHqGP72UWUdJisV2CGHjnRs=");
    }

    #[test]
    fn amqp_style_raw_host_is_signed_raw() {
        let sig = signature(&key(), "localhost:8443\n100");
        let token = format!(
            "{PREFIX}sr=localhost:8443&sig={}&se=100&skn=service",
            quote_keep_slash(&sig)
        );
        let parsed = SasToken::parse(&token).unwrap();
        parsed.verify(&key(), 99).unwrap();
        let resource = parsed.resource().unwrap();
        assert_eq!(resource.host, "localhost");
        assert!(resource.path.is_empty());
    }

    #[test]
    fn verification_failures_are_distinct() {
        let token = SasToken::parse(DEVICE_VECTORS[0].1).unwrap();
        assert_eq!(
            token.verify(&key(), 1_795_721_226),
            Err(SasError::Expired {
                expiry: 1_795_721_226,
                now: 1_795_721_226
            })
        );
        assert_eq!(token.verify(&[1, 2, 3], 0), Err(SasError::BadSignature));
        let decoded_sr = SasToken {
            sr: "localhost/devices/dev1".into(),
            ..token.clone()
        };
        assert_eq!(decoded_sr.verify(&key(), 0), Err(SasError::BadSignature));
        let later = SasToken {
            se: token.se + 1,
            ..token.clone()
        };
        assert_eq!(later.verify(&key(), 0), Err(SasError::BadSignature));
        // A bad signature is reported even when the token is also expired.
        assert_eq!(token.verify(&[0], u64::MAX), Err(SasError::BadSignature));
    }

    #[test]
    fn parses_the_captured_device_password() {
        let captured = "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=AGvOe9dHpYjJnA6TXAQSlRt7QLGV7QmMy9CdMnwgZ4Y%3D&se=1795717626";
        let token = SasToken::parse(captured).unwrap();
        assert_eq!(token.sr, "localhost%2Fdevices%2Fdev1");
        assert_eq!(token.sig, "AGvOe9dHpYjJnA6TXAQSlRt7QLGV7QmMy9CdMnwgZ4Y=");
        assert_eq!(token.se, 1_795_717_626);
        assert_eq!(token.skn, None);
        assert_eq!(token.to_string(), captured);
        let resource = token.resource().unwrap();
        assert_eq!(
            resource,
            Resource {
                host: "localhost".into(),
                path: vec!["devices".into(), "dev1".into()]
            }
        );
    }

    #[test]
    fn parse_accepts_variants() {
        let bare = SasToken::parse("se=5&skn=&sig=a%2Bb&sr=h").unwrap();
        assert_eq!(
            bare,
            SasToken {
                sr: "h".into(),
                sig: "a+b".into(),
                se: 5,
                skn: None
            }
        );
        let spaced = SasToken::parse("  SharedAccessSignature  sr = h & sig=x & se=0 ").unwrap();
        assert_eq!(
            spaced,
            SasToken {
                sr: "h".into(),
                sig: "x".into(),
                se: 0,
                skn: None
            }
        );
        let plus = SasToken::parse("sr=h&sig=a+b/c=&se=1").unwrap();
        assert_eq!(plus.sig, "a+b/c=", "sig is unquoted, never unquote_plus");
    }

    #[test]
    fn parse_rejections() {
        let cases: &[(&str, SasError)] = &[
            (
                "SharedAccessSignature sr=h&sig=s",
                SasError::MissingField { name: "se" },
            ),
            ("sr=h&se=1", SasError::MissingField { name: "sig" }),
            ("sig=s&se=1", SasError::MissingField { name: "sr" }),
            (
                "sr=h&sig=s&se=1&",
                SasError::Malformed {
                    field: String::new(),
                },
            ),
            (
                "sr=h&sig=s&se=1&x=y",
                SasError::UnknownField { name: "x".into() },
            ),
            (
                "sr=h&sr=h&sig=s&se=1",
                SasError::DuplicateField { name: "sr" },
            ),
            (
                "sr=h&sig=s&se=-1",
                SasError::InvalidExpiry { value: "-1".into() },
            ),
            (
                "sr=h&sig=s&se=+1",
                SasError::InvalidExpiry { value: "+1".into() },
            ),
            (
                "sr=h&sig=s&se=01",
                SasError::InvalidExpiry { value: "01".into() },
            ),
            (
                "sr=h&sig=s&se=",
                SasError::InvalidExpiry {
                    value: String::new(),
                },
            ),
            (
                "sr=h&sig=s&se=99999999999999999999",
                SasError::InvalidExpiry {
                    value: "99999999999999999999".into(),
                },
            ),
            ("sr=h&sig=%FF&se=1", SasError::Encoding { name: "sig" }),
            (
                "",
                SasError::Malformed {
                    field: String::new(),
                },
            ),
        ];
        for (s, err) in cases {
            assert_eq!(SasToken::parse(s).as_ref(), Err(err), "{s:?}");
        }
    }

    #[test]
    fn resources() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "localhost%2Fdevices%2Fdev1",
                "localhost",
                &["devices", "dev1"],
            ),
            (
                "MyHub.Example.COM%3A8443%2Fdevices%2FDev1%2F",
                "myhub.example.com",
                &["devices", "Dev1"],
            ),
            (
                "myhub%2Fdevices%2Fa%25b%2Bc",
                "myhub",
                &["devices", "a%b+c"],
            ),
            ("sb%3A%2F%2Fhost%2Fpath", "host", &["path"]),
            (
                "%5B%3A%3A1%5D%3A8443%2Fdevices%2Fd",
                "[::1]",
                &["devices", "d"],
            ),
            (
                "0ne00000001%2Fregistrations%2Freg1",
                "0ne00000001",
                &["registrations", "reg1"],
            ),
        ];
        for (sr, host, path) in cases {
            let token = SasToken {
                sr: (*sr).into(),
                sig: String::new(),
                se: 0,
                skn: None,
            };
            let resource = token.resource().unwrap();
            assert_eq!(resource.host, *host, "{sr}");
            assert_eq!(resource.path, *path, "{sr}");
        }
        for sr in ["", "%2Fdevices", ":8443", "%FF"] {
            let token = SasToken {
                sr: sr.into(),
                sig: String::new(),
                se: 0,
                skn: None,
            };
            assert!(token.resource().is_err(), "{sr:?}");
        }
    }

    #[test]
    fn covers_is_a_segment_prefix_with_host_case_and_port_ignored() {
        let r = Resource {
            host: "hub.local".into(),
            path: vec!["devices".into(), "d1".into()],
        };
        let cases: &[(&str, &[&str], bool)] = &[
            ("hub.local", &["devices", "d1"], true),
            ("HUB.local:8883", &["devices", "d1", "modules", "m"], true),
            ("hub.local", &["devices", "d12"], false),
            ("hub.local", &["devices"], false),
            ("hub.local", &["devices", "D1"], false),
            ("other.local", &["devices", "d1"], false),
        ];
        for (host, path, expected) in cases {
            assert_eq!(r.covers(host, path), *expected, "{host} {path:?}");
        }
        let whole_hub = Resource {
            host: "hub.local".into(),
            path: vec![],
        };
        assert!(whole_hub.covers("hub.local:443", &["devices", "x"]));
    }

    #[test]
    fn resource_uris() {
        let d = DeviceId::parse("dev1").unwrap();
        assert_eq!(
            resource_uri("h", &Identity::device(d.clone())),
            "h/devices/dev1"
        );
        let m = Identity::module(d, ModuleId::parse("$edgeHub").unwrap());
        assert_eq!(resource_uri("h", &m), "h/devices/dev1/modules/$edgeHub");
    }

    #[test]
    fn keys_and_debug() {
        assert!(matches!(
            decode_key("not base64!"),
            Err(SasError::InvalidKey(_))
        ));
        assert!(matches!(
            device_token("h", "%%%", 1),
            Err(SasError::InvalidKey(_))
        ));
        let token = SasToken::parse(DEVICE_VECTORS[0].1).unwrap();
        assert!(!format!("{token:?}").contains("wAGQ"));
    }
}
