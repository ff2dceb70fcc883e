//! The topics this client subscribes to and receives on (hub to device, spec §3.4-§3.9), and
//! the outbound topics it publishes to.
//!
//! [`HubTopic::parse`] reads a topic the way azure-iot-device does: device and module IDs are
//! compared unencoded, method and input names and query values are percent-decoded with
//! `unquote` semantics, and query keys lose their leading `$` (`$rid`, `%24rid` and `rid` are
//! the same key; a repeated key keeps its last value). Property bags are kept encoded; the
//! caller decodes them with [`spoke_core::message::Message::from_property_bag`].
//!
//! Invariant: for every `t` that [`HubTopic::parse`] returns for an identity,
//! `HubTopic::parse(&t.to_topic(identity), identity) == Ok(t)`.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use spoke_core::ids::{Identity, ModuleId};
use spoke_core::topic::{self as core_topic, DeviceTopic};

/// Everything except Python's always-safe characters: `quote(s, safe="")` (spec §2.1, §3.5).
const SAFE_NONE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Python `urllib.parse.quote(s, safe="")`.
pub(crate) fn quote(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, SAFE_NONE).into()
}

/// Why a received topic was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubTopicError {
    /// Not a topic the hub sends to this identity.
    #[error("{topic:?} is not a hub-to-device topic for this identity")]
    Unknown {
        /// The topic.
        topic: String,
    },
    /// A part does not percent-decode to UTF-8.
    #[error("topic part {text:?} does not percent-decode to UTF-8")]
    Encoding {
        /// The encoded text.
        text: String,
    },
    /// A required query parameter or path part is missing or empty.
    #[error("topic lacks {what}")]
    Missing {
        /// What is missing (`$rid`, method name, input name).
        what: &'static str,
    },
    /// A number in the topic does not parse.
    #[error("{what} {text:?} is not a valid number")]
    InvalidNumber {
        /// Which number (`status`, `$version`).
        what: &'static str,
        /// The decoded text.
        text: String,
    },
}

/// A topic the hub publishes to a device or module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubTopic {
    /// C2D message: `devices/{d}/messages/devicebound/{bag}` (§3.6).
    C2d {
        /// The property bag, still encoded.
        bag: String,
    },
    /// Module input: `devices/{d}/modules/{m}/inputs/{input}/{bag}` (§3.7).
    Input {
        /// The input name, decoded.
        input: String,
        /// The property bag, still encoded.
        bag: String,
    },
    /// Twin response: `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]` (§3.8).
    TwinResponse {
        /// The status.
        status: u16,
        /// The request ID, decoded.
        rid: String,
        /// The new reported version (PATCH responses).
        version: Option<u64>,
    },
    /// Desired-properties patch: `$iothub/twin/PATCH/properties/desired/?$version={v}` (§3.8).
    /// The authoritative `$version` is the one in the body.
    DesiredPatch {
        /// The version from the topic, if it has one.
        version: Option<u64>,
    },
    /// Direct method request: `$iothub/methods/POST/{name}/?$rid={rid}` (§3.9).
    MethodRequest {
        /// The method name, decoded.
        name: String,
        /// The request ID, decoded.
        rid: String,
    },
}

fn decode(text: &str) -> Result<String, HubTopicError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| HubTopicError::Encoding {
            text: text.to_owned(),
        })
}

/// The last value of query parameter `name` (leading `$` ignored on keys), decoded.
fn query_param(query: &str, name: &str) -> Result<Option<String>, HubTopicError> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)?.trim_start_matches('$') == name {
            found = Some(decode(value)?);
        }
    }
    Ok(found)
}

fn rid(query: &str) -> Result<String, HubTopicError> {
    query_param(query, "rid")?
        .filter(|r| !r.is_empty())
        .ok_or(HubTopicError::Missing { what: "$rid" })
}

