//! Messages and the MQTT property bag that carries their properties in a topic
//! (spec §3.5 telemetry, §3.6 C2D, §3.7 module inputs, pitfall §0.5).
//!
//! A property bag is `key=value` pairs joined by `&`, every key and value percent-encoded with
//! Python's `quote(safe="")`, so `$.mid` travels as `%24.mid`. Decoding follows the device SDK:
//! a pair without `=` has a null value, `key=` has an empty value, and keys and values are
//! decoded with `unquote` (a `+` stays `+`). Two deliberate differences from the SDK: a pair is
//! split on its *first* `=` (the SDK drops anything after a second `=`, which its own encoder
//! never produces), and empty pairs (`a=1&&b=2`, a trailing `&`) are skipped.
//!
//! Keys are classified after decoding: the known system keys ([`SYSTEM_KEYS`]) fill
//! [`SystemProperties`] (a repeated key keeps its last value, like the SDK's dict), any other
//! `$.`-prefixed key goes to [`SystemProperties::other`], everything else is an application
//! property, kept in order with duplicates.
//!
//! Invariant: for any bag that decodes, `encode(decode(bag))` decodes to the same value.
//! Encoding writes system keys in the SDK's order, then `other`, then the application
//! properties in the order given (the SDK sorts its custom properties; callers that want
//! that order sort before encoding).

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::percent::{quote, unquote};

/// Application (or unknown system) properties: key and optional value, in wire order.
pub type Properties = Vec<(String, Option<String>)>;

/// The system keys with typed fields, in the order the encoder writes them: the device SDK's
/// order first (spec §3.5), then the keys only the hub or an edge hub sends (spec §3.6-3.7).
pub const SYSTEM_KEYS: [&str; 12] = [
    "$.on",
    "$.mid",
    "$.cid",
    "$.uid",
    "$.ct",
    "$.ce",
    "$.ifid",
    "$.exp",
    "$.to",
    "$.cdid",
    "$.cmid",
    "iothub-ack",
];

/// Why a property bag could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropError {
    /// A key or value does not percent-decode to UTF-8.
    #[error("property bag text {text:?} does not percent-decode to UTF-8")]
    Encoding {
        /// The offending encoded key or value.
        text: String,
    },
}

/// System properties of a message, as carried in the property bag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProperties {
    /// `$.on`: the module output name (edge routing input).
    pub output_name: Option<String>,
    /// `$.mid`: message-id.
    pub message_id: Option<String>,
    /// `$.cid`: correlation-id.
    pub correlation_id: Option<String>,
    /// `$.uid`: user-id.
    pub user_id: Option<String>,
    /// `$.ct`: content-type.
    pub content_type: Option<String>,
    /// `$.ce`: content-encoding.
    pub content_encoding: Option<String>,
    /// `$.ifid`: Plug and Play or security interface ID.
    pub interface_id: Option<String>,
    /// `$.exp`: absolute expiry, ISO-8601 text as sent (`datetime.isoformat()`).
    pub expiry_time_utc: Option<String>,
    /// `$.to`: destination, such as `/devices/dev1/messages/deviceBound`.
    pub to: Option<String>,
    /// `$.cdid`: the device that sent the message (edge hub to module).
    pub connection_device_id: Option<String>,
    /// `$.cmid`: the module that sent the message (edge hub to module).
    pub connection_module_id: Option<String>,
    /// `iothub-ack`: C2D feedback request, `none|positive|negative|full`.
    pub ack: Option<String>,
    /// Other `$.`-prefixed properties, with their full keys, in wire order.
    pub other: Properties,
}

impl SystemProperties {
    /// The typed field for a decoded system key, if it is one of [`SYSTEM_KEYS`].
    pub fn field(&self, key: &str) -> Option<&Option<String>> {
        Some(match key {
            "$.on" => &self.output_name,
            "$.mid" => &self.message_id,
            "$.cid" => &self.correlation_id,
            "$.uid" => &self.user_id,
            "$.ct" => &self.content_type,
            "$.ce" => &self.content_encoding,
            "$.ifid" => &self.interface_id,
            "$.exp" => &self.expiry_time_utc,
            "$.to" => &self.to,
            "$.cdid" => &self.connection_device_id,
            "$.cmid" => &self.connection_module_id,
            "iothub-ack" => &self.ack,
            _ => return None,
        })
    }

