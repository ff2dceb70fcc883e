//! The hub's MQTT topics: what a device or module publishes, what the hub publishes to it, and
//! the subscription filters the device SDK uses (spec §3.4-3.9).
//!
//! Device and module IDs appear in topics unencoded (the SDK never URL-encodes them);
//! request IDs, method names and input names are percent-encoded with `quote(safe="")` and
//! decoded with `unquote`. Query parameters are read like the SDK reads them: keys are
//! unquoted and stripped of leading `$`, so `$rid`, `%24rid` and `rid` are the same key, and a
//! repeated key keeps its last value.
//!
//! Invariant: for every [`DeviceTopic`] `t`, `DeviceTopic::parse(&t.to_string()) == Ok(t)`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use crate::ids::{DeviceId, IdError, Identity, ModuleId};
use crate::percent::{quote, unquote};

/// SDK filter for direct method requests (spec §3.4).
pub const METHODS_FILTER: &str = "$iothub/methods/POST/#";
/// SDK filter for twin responses (spec §3.4).
pub const TWIN_RESPONSES_FILTER: &str = "$iothub/twin/res/#";
/// SDK filter for desired-property patches (spec §3.4).
pub const DESIRED_PATCHES_FILTER: &str = "$iothub/twin/PATCH/properties/desired/#";

/// Prefix of the module-scoped topics (a Spoke extension, `docs/protocol.md`): an IoT Edge
/// device's own connection carries its modules' twin and method traffic on
/// `$iothub/modules/{m}/{topic}`, where `$iothub/{topic}` is the module's own topic.
const MODULE_SCOPE: &str = "$iothub/modules/";

/// The filters an IoT Edge device subscribes to for the twin responses and desired patches of
/// all its modules (module-scoped topics); method requests are subscribed per module, with
/// [`module_methods_filter`], while the module is connected to the edge.
pub const EDGE_MODULES_FILTERS: [&str; 2] = [
    "$iothub/modules/+/twin/res/#",
    "$iothub/modules/+/twin/PATCH/properties/desired/#",
];

/// The filter of `module`'s method requests on its IoT Edge device's connection.
pub fn module_methods_filter(module: &ModuleId) -> String {
    format!("{MODULE_SCOPE}{module}/methods/POST/#")
}

/// Module `module`'s scoped form of the `$iothub/...` topic `topic`.
pub fn module_scoped(module: &ModuleId, topic: &str) -> String {
    debug_assert!(
        topic.starts_with("$iothub/"),
        "only $iothub topics are scoped"
    );
    let rest = topic.strip_prefix("$iothub/").unwrap_or(topic);
    format!("{MODULE_SCOPE}{module}/{rest}")
}

/// For a module-scoped topic, the module and the `$iothub/...` topic it scopes; `None` for
/// any other topic.
pub fn split_module_scope(topic: &str) -> Result<Option<(ModuleId, String)>, TopicError> {
    let Some(rest) = topic.strip_prefix(MODULE_SCOPE) else {
        return Ok(None);
    };
    let (module, inner) = rest.split_once('/').ok_or_else(|| TopicError::Unknown {
        topic: topic.to_owned(),
    })?;
    let module = ModuleId::parse(module).map_err(TopicError::InvalidId)?;
    Ok(Some((module, format!("$iothub/{inner}"))))
}

fn is_module_methods_filter(filter: &str) -> bool {
    filter
        .strip_prefix(MODULE_SCOPE)
        .and_then(|rest| rest.strip_suffix("/methods/POST/#"))
        .is_some_and(|module| ModuleId::parse(module).is_ok())
}

/// Why a topic was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic is not one a device or module may publish to.
    #[error("{topic:?} is not a device-to-hub topic")]
    Unknown {
        /// The rejected topic.
        topic: String,
    },
    /// The device or module ID in the topic is invalid.
    #[error("topic names an invalid identity")]
    InvalidId(#[source] IdError),
    /// The topic has no non-empty `$rid` parameter.
    #[error("topic has no $rid")]
    MissingRid,
    /// A method response status is not an integer.
    #[error("method response status {status:?} is not an integer")]
    InvalidStatus {
        /// The rejected status text, decoded.
        status: String,
    },
    /// A topic part does not percent-decode to UTF-8.
    #[error("topic part {text:?} does not percent-decode to UTF-8")]
    Encoding {
        /// The offending encoded text.
        text: String,
    },
}