fn version(query: &str) -> Result<Option<u64>, HubTopicError> {
    query_param(query, "version")?
        .map(|text| {
            text.parse().map_err(|_| HubTopicError::InvalidNumber {
                what: "$version",
                text,
            })
        })
        .transpose()
}

impl HubTopic {
    /// Parses a topic received by `identity`. A missing trailing `/` before the `?` query is
    /// tolerated, as in the SDK.
    pub fn parse(topic: &str, identity: &Identity) -> Result<Self, HubTopicError> {
        let unknown = || HubTopicError::Unknown {
            topic: topic.to_owned(),
        };
        if let Some(rest) = topic.strip_prefix("$iothub/") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let path = path.strip_suffix('/').unwrap_or(path);
            let segments: Vec<&str> = path.split('/').collect();
            return match segments.as_slice() {
                ["twin", "res", status] => {
                    let status = decode(status)?;
                    let status = status.parse().map_err(|_| HubTopicError::InvalidNumber {
                        what: "status",
                        text: status,
                    })?;
                    Ok(Self::TwinResponse {
                        status,
                        rid: rid(query)?,
                        version: version(query)?,
                    })
                }
                ["twin", "PATCH", "properties", "desired"] => Ok(Self::DesiredPatch {
                    version: version(query)?,
                }),
                ["methods", "POST", name] => {
                    let name = decode(name)?;
                    if name.is_empty() {
                        return Err(HubTopicError::Missing {
                            what: "method name",
                        });
                    }
                    Ok(Self::MethodRequest {
                        name,
                        rid: rid(query)?,
                    })
                }
                _ => Err(unknown()),
            };
        }
        let own = topic
            .strip_prefix("devices/")
            .and_then(|t| t.strip_prefix(identity.device.as_str()))
            .and_then(|t| t.strip_prefix('/'))
            .ok_or_else(unknown)?;
        match &identity.module {
            None => {
                let bag = own
                    .strip_prefix("messages/devicebound/")
                    .ok_or_else(unknown)?;
                Ok(Self::C2d {
                    bag: bag.to_owned(),
                })
            }
            Some(module) => {
                let rest = own
                    .strip_prefix("modules/")
                    .and_then(|t| t.strip_prefix(module.as_str()))
                    .and_then(|t| t.strip_prefix("/inputs/"))
                    .ok_or_else(unknown)?;
                let (input, bag) = rest.split_once('/').unwrap_or((rest, ""));
                let input = decode(input)?;
                if input.is_empty() {
                    return Err(HubTopicError::Missing { what: "input name" });
                }
                Ok(Self::Input {
                    input,
                    bag: bag.to_owned(),
                })
            }
        }
    }

    /// The topic as the hub formats it for `identity` (Spoke Hub's and Azure's form).
    pub fn to_topic(&self, identity: &Identity) -> String {
        match self {
            Self::C2d { bag } => core_topic::c2d(&identity.device, bag),
            Self::Input { input, bag } => match &identity.module {
                Some(module) => core_topic::module_input(&identity.device, module, input, bag),
                None => format!("devices/{}/inputs/{}/{bag}", identity.device, quote(input)),
            },
            Self::TwinResponse {
                status,
                rid,
                version,
            } => core_topic::twin_response(*status, rid, *version),
            Self::DesiredPatch { version: Some(v) } => core_topic::desired_patch(*v),
            Self::DesiredPatch { version: None } => "$iothub/twin/PATCH/properties/desired/".into(),
            Self::MethodRequest { name, rid } => core_topic::method_request(name, rid),
        }
    }
}

/// The subscription filters this client makes at connect (spec §3.4): C2D for a device or
/// inputs for a module, then methods, twin responses and desired patches, and with
/// `edge_modules` the module-scoped filters of an IoT Edge device (`docs/protocol.md`).
pub(crate) fn filters(identity: &Identity, edge_modules: bool) -> Vec<String> {
    let messages = match &identity.module {
        None => core_topic::c2d_filter(&identity.device),
        Some(module) => core_topic::module_inputs_filter(&identity.device, module),
    };
    let mut filters = vec![
        messages,
        core_topic::METHODS_FILTER.to_owned(),
        core_topic::TWIN_RESPONSES_FILTER.to_owned(),
        core_topic::DESIRED_PATCHES_FILTER.to_owned(),
    ];
    if edge_modules {
        filters.extend(core_topic::EDGE_MODULES_FILTERS.map(str::to_owned));
    }
    filters
}