    /// Mutable access to the typed field for a decoded system key.
    pub fn field_mut(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "$.on" => &mut self.output_name,
            "$.mid" => &mut self.message_id,
            "$.cid" => &mut self.correlation_id,
            "$.uid" => &mut self.user_id,
            "$.ct" => &mut self.content_type,
            "$.ce" => &mut self.content_encoding,
            "$.ifid" => &mut self.interface_id,
            "$.exp" => &mut self.expiry_time_utc,
            "$.to" => &mut self.to,
            "$.cdid" => &mut self.connection_device_id,
            "$.cmid" => &mut self.connection_module_id,
            "iothub-ack" => &mut self.ack,
            _ => return None,
        })
    }

    /// `$.exp` as milliseconds since the Unix epoch, the unit of AMQP's
    /// `absolute-expiry-time`. Accepts RFC 3339 / ISO-8601 with an offset, or without one
    /// (taken as UTC, as Python's naive `isoformat()` means here).
    pub fn expiry_unix_ms(&self) -> Option<i64> {
        let text = self.expiry_time_utc.as_deref()?;
        let at = OffsetDateTime::parse(text, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
            .or_else(|_| {
                PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(PrimitiveDateTime::assume_utc)
            })
            .ok()?;
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
    }

    /// The `properties.system` object that `az iot hub monitor-events --props all` prints.
    ///
    /// az-cli builds it from the AMQP message properties (uamqp `MessageProperties`) with
    /// `parse_entity(message.properties, filter_none=True)`: attribute names in `snake_case`,
    /// sorted as Python's `dir()` sorts them, empty values left out. The keys produced here are
    /// `absolute_expiry_time` (integer milliseconds, from `$.exp` when it parses),
    /// `content_encoding`, `content_type`, `correlation_id`, `message_id`, `to` and `user_id`.
    /// The connection device and module IDs are AMQP *annotations*
    /// (`iothub-connection-device-id`, ...), not part of this object.
    pub fn to_az_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(ms) = self.expiry_unix_ms() {
            map.insert("absolute_expiry_time".into(), ms.into());
        }
        let strings = [
            ("content_encoding", &self.content_encoding),
            ("content_type", &self.content_type),
            ("correlation_id", &self.correlation_id),
            ("message_id", &self.message_id),
            ("to", &self.to),
            ("user_id", &self.user_id),
        ];
        for (name, value) in strings {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                map.insert(name.into(), v.into());
            }
        }
        map
    }
}

/// Properties as a JSON object (`properties.application` in `az ... monitor-events`): a null
/// value stays `null`, and a repeated key keeps its last value.
pub fn properties_to_json(props: &[(String, Option<String>)]) -> Map<String, Value> {
    props
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
        .collect()
}

/// A message: body bytes, system properties and application properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The payload, raw bytes.
    pub body: Vec<u8>,
    /// System properties.
    pub system: SystemProperties,
    /// Application properties, in wire order.
    pub app: Properties,
}

impl Message {
    /// A message with `body` and no properties.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// A message with `body` and the properties of an encoded property `bag`.
    pub fn from_property_bag(body: impl Into<Vec<u8>>, bag: &str) -> Result<Self, PropError> {
        let (system, app) = decode_property_bag(bag)?;
        Ok(Self {
            body: body.into(),
            system,
            app,
        })
    }

    /// The encoded property bag of this message's properties.
    pub fn property_bag(&self) -> String {
        encode_property_bag(&self.system, &self.app)
    }

    /// The value of the first application property named `key` (`None` also when its value
    /// is null).
    pub fn app_property(&self, key: &str) -> Option<&str> {
        self.app
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn decode(text: &str) -> Result<String, PropError> {
    unquote(text)
        .map(Cow::into_owned)
        .map_err(|_| PropError::Encoding {
            text: text.to_owned(),
        })
}

/// Decodes a property bag into system and application properties (see the module docs).
pub fn decode_property_bag(bag: &str) -> Result<(SystemProperties, Properties), PropError> {
    let mut system = SystemProperties::default();
    let mut app = Properties::new();
    for pair in bag.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (decode(k)?, Some(decode(v)?)),
            None => (decode(pair)?, None),
        };
        if let Some(slot) = system.field_mut(&key) {
            *slot = value;
        } else if key.starts_with("$.") {
            system.other.push((key, value));
        } else {
            app.push((key, value));
        }
    }
    Ok((system, app))
}