/// A topic a device or module publishes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTopic {
    /// Telemetry or module output: `devices/{d}[/modules/{m}]/messages/events/{bag}` (§3.5).
    Events {
        /// The device in the topic.
        device: DeviceId,
        /// The module in the topic, for module outputs.
        module: Option<ModuleId>,
        /// The property bag, still encoded; empty when there are no properties.
        bag: String,
    },
    /// Full twin request: `$iothub/twin/GET/?$rid={rid}` (§3.8).
    TwinGet {
        /// The request ID, decoded.
        rid: String,
    },
    /// Reported-properties patch: `$iothub/twin/PATCH/properties/reported/?$rid={rid}` (§3.8).
    TwinPatchReported {
        /// The request ID, decoded.
        rid: String,
    },
    /// Direct method response: `$iothub/methods/res/{status}/?$rid={rid}` (§3.9).
    MethodResponse {
        /// The status the device chose.
        status: i32,
        /// The request ID of the method request, decoded.
        rid: String,
    },
}

fn decode(text: &str) -> Result<String, TopicError> {
    unquote(text)
        .map(Cow::into_owned)
        .map_err(|_| TopicError::Encoding {
            text: text.to_owned(),
        })
}

/// The last value of query parameter `name` (leading `$` ignored on keys), decoded.
fn query_param(query: &str, name: &str) -> Result<Option<String>, TopicError> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)?.trim_start_matches('$') == name {
            found = Some(decode(value)?);
        }
    }
    Ok(found)
}

fn rid(query: &str) -> Result<String, TopicError> {
    query_param(query, "rid")?
        .filter(|r| !r.is_empty())
        .ok_or(TopicError::MissingRid)
}

impl DeviceTopic {
    /// Parses a topic a device or module publishes to. A missing trailing `/` before the
    /// property bag or the `?` query is tolerated.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let unknown = || TopicError::Unknown {
            topic: topic.to_owned(),
        };
        if let Some(rest) = topic.strip_prefix("devices/") {
            let (device, module, bag) = split_events(rest).ok_or_else(unknown)?;
            return Ok(Self::Events {
                device: DeviceId::parse(device).map_err(TopicError::InvalidId)?,
                module: module
                    .map(ModuleId::parse)
                    .transpose()
                    .map_err(TopicError::InvalidId)?,
                bag: bag.to_owned(),
            });
        }
        let rest = topic.strip_prefix("$iothub/").ok_or_else(unknown)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = path.strip_suffix('/').unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["twin", "GET"] => Ok(Self::TwinGet { rid: rid(query)? }),
            ["twin", "PATCH", "properties", "reported"] => {
                Ok(Self::TwinPatchReported { rid: rid(query)? })
            }
            ["methods", "res", status] => {
                let status = decode(status)?;
                let status = status
                    .parse()
                    .map_err(|_| TopicError::InvalidStatus { status })?;
                Ok(Self::MethodResponse {
                    status,
                    rid: rid(query)?,
                })
            }
            _ => Err(unknown()),
        }
    }

    /// For an events topic, the identity it names.
    pub fn identity(&self) -> Option<Identity> {
        match self {
            Self::Events { device, module, .. } => Some(Identity {
                device: device.clone(),
                module: module.clone(),
            }),
            _ => None,
        }
    }
}

/// Splits the part of an events topic after `devices/` into device, module and bag.
fn split_events(rest: &str) -> Option<(&str, Option<&str>, &str)> {
    let (device, rest) = rest.split_once('/')?;
    let (module, rest) = match rest.strip_prefix("modules/") {
        Some(after) => {
            let (module, rest) = after.split_once('/')?;
            (Some(module), rest)
        }
        None => (None, rest),
    };
    let bag = if rest == "messages/events" {
        ""
    } else {
        rest.strip_prefix("messages/events/")?
    };
    Some((device, module, bag))
}

/// Formats the topic as the device SDK does.
impl fmt::Display for DeviceTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Events {
                device,
                module,
                bag,
            } => match module {
                None => write!(f, "devices/{device}/messages/events/{bag}"),
                Some(m) => write!(f, "devices/{device}/modules/{m}/messages/events/{bag}"),
            },
            Self::TwinGet { rid } => write!(f, "$iothub/twin/GET/?$rid={}", quote(rid)),
            Self::TwinPatchReported { rid } => write!(
                f,
                "$iothub/twin/PATCH/properties/reported/?$rid={}",
                quote(rid)
            ),
            Self::MethodResponse { status, rid } => {
                write!(f, "$iothub/methods/res/{status}/?$rid={}", quote(rid))
            }
        }
    }
}