/// `topic` (an `$iothub/...` topic) as `module`'s scoped topic, or as is for the client's own.
pub(crate) fn scoped(module: Option<&ModuleId>, topic: String) -> String {
    match module {
        Some(module) => core_topic::module_scoped(module, &topic),
        None => topic,
    }
}

/// Telemetry or module output topic: `devices/{d}[/modules/{m}]/messages/events/{bag}` (§3.5).
pub(crate) fn events(identity: &Identity, bag: String) -> String {
    DeviceTopic::Events {
        device: identity.device.clone(),
        module: identity.module.clone(),
        bag,
    }
    .to_string()
}

/// Twin GET: `$iothub/twin/GET/?$rid={rid}` (§3.8).
pub(crate) fn twin_get(rid: &str) -> String {
    DeviceTopic::TwinGet {
        rid: rid.to_owned(),
    }
    .to_string()
}

/// Reported-properties patch: `$iothub/twin/PATCH/properties/reported/?$rid={rid}` (§3.8).
pub(crate) fn twin_patch_reported(rid: &str) -> String {
    DeviceTopic::TwinPatchReported {
        rid: rid.to_owned(),
    }
    .to_string()
}

/// Method response: `$iothub/methods/res/{status}/?$rid={rid}` (§3.9).
pub(crate) fn method_response(status: i32, rid: &str) -> String {
    DeviceTopic::MethodResponse {
        status,
        rid: rid.to_owned(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use spoke_core::ids::DeviceId;

    use super::*;

    fn device() -> Identity {
        Identity::device(DeviceId::parse("dev1").unwrap())
    }

    fn module() -> Identity {
        Identity::module(
            DeviceId::parse("dev1").unwrap(),
            ModuleId::parse("mod1").unwrap(),
        )
    }

    #[test]
    fn parses_captured_hub_topics() {
        // Spec Appendix A.
        let cases = [
            (
                device(),
                "devices/dev1/messages/devicebound/%24.mid=c2dmid&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&%24.ct=text%2Fplain&%24.ce=utf-8&%24.cid=corr&iothub-ack=full&myprop=x%20y",
                HubTopic::C2d {
                    bag: "%24.mid=c2dmid&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&%24.ct=text%2Fplain&%24.ce=utf-8&%24.cid=corr&iothub-ack=full&myprop=x%20y".into(),
                },
            ),
            (
                device(),
                "$iothub/twin/res/200/?$rid=3d754650",
                HubTopic::TwinResponse {
                    status: 200,
                    rid: "3d754650".into(),
                    version: None,
                },
            ),
            (
                device(),
                "$iothub/twin/res/204/?$rid=863e&$version=6",
                HubTopic::TwinResponse {
                    status: 204,
                    rid: "863e".into(),
                    version: Some(6),
                },
            ),
            (
                device(),
                "$iothub/methods/POST/reboot/?$rid=1",
                HubTopic::MethodRequest {
                    name: "reboot".into(),
                    rid: "1".into(),
                },
            ),
            (
                device(),
                "$iothub/twin/PATCH/properties/desired/?$version=4",
                HubTopic::DesiredPatch { version: Some(4) },
            ),
            (
                module(),
                "devices/dev1/modules/mod1/inputs/input1/%24.mid=x&k=v",
                HubTopic::Input {
                    input: "input1".into(),
                    bag: "%24.mid=x&k=v".into(),
                },
            ),
        ];
        for (identity, topic, expected) in cases {
            let parsed = HubTopic::parse(topic, &identity).unwrap();
            assert_eq!(parsed, expected, "{topic}");
            assert_eq!(parsed.to_topic(&identity), topic);
        }
    }

    #[test]
    fn tolerates_sdk_variants() {
        let id = device();
        assert_eq!(
            HubTopic::parse("$iothub/twin/res/200?%24rid=a%2Fb&rid=c", &id).unwrap(),
            HubTopic::TwinResponse {
                status: 200,
                rid: "c".into(),
                version: None
            }
        );
        assert_eq!(
            HubTopic::parse("$iothub/twin/PATCH/properties/desired/", &id).unwrap(),
            HubTopic::DesiredPatch { version: None }
        );
        assert_eq!(
            HubTopic::parse("$iothub/methods/POST/a%20b/?$rid=r%261", &id).unwrap(),
            HubTopic::MethodRequest {
                name: "a b".into(),
                rid: "r&1".into()
            }
        );
        assert_eq!(
            HubTopic::parse("devices/dev1/modules/mod1/inputs/in%2F1", &module()).unwrap(),
            HubTopic::Input {
                input: "in/1".into(),
                bag: String::new()
            }
        );
    }

    #[test]
    fn rejects_foreign_and_malformed_topics() {
        let cases = [
            (device(), "devices/dev2/messages/devicebound/"),
            (device(), "devices/dev11/messages/devicebound/"),
            (device(), "devices/dev1/modules/mod1/inputs/i/"),
            (module(), "devices/dev1/messages/devicebound/"),
            (module(), "devices/dev1/modules/mod2/inputs/i/"),
            (module(), "devices/dev1/modules/mod1/inputs//"),
            (device(), "$iothub/twin/res/abc/?$rid=1"),
            (device(), "$iothub/twin/res/200/"),
            (device(), "$iothub/twin/res/204/?$rid=1&$version=x"),
            (device(), "$iothub/methods/POST//?$rid=1"),
            (device(), "$iothub/methods/POST/m/?$rid="),
            (device(), "$iothub/methods/POST/%FF/?$rid=1"),
            (device(), "$iothub/twin/GET/?$rid=1"),
            (device(), "other"),
        ];
        for (identity, topic) in cases {
            assert!(HubTopic::parse(topic, &identity).is_err(), "{topic}");
        }
    }

    #[test]
    fn outbound_topics_match_the_sdk() {
        // Spec §3.5, §3.8, §3.9 and Appendix A.
        assert_eq!(
            events(&module(), "%24.on=output1".into()),
            "devices/dev1/modules/mod1/messages/events/%24.on=output1"
        );
        assert_eq!(
            events(&device(), String::new()),
            "devices/dev1/messages/events/"
        );
        assert_eq!(twin_get("3d75"), "$iothub/twin/GET/?$rid=3d75");
        assert_eq!(
            twin_patch_reported("863e"),
            "$iothub/twin/PATCH/properties/reported/?$rid=863e"
        );
        assert_eq!(method_response(200, "1"), "$iothub/methods/res/200/?$rid=1");
        assert_eq!(
            filters(&device(), false),
            [
                "devices/dev1/messages/devicebound/#",
                "$iothub/methods/POST/#",
                "$iothub/twin/res/#",
                "$iothub/twin/PATCH/properties/desired/#"
            ]
        );
        assert_eq!(
            filters(&module(), false)[0],
            "devices/dev1/modules/mod1/inputs/#"
        );
        assert_eq!(
            filters(&device(), true)[4..],
            core_topic::EDGE_MODULES_FILTERS
        );
        let filter = ModuleId::parse("filter").unwrap();
        assert_eq!(
            scoped(Some(&filter), twin_get("7")),
            "$iothub/modules/filter/twin/GET/?$rid=7"
        );
        assert_eq!(scoped(None, twin_get("7")), twin_get("7"));
        assert_eq!(quote("$.on a/b"), "%24.on%20a%2Fb");
    }
}
