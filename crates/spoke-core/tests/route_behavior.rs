//! Runs the route-language behaviour table in `fixtures/route_cases.json` (STYLE.md §12).
//!
//! Each case compiles a route and expects it to match or not match a named message from a
//! source, or not to compile; see the fixture's own `comment` for the conventions. Every
//! route that compiles must also survive a `Display` round trip.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use spoke_core::message::{Message, SystemProperties};
use spoke_core::route::{MessageSource, Route};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    #[allow(dead_code, reason = "documentation inside the fixture")]
    comment: String,
    messages: BTreeMap<String, MessageSpec>,
    cases: Vec<Case>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MessageSpec {
    #[serde(default)]
    app: Option<Value>,
    #[serde(default)]
    system: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    body_utf16: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Case {
    route: String,
    message: String,
    source: String,
    expect: String,
    error: Option<String>,
    sink: Option<String>,
    #[allow(dead_code, reason = "documentation inside the fixture")]
    comment: Option<String>,
}

fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/route_cases.json"
    );
    let text = std::fs::read_to_string(path).expect("read fixture");
    serde_json::from_str(&text).expect("fixture is valid")
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// The typed field of `system` for the `$name` spelling `name`.
fn field<'s>(system: &'s mut SystemProperties, name: &str) -> Option<&'s mut Option<String>> {
    Some(match name {
        "messageId" => &mut system.message_id,
        "correlationId" => &mut system.correlation_id,
        "userId" => &mut system.user_id,
        "contentType" => &mut system.content_type,
        "contentEncoding" => &mut system.content_encoding,
        "to" => &mut system.to,
        "outputName" => &mut system.output_name,
        "connectionDeviceId" => &mut system.connection_device_id,
        "connectionModuleId" => &mut system.connection_module_id,
        "ack" => &mut system.ack,
        _ => return None,
    })
}

fn build(spec: &MessageSpec) -> Message {
    let app = match &spec.app {
        None => Vec::new(),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), string(v))).collect(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|pair| (string(&pair[0]).expect("key"), string(&pair[1])))
            .collect(),
        Some(other) => panic!("app must be an object or pairs: {other}"),
    };
    let mut msg = Message {
        app,
        ..Message::default()
    };
    for (name, value) in &spec.system {
        match field(&mut msg.system, name) {
            Some(slot) => *slot = string(value),
            None => msg.system.other.push((name.clone(), string(value))),
        }
    }
    let text = match &spec.body {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(json) => json.to_string(),
    };
    msg.body = if spec.body_utf16 {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    } else {
        text.into_bytes()
    };
    msg
}

fn source(text: &str) -> MessageSource {
    match text.split_once(':') {
        None if text == "telemetry" => MessageSource::Telemetry,
        None if text == "twin" => MessageSource::TwinChangeNotification,
        Some(("module", module)) => MessageSource::Module {
            module: module.to_owned(),
        },
        Some(("output", path)) => {
            let (module, output) = path.split_once('/').expect("output:M/O");
            MessageSource::ModuleOutput {
                module: module.to_owned(),
                output: output.to_owned(),
            }
        }
        _ => panic!("unknown source {text:?}"),
    }
}

/// Runs one case; `Err` describes a failure.
fn run(case: &Case, messages: &BTreeMap<String, Message>) -> Result<(), String> {
    let parsed = Route::parse("case", &case.route);
    let route = match (case.expect.as_str(), parsed) {
        ("error", Ok(route)) => return Err(format!("compiled to {route}")),
        ("error", Err(e)) => {
            let wanted = case.error.as_deref().expect("error cases name the error");
            return if e.to_string().contains(wanted) {
                Ok(())
            } else {
                Err(format!("error {e:?} does not contain {wanted:?}"))
            };
        }
        (_, Err(e)) => return Err(e.to_string()),
        (_, Ok(route)) => route,
    };
    let printed = route.to_string();
    if Route::parse("case", &printed).as_ref() != Ok(&route) {
        return Err(format!("round trip through {printed:?} differs"));
    }
    if let Some(sink) = &case.sink
        && route.sink.to_string() != *sink
    {
        return Err(format!("sink {} instead of {sink}", route.sink));
    }
    let msg = messages
        .get(&case.message)
        .ok_or_else(|| format!("no message {:?}", case.message))?;
    let matched = route.matches(&source(&case.source), msg);
    let expected = match case.expect.as_str() {
        "match" => true,
        "no-match" => false,
        other => return Err(format!("unknown expectation {other:?}")),
    };
    if matched == expected {
        Ok(())
    } else {
        Err(format!("matched: {matched}"))
    }
}

#[test]
fn route_cases() {
    let fixture = load();
    let messages: BTreeMap<String, Message> = fixture
        .messages
        .iter()
        .map(|(name, spec)| (name.clone(), build(spec)))
        .collect();
    assert!(fixture.cases.len() >= 80, "{} cases", fixture.cases.len());
    let failures: Vec<String> = fixture
        .cases
        .iter()
        .enumerate()
        .filter_map(|(i, case)| {
            run(case, &messages)
                .err()
                .map(|why| format!("case {i} {:?} on {}: {why}", case.route, case.message))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        fixture.cases.len(),
        failures.join("\n")
    );
}