/// C2D message to a device: `devices/{d}/messages/devicebound/{bag}` (§3.6).
pub fn c2d(device: &DeviceId, bag: &str) -> String {
    format!("devices/{device}/messages/devicebound/{bag}")
}

/// Message to a module input: `devices/{d}/modules/{m}/inputs/{input}/{bag}` (§3.7).
pub fn module_input(device: &DeviceId, module: &ModuleId, input: &str, bag: &str) -> String {
    format!(
        "devices/{device}/modules/{module}/inputs/{}/{bag}",
        quote(input)
    )
}

/// Twin response: `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]` (§3.8).
pub fn twin_response(status: u16, rid: &str, version: Option<u64>) -> String {
    let mut topic = format!("$iothub/twin/res/{status}/?$rid={}", quote(rid));
    if let Some(version) = version {
        write!(topic, "&$version={version}").expect("writing to a String cannot fail");
    }
    topic
}

/// Desired-properties notification: `$iothub/twin/PATCH/properties/desired/?$version={v}`
/// (§3.8).
pub fn desired_patch(version: u64) -> String {
    format!("$iothub/twin/PATCH/properties/desired/?$version={version}")
}

/// Direct method request: `$iothub/methods/POST/{name}/?$rid={rid}` (§3.9).
pub fn method_request(name: &str, rid: &str) -> String {
    format!("$iothub/methods/POST/{}/?$rid={}", quote(name), quote(rid))
}

/// SDK filter for C2D messages of `device` (spec §3.4).
pub fn c2d_filter(device: &DeviceId) -> String {
    format!("devices/{device}/messages/devicebound/#")
}

/// SDK filter for the inputs of a module (spec §3.4).
pub fn module_inputs_filter(device: &DeviceId, module: &ModuleId) -> String {
    format!("devices/{device}/modules/{module}/inputs/#")
}

/// A feature a client enables by subscribing (spec §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// Cloud-to-device messages (devices only).
    C2d,
    /// Module input messages (modules only).
    ModuleInputs,
    /// Direct method requests.
    Methods,
    /// Twin GET and PATCH responses.
    TwinResponses,
    /// Desired-property patches.
    DesiredPatches,
    /// One of [`EDGE_MODULES_FILTERS`] or a [`module_methods_filter`] (devices only; the hub
    /// grants them to IoT Edge devices).
    EdgeModules,
}

impl Subscription {
    /// Classifies a SUBSCRIBE filter from `identity`. Accepted are the SDK's filters and the
    /// forms that match exactly the same hub topics (`$iothub/methods/POST/+/#`,
    /// `$iothub/twin/res/+/#`, `devices/{d}/modules/{m}/inputs/+/#`). `None` means the filter
    /// is not allowed for this identity: another device's topics, C2D for a module, inputs
    /// for a device, or anything else.
    pub fn classify(identity: &Identity, filter: &str) -> Option<Subscription> {
        match filter {
            METHODS_FILTER | "$iothub/methods/POST/+/#" => return Some(Self::Methods),
            TWIN_RESPONSES_FILTER | "$iothub/twin/res/+/#" => return Some(Self::TwinResponses),
            DESIRED_PATCHES_FILTER => return Some(Self::DesiredPatches),
            _ if EDGE_MODULES_FILTERS.contains(&filter) || is_module_methods_filter(filter) => {
                return identity.module.is_none().then_some(Self::EdgeModules);
            }
            _ => {}
        }
        let own = filter
            .strip_prefix("devices/")?
            .strip_prefix(identity.device.as_str())?
            .strip_prefix('/')?;
        match &identity.module {
            None => (own == "messages/devicebound/#").then_some(Self::C2d),
            Some(module) => {
                let inputs = own
                    .strip_prefix("modules/")?
                    .strip_prefix(module.as_str())?;
                matches!(inputs, "/inputs/#" | "/inputs/+/#").then_some(Self::ModuleInputs)
            }
        }
    }