/// Encodes properties as a property bag: system keys in [`SYSTEM_KEYS`] order, then
/// `system.other`, then `app`; a null value is written as the bare key.
pub fn encode_property_bag(system: &SystemProperties, app: &[(String, Option<String>)]) -> String {
    let typed = SYSTEM_KEYS.iter().filter_map(|&key| {
        let value = system.field(key)?.as_deref()?;
        Some((key, Some(value)))
    });
    let rest = system
        .other
        .iter()
        .chain(app)
        .map(|(k, v)| (k.as_str(), v.as_deref()));
    typed
        .chain(rest)
        .map(|(key, value)| match value {
            Some(value) => format!("{}={}", quote(key), quote(value)),
            None => quote(key).into_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Some(owned)`, shorter in the tables below.
    #[allow(clippy::unnecessary_wraps)] // The wrapping is the point of the helper.
    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn props(pairs: &[(&str, Option<&str>)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn decodes_captured_telemetry_bag() {
        // Spec §3.5, captured from azure-iot-device 2.14.0.
        let bag = "%24.mid=mid1&%24.cid=cid1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.exp=2030-01-01T00%3A00%3A00%2B00%3A00&alert=true&prop%20a=v%2F1";
        let (system, app) = decode_property_bag(bag).unwrap();
        assert_eq!(
            system,
            SystemProperties {
                message_id: some("mid1"),
                correlation_id: some("cid1"),
                content_type: some("application/json"),
                content_encoding: some("utf-8"),
                expiry_time_utc: some("2030-01-01T00:00:00+00:00"),
                ..SystemProperties::default()
            }
        );
        assert_eq!(
            app,
            props(&[("alert", Some("true")), ("prop a", Some("v/1"))])
        );
        assert_eq!(
            encode_property_bag(&system, &app),
            bag,
            "SDK order and encoding"
        );
    }

    #[test]
    fn decodes_captured_module_output_and_input_bags() {
        let (system, app) = decode_property_bag("%24.on=output1").unwrap();
        assert_eq!(system.output_name.as_deref(), Some("output1"));
        assert!(app.is_empty());
        let (system, app) = decode_property_bag("%24.mid=x&k=v").unwrap();
        assert_eq!(system.message_id.as_deref(), Some("x"));
        assert_eq!(app, props(&[("k", Some("v"))]));
    }

    #[test]
    fn decodes_c2d_bags_like_the_sdk() {
        // Spec §3.6 (Azure's format) and Appendix A (what the SDK parsed).
        let bag = "%24.mid=84c0&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&%24.ce=utf-8&iothub-ack=full&prop1=value1";
        let (system, app) = decode_property_bag(bag).unwrap();
        assert_eq!(system.message_id.as_deref(), Some("84c0"));
        assert_eq!(
            system.to.as_deref(),
            Some("/devices/dev1/messages/deviceBound")
        );
        assert_eq!(system.ack.as_deref(), Some("full"));
        assert_eq!(app, props(&[("prop1", Some("value1"))]));

        let captured = "%24.mid=c2dmid&%24.to=x&%24.ct=text%2Fplain&%24.ce=utf-8&%24.cid=corr&iothub-ack=full&myprop=x%20y";
        let msg = Message::from_property_bag(b"hi".to_vec(), captured).unwrap();
        assert_eq!(msg.system.message_id.as_deref(), Some("c2dmid"));
        assert_eq!(msg.system.correlation_id.as_deref(), Some("corr"));
        assert_eq!(msg.system.content_type.as_deref(), Some("text/plain"));
        assert_eq!(msg.app_property("myprop"), Some("x y"));
    }

    #[test]
    fn decoding_rules() {
        let cases: &[(&str, Properties)] = &[
            ("", vec![]),
            ("a", props(&[("a", None)])),
            ("a=", props(&[("a", Some(""))])),
            ("a=1&&b=2&", props(&[("a", Some("1")), ("b", Some("2"))])),
            ("a+b=c+d", props(&[("a+b", Some("c+d"))])),
            ("k=a=b", props(&[("k", Some("a=b"))])),
            ("k=%zz%4", props(&[("k", Some("%zz%4"))])),
            ("k=1&k=2", props(&[("k", Some("1")), ("k", Some("2"))])),
            ("=v", props(&[("", Some("v"))])),
            ("%C3%A9=%E2%82%AC", props(&[("é", Some("€"))])),
        ];
        for (bag, expected) in cases {
            let (system, app) = decode_property_bag(bag).unwrap();
            assert_eq!(system, SystemProperties::default(), "{bag:?}");
            assert_eq!(&app, expected, "{bag:?}");
        }
    }

    #[test]
    fn system_keys_in_both_spellings_last_wins_and_other() {
        let (system, app) = decode_property_bag(
            "$.mid=a&%24.mid=b&%24.cdid=d1&$.cmid&%24.xyz=1&$.q&iothub-ack=none",
        )
        .unwrap();
        assert_eq!(system.message_id.as_deref(), Some("b"));
        assert_eq!(system.connection_device_id.as_deref(), Some("d1"));
        assert_eq!(system.connection_module_id, None);
        assert_eq!(system.ack.as_deref(), Some("none"));
        assert_eq!(system.other, props(&[("$.xyz", Some("1")), ("$.q", None)]));
        assert!(app.is_empty());
        assert_eq!(
            encode_property_bag(&system, &app),
            "%24.mid=b&%24.cdid=d1&iothub-ack=none&%24.xyz=1&%24.q"
        );
    }

    #[test]
    fn rejects_non_utf8() {
        assert_eq!(
            decode_property_bag("k=%FF"),
            Err(PropError::Encoding { text: "%FF".into() })
        );
        assert!(decode_property_bag("%C3=v").is_err());
    }

    #[test]
    fn encode_orders_system_keys_like_the_sdk() {
        let system = SystemProperties {
            ack: some("full"),
            expiry_time_utc: some("2030"),
            to: some("/t"),
            interface_id: some("urn:x"),
            content_encoding: some("utf-8"),
            content_type: some("a/b"),
            user_id: some("u"),
            correlation_id: some("c"),
            message_id: some("m"),
            output_name: some("o"),
            connection_device_id: some("d"),
            connection_module_id: some("mm"),
            other: vec![],
        };
        let app = props(&[("z", Some("1")), ("a", None), ("e", Some(""))]);
        assert_eq!(
            encode_property_bag(&system, &app),
            "%24.on=o&%24.mid=m&%24.cid=c&%24.uid=u&%24.ct=a%2Fb&%24.ce=utf-8&%24.ifid=urn%3Ax&\
             %24.exp=2030&%24.to=%2Ft&%24.cdid=d&%24.cmid=mm&iothub-ack=full&z=1&a&e="
        );
        assert_eq!(encode_property_bag(&SystemProperties::default(), &[]), "");
    }

    #[test]
    fn round_trips() {
        let mut msg = Message::new("body");
        msg.system.message_id = some("id&=/ %");
        msg.system.other.push(("$.custom".into(), some("x")));
        msg.app = props(&[
            ("b", Some("2")),
            ("a", None),
            ("a", Some("")),
            ("", Some("v")),
        ]);
        let bag = msg.property_bag();
        let back = Message::from_property_bag("body", &bag).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn expiry_parsing() {
        let cases = [
            ("2030-01-01T00:00:00+00:00", Some(1_893_456_000_000)),
            ("2030-01-01T01:00:00+01:00", Some(1_893_456_000_000)),
            ("2030-01-01T00:00:00.250Z", Some(1_893_456_000_250)),
            ("2030-01-01T00:00:00.123456", Some(1_893_456_000_123)),
            ("2030-01-01T00:00:00", Some(1_893_456_000_000)),
            ("soon", None),
        ];
        for (text, expected) in cases {
            let system = SystemProperties {
                expiry_time_utc: some(text),
                ..SystemProperties::default()
            };
            assert_eq!(system.expiry_unix_ms(), expected, "{text}");
        }
    }

    #[test]
    fn az_json_views() {
        let (system, app) = decode_property_bag(
            "%24.mid=m&%24.cid=&%24.ct=application%2Fjson&%24.ce=utf-8&%24.uid=u&%24.to=%2Fx&\
             %24.exp=2030-01-01T00%3A00%3A00%2B00%3A00&%24.on=o&iothub-ack=full&k=v&n",
        )
        .unwrap();
        let json = Value::Object(system.to_az_json());
        assert_eq!(
            json.to_string(),
            r#"{"absolute_expiry_time":1893456000000,"content_encoding":"utf-8","content_type":"application/json","message_id":"m","to":"/x","user_id":"u"}"#
        );
        let app_json = Value::Object(properties_to_json(&app));
        assert_eq!(app_json.to_string(), r#"{"k":"v","n":null}"#);
    }
}