    /// The SDK's filter for this feature and `identity`; `None` if the identity cannot use it
    /// or the feature has several filters ([`Self::EdgeModules`]).
    pub fn sdk_filter(self, identity: &Identity) -> Option<String> {
        match (self, &identity.module) {
            (Self::C2d, None) => Some(c2d_filter(&identity.device)),
            (Self::ModuleInputs, Some(module)) => {
                Some(module_inputs_filter(&identity.device, module))
            }
            (Self::C2d | Self::ModuleInputs | Self::EdgeModules, _) => None,
            (Self::Methods, _) => Some(METHODS_FILTER.to_owned()),
            (Self::TwinResponses, _) => Some(TWIN_RESPONSES_FILTER.to_owned()),
            (Self::DesiredPatches, _) => Some(DESIRED_PATCHES_FILTER.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    fn m(s: &str) -> ModuleId {
        ModuleId::parse(s).unwrap()
    }

    fn events(device: &str, module: Option<&str>, bag: &str) -> DeviceTopic {
        DeviceTopic::Events {
            device: d(device),
            module: module.map(m),
            bag: bag.into(),
        }
    }

    #[test]
    fn parses_captured_device_topics() {
        // Spec §3.5, §3.8, §3.9 and Appendix A.
        let cases = [
            (
                "devices/dev1/messages/events/%24.mid=mid1&%24.cid=cid1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.exp=2030-01-01T00%3A00%3A00%2B00%3A00&alert=true&prop%20a=v%2F1",
                events(
                    "dev1",
                    None,
                    "%24.mid=mid1&%24.cid=cid1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.exp=2030-01-01T00%3A00%3A00%2B00%3A00&alert=true&prop%20a=v%2F1",
                ),
            ),
            ("devices/dev1/messages/events/", events("dev1", None, "")),
            (
                "devices/dev1/modules/mod1/messages/events/%24.on=output1",
                events("dev1", Some("mod1"), "%24.on=output1"),
            ),
            (
                "$iothub/twin/GET/?$rid=3d754650-8f3e-4d7c-9a3c-1f2b4a5d6e7f",
                DeviceTopic::TwinGet {
                    rid: "3d754650-8f3e-4d7c-9a3c-1f2b4a5d6e7f".into(),
                },
            ),
            (
                "$iothub/twin/PATCH/properties/reported/?$rid=863e",
                DeviceTopic::TwinPatchReported { rid: "863e".into() },
            ),
            (
                "$iothub/methods/res/200/?$rid=1",
                DeviceTopic::MethodResponse {
                    status: 200,
                    rid: "1".into(),
                },
            ),
        ];
        for (topic, expected) in cases {
            let parsed = DeviceTopic::parse(topic).unwrap();
            assert_eq!(parsed, expected, "{topic}");
            assert_eq!(parsed.to_string(), topic, "Display gives the SDK form back");
        }
    }

    #[test]
    fn parses_tolerated_variants() {
        let cases = [
            ("devices/dev1/messages/events", events("dev1", None, "")),
            (
                "devices/$x/modules/$edgeHub/messages/events/a/b",
                events("$x", Some("$edgeHub"), "a/b"),
            ),
            (
                "$iothub/twin/GET?$rid=1",
                DeviceTopic::TwinGet { rid: "1".into() },
            ),
            (
                "$iothub/twin/GET/?%24rid=a%2Fb",
                DeviceTopic::TwinGet { rid: "a/b".into() },
            ),
            (
                "$iothub/twin/GET/?rid=x&$rid=y&foo",
                DeviceTopic::TwinGet { rid: "y".into() },
            ),
            (
                "$iothub/twin/PATCH/properties/reported/?$version=3&$rid=r",
                DeviceTopic::TwinPatchReported { rid: "r".into() },
            ),
            (
                "$iothub/methods/res/299/?$rid=a+b",
                DeviceTopic::MethodResponse {
                    status: 299,
                    rid: "a+b".into(),
                },
            ),
            (
                "$iothub/methods/res/-1/?$rid=r",
                DeviceTopic::MethodResponse {
                    status: -1,
                    rid: "r".into(),
                },
            ),
        ];
        for (topic, expected) in cases {
            let parsed = DeviceTopic::parse(topic).unwrap();
            assert_eq!(parsed, expected, "{topic}");
            assert_eq!(DeviceTopic::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn rejections() {
        let unknown = |t: &str| TopicError::Unknown { topic: t.into() };
        let cases = [
            (
                "devices/dev1/messages/devicebound/",
                unknown("devices/dev1/messages/devicebound/"),
            ),
            ("devices/dev1", unknown("devices/dev1")),
            (
                "devices/dev1/modules/m1",
                unknown("devices/dev1/modules/m1"),
            ),
            (
                "$iothub/twin/res/200/?$rid=1",
                unknown("$iothub/twin/res/200/?$rid=1"),
            ),
            (
                "$iothub/methods/POST/x/?$rid=1",
                unknown("$iothub/methods/POST/x/?$rid=1"),
            ),
            (
                "$iothub/twin/GET/x/?$rid=1",
                unknown("$iothub/twin/GET/x/?$rid=1"),
            ),
            ("other/topic", unknown("other/topic")),
            ("", unknown("")),
            ("$iothub/twin/GET/", TopicError::MissingRid),
            ("$iothub/twin/GET/?$rid=", TopicError::MissingRid),
            (
                "$iothub/twin/PATCH/properties/reported/?$version=1",
                TopicError::MissingRid,
            ),
            (
                "$iothub/methods/res/ok/?$rid=1",
                TopicError::InvalidStatus {
                    status: "ok".into(),
                },
            ),
            (
                "$iothub/methods/res/99999999999/?$rid=1",
                TopicError::InvalidStatus {
                    status: "99999999999".into(),
                },
            ),
            (
                "$iothub/twin/GET/?$rid=%FF",
                TopicError::Encoding { text: "%FF".into() },
            ),
        ];
        for (topic, err) in cases {
            assert_eq!(DeviceTopic::parse(topic), Err(err), "{topic:?}");
        }
        assert!(matches!(
            DeviceTopic::parse("devices/a b/messages/events/"),
            Err(TopicError::InvalidId(IdError::InvalidChar { ch: ' ', .. }))
        ));
        assert!(matches!(
            DeviceTopic::parse("devices//messages/events/"),
            Err(TopicError::InvalidId(IdError::Empty))
        ));
    }

    #[test]
    fn module_scoped_topics() {
        let scoped = module_scoped(&m("$edgeHub"), &twin_response(200, "r/1", None));
        assert_eq!(scoped, "$iothub/modules/$edgeHub/twin/res/200/?$rid=r%2F1");
        assert_eq!(
            split_module_scope(&scoped).unwrap(),
            Some((m("$edgeHub"), twin_response(200, "r/1", None)))
        );
        assert_eq!(
            split_module_scope("$iothub/modules/filter/methods/res/200/?$rid=7").unwrap(),
            Some((m("filter"), "$iothub/methods/res/200/?$rid=7".into()))
        );
        assert_eq!(
            split_module_scope("$iothub/twin/GET/?$rid=1").unwrap(),
            None
        );
        assert_eq!(
            split_module_scope("$iothub/modules/m1"),
            Err(TopicError::Unknown {
                topic: "$iothub/modules/m1".into()
            })
        );
        assert!(matches!(
            split_module_scope("$iothub/modules/a b/twin/GET/?$rid=1"),
            Err(TopicError::InvalidId(_))
        ));
        let dev = Identity::device(d("edge"));
        let module = Identity::module(d("edge"), m("m1"));
        let methods = module_methods_filter(&m("$edgeHub"));
        assert_eq!(methods, "$iothub/modules/$edgeHub/methods/POST/#");
        for filter in EDGE_MODULES_FILTERS.into_iter().chain([methods.as_str()]) {
            assert_eq!(
                Subscription::classify(&dev, filter),
                Some(Subscription::EdgeModules)
            );
            assert_eq!(Subscription::classify(&module, filter), None);
        }
        for filter in [
            "$iothub/modules/+/methods/POST/#",
            "$iothub/modules/#",
            "$iothub/modules/a/b/methods/POST/#",
            "$iothub/modules//methods/POST/#",
        ] {
            assert_eq!(Subscription::classify(&dev, filter), None, "{filter}");
        }
    }

    #[test]
    fn identity_of_events() {
        let t = DeviceTopic::parse("devices/d1/modules/m1/messages/events/").unwrap();
        assert_eq!(t.identity(), Some(Identity::module(d("d1"), m("m1"))));
        assert_eq!(DeviceTopic::TwinGet { rid: "1".into() }.identity(), None);
    }

    #[test]
    fn hub_topics() {
        assert_eq!(
            c2d(&d("dev1"), "%24.mid=c2dmid&myprop=x%20y"),
            "devices/dev1/messages/devicebound/%24.mid=c2dmid&myprop=x%20y"
        );
        assert_eq!(
            module_input(&d("dev1"), &m("mod1"), "input1", "%24.mid=x&k=v"),
            "devices/dev1/modules/mod1/inputs/input1/%24.mid=x&k=v"
        );
        assert_eq!(
            module_input(&d("d"), &m("m"), "in/1", ""),
            "devices/d/modules/m/inputs/in%2F1/"
        );
        assert_eq!(
            twin_response(200, "3d75", None),
            "$iothub/twin/res/200/?$rid=3d75"
        );
        assert_eq!(
            twin_response(204, "863e", Some(6)),
            "$iothub/twin/res/204/?$rid=863e&$version=6"
        );
        assert_eq!(
            twin_response(400, "a/b", None),
            "$iothub/twin/res/400/?$rid=a%2Fb"
        );
        assert_eq!(
            desired_patch(4),
            "$iothub/twin/PATCH/properties/desired/?$version=4"
        );
        assert_eq!(
            method_request("reboot", "1"),
            "$iothub/methods/POST/reboot/?$rid=1"
        );
        assert_eq!(
            method_request("a b", "r&1"),
            "$iothub/methods/POST/a%20b/?$rid=r%261"
        );
    }

    #[test]
    fn classify_subscriptions() {
        let dev = Identity::device(d("dev1"));
        let module = Identity::module(d("dev1"), m("mod1"));
        let cases: &[(&Identity, &str, Option<Subscription>)] = &[
            (
                &dev,
                "devices/dev1/messages/devicebound/#",
                Some(Subscription::C2d),
            ),
            (&dev, "$iothub/methods/POST/#", Some(Subscription::Methods)),
            (
                &dev,
                "$iothub/methods/POST/+/#",
                Some(Subscription::Methods),
            ),
            (
                &dev,
                "$iothub/twin/res/#",
                Some(Subscription::TwinResponses),
            ),
            (
                &dev,
                "$iothub/twin/res/+/#",
                Some(Subscription::TwinResponses),
            ),
            (
                &dev,
                "$iothub/twin/PATCH/properties/desired/#",
                Some(Subscription::DesiredPatches),
            ),
            (&dev, "devices/dev2/messages/devicebound/#", None),
            (&dev, "devices/dev12/messages/devicebound/#", None),
            (&dev, "devices/dev/messages/devicebound/#", None),
            (&dev, "devices/+/messages/devicebound/#", None),
            (&dev, "devices/dev1/messages/devicebound", None),
            (&dev, "devices/dev1/messages/events/#", None),
            (&dev, "devices/dev1/modules/mod1/inputs/#", None),
            (&dev, "#", None),
            (&dev, "$iothub/#", None),
            (&dev, "$iothub/methods/res/#", None),
            (
                &module,
                "devices/dev1/modules/mod1/inputs/#",
                Some(Subscription::ModuleInputs),
            ),
            (
                &module,
                "devices/dev1/modules/mod1/inputs/+/#",
                Some(Subscription::ModuleInputs),
            ),
            (&module, "devices/dev1/modules/mod2/inputs/#", None),
            (&module, "devices/dev1/modules/mod11/inputs/#", None),
            (&module, "devices/dev2/modules/mod1/inputs/#", None),
            (&module, "devices/dev1/messages/devicebound/#", None),
            (
                &module,
                "$iothub/methods/POST/#",
                Some(Subscription::Methods),
            ),
            (
                &module,
                "$iothub/twin/PATCH/properties/desired/#",
                Some(Subscription::DesiredPatches),
            ),
        ];
        for (identity, filter, expected) in cases {
            assert_eq!(
                Subscription::classify(identity, filter),
                *expected,
                "{identity} {filter}"
            );
        }
    }

    #[test]
    fn sdk_filters_classify_as_themselves() {
        let dev = Identity::device(d("dev1"));
        let module = Identity::module(d("dev1"), m("$edgeAgent"));
        let all = [
            Subscription::C2d,
            Subscription::ModuleInputs,
            Subscription::Methods,
            Subscription::TwinResponses,
            Subscription::DesiredPatches,
            Subscription::EdgeModules,
        ];
        for identity in [&dev, &module] {
            for sub in all {
                match sub.sdk_filter(identity) {
                    Some(filter) => {
                        assert_eq!(Subscription::classify(identity, &filter), Some(sub));
                    }
                    None => assert!(matches!(
                        (sub, identity.module.is_some()),
                        (Subscription::C2d, true)
                            | (Subscription::ModuleInputs, false)
                            | (Subscription::EdgeModules, _)
                    )),
                }
            }
        }
        assert_eq!(
            Subscription::C2d.sdk_filter(&dev).unwrap(),
            "devices/dev1/messages/devicebound/#"
        );
        assert_eq!(
            Subscription::ModuleInputs.sdk_filter(&module).unwrap(),
            "devices/dev1/modules/$edgeAgent/inputs/#"
        );
    }
}
