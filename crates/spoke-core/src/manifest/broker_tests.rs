//! Unit tests of the broker policy: templates, refusals with their paths, and evaluation.
//! The data-driven cases are in `tests/broker_policy.rs`.

use serde_json::{Value, json};

use super::*;
use crate::ids::{DeviceId, ModuleId};
use crate::manifest::HubDesired;

/// `$edgeHub` desired properties of `schema` with `mqttBroker` set to `broker`.
fn hub(schema: &str, broker: &Value) -> Result<HubDesired, ManifestError> {
    HubDesired::from_twin(&json!({
        "schemaVersion": schema,
        "routes": {},
        "storeAndForwardConfiguration": {"timeToLiveSecs": 7200},
        "mqttBroker": broker
    }))
}

fn policy(authorizations: &Value) -> BrokerPolicy {
    BrokerPolicy::from_json(&json!({ "authorizations": authorizations }), "b")
        .expect("valid policy")
}

/// Coverage by equality, enough where the tests name exact topics.
fn equal(filter: &str, resource: &str) -> bool {
    filter == resource
}

/// The hub the edge device belongs to.
const HUB: &str = "hub.example.net";

const DEVICE: Client<'static> = Client {
    device: "d1",
    module: None,
};
const MODULE: Client<'static> = Client {
    device: "edge",
    module: Some("filter"),
};

fn allows(policy: &BrokerPolicy, client: Client<'_>, op: Operation, resource: &str) -> bool {
    policy.allows(&client, "edge", HUB, op, Some(resource), equal)
}

#[test]
fn templates_split_at_known_variables() {
    let t = Template::parse("a/{{iot:device_id}}/{{iot:module_id}}b").unwrap();
    assert_eq!(
        t.pieces,
        [
            Piece::Text("a/".into()),
            Piece::Var(Variable::DeviceId),
            Piece::Text("/".into()),
            Piece::Var(Variable::ModuleId),
            Piece::Text("b".into())
        ]
    );
    assert_eq!(t.text, "a/{{iot:device_id}}/{{iot:module_id}}b");
    for literal in ["{{iot:identity", "{{a}b}}", "}}{", "{ {iot:identity}}", ""] {
        let t = Template::parse(literal).unwrap();
        assert!(t.is_literal(), "{literal:?}");
    }
    assert_eq!(Template::parse("x{{iot:hub}}y"), Err("{{iot:hub}}"));
    assert_eq!(
        Template::parse("{{{iot:identity}}}"),
        Err("{{{iot:identity}}"),
        "edgeHub's {{{{[^}}]*}}}} takes the third brace into the name"
    );
    assert_eq!(
        Template::parse("a}}{{mqtt:client_id}}").unwrap().pieces,
        [Piece::Text("a}}".into()), Piece::Var(Variable::ClientId)]
    );
}

#[test]
fn topic_filter_validity() {
    for ok in [
        "#",
        "+",
        "a/#",
        "+/+/c",
        "/",
        "a//b",
        "$SYS/#",
        "{{iot:identity}}/#",
    ] {
        assert!(is_valid_filter(ok), "{ok:?}");
    }
    let long = "a".repeat(MAX_FILTER_LEN + 1);
    for bad in ["", "a#", "a/#/b", "a+", "+a/b", "#/", "a\0", long.as_str()] {
        assert!(!is_valid_filter(bad), "{bad:?}");
    }
}

#[test]
fn refusals_name_the_place() {
    let rule = json!({"operations": ["mqtt:publish"], "resources": ["t"]});
    let ok = json!({"identities": ["d1"], "allow": [rule]});
    let with = |statement: Value| json!({"authorizations": [ok, ok, statement]});
    let at = "$edgeHub.mqttBroker.authorizations[2]";
    let cases: Vec<(Value, String, &str)> = vec![
        (
            json!([]),
            "$edgeHub.mqttBroker".into(),
            "must be a JSON object",
        ),
        (
            json!({"authorizations": {}}),
            "$edgeHub.mqttBroker.authorizations".into(),
            "must be an array",
        ),
        (with(json!("x")), at.into(), "must be a JSON object"),
        (
            with(json!({"allow": [rule]})),
            format!("{at}.identities"),
            "is required",
        ),
        (
            with(json!({"identities": "d1", "allow": [rule]})),
            format!("{at}.identities"),
            "must be a non-empty array",
        ),
        (
            with(json!({"identities": [], "allow": [rule]})),
            format!("{at}.identities"),
            "is []; expected at least one identity",
        ),
        (
            with(json!({"identities": ["d1", {}], "allow": [rule]})),
            format!("{at}.identities[1]"),
            "must be a string",
        ),
        (
            with(json!({"identities": [" "], "allow": [rule]})),
            format!("{at}.identities[0]"),
            "is \" \"; expected a client ID",
        ),
        (
            with(json!({"identities": ["a/b/c"], "allow": [rule]})),
            format!("{at}.identities[0]"),
            "expected a client ID",
        ),
        (
            with(json!({"identities": ["a b"], "allow": [rule]})),
            format!("{at}.identities[0]"),
            "expected a client ID",
        ),
        (
            with(json!({"identities": ["{{iot:hub}}/d"], "allow": [rule]})),
            format!("{at}.identities[0]"),
            "unknown variable {{iot:hub}}; expected {{iot:identity}}",
        ),
        (
            with(json!({"identities": ["d1"], "description": {}, "allow": [rule]})),
            format!("{at}.description"),
            "must be a string",
        ),
        (
            with(json!({"identities": ["d1"]})),
            at.into(),
            "expected a statement with at least one allow or deny rule",
        ),
        (
            with(json!({"identities": ["d1"], "allow": [], "deny": null})),
            at.into(),
            "at least one allow or deny rule",
        ),
        (
            with(json!({"identities": ["d1"], "allow": rule})),
            format!("{at}.allow"),
            "must be an array of rules",
        ),
        (
            with(json!({"identities": ["d1"], "deny": ["x"]})),
            format!("{at}.deny[0]"),
            "must be a JSON object",
        ),
        (
            with(json!({"identities": ["d1"], "allow": [{"resources": ["t"]}]})),
            format!("{at}.allow[0].operations"),
            "is required",
        ),
        (
            with(json!({"identities": ["d1"], "allow": [{"operations": [], "resources": ["t"]}]})),
            format!("{at}.allow[0].operations"),
            "expected at least one operation",
        ),
        (
            with(
                json!({"identities": ["d1"], "allow": [{"operations": ["mqtt:connect", "mqtt:Publish"]}]}),
            ),
            format!("{at}.allow[0].operations[1]"),
            "is \"mqtt:Publish\"; expected mqtt:connect, mqtt:publish or mqtt:subscribe",
        ),
        (
            with(
                json!({"identities": ["d1"], "allow": [{"operations": ["mqtt:connect", "mqtt:publish"]}]}),
            ),
            format!("{at}.allow[0].resources"),
            "is required",
        ),
        (
            with(
                json!({"identities": ["d1"], "deny": [{"operations": ["mqtt:subscribe"], "resources": []}]}),
            ),
            format!("{at}.deny[0].resources"),
            "expected at least one topic filter",
        ),
        (
            with(
                json!({"identities": ["d1"], "deny": [{"operations": ["mqtt:subscribe"], "resources": "t"}]}),
            ),
            format!("{at}.deny[0].resources"),
            "must be an array of MQTT topic filters",
        ),
        (
            with(
                json!({"identities": ["d1"], "allow": [rule, {"operations": ["mqtt:publish"], "resources": ["ok", "a/b#"]}]}),
            ),
            format!("{at}.allow[1].resources[1]"),
            "expected an MQTT topic filter",
        ),
        (
            with(
                json!({"identities": ["d1"], "allow": [{"operations": ["mqtt:publish"], "resources": ["{{topic}}/#"]}]}),
            ),
            format!("{at}.allow[0].resources[0]"),
            "unknown variable {{topic}}",
        ),
        (
            with(
                json!({"identities": ["d1"], "allow": [{"operations": ["mqtt:publish"], "resources": [""]}]}),
            ),
            format!("{at}.allow[0].resources[0]"),
            "is \"\"; expected an MQTT topic filter",
        ),
    ];
    for (broker, path, message) in cases {
        let err = hub("1.2", &broker).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(&format!("{path} ")), "{broker}: {text}");
        assert!(text.contains(message), "{broker}: {text}");
        assert_eq!(err.status(), 400, "{text}");
    }
}

#[test]
fn what_is_accepted() {
    let doc = json!({"Authorizations": [
        {"Identities": ["{{iot:identity}}"], "Allow": [{"Operations": ["mqtt:connect"]}]},
        {"identities": [5, "edge/{{iot:module_id}}"], "description": null, "deny": null,
         "allow": [{"operations": ["mqtt:connect"], "resources": ["ignored"]}]}
    ], "bridges": [{"endpoint": "$upstream"}]});
    let parsed = hub("1.3", &doc).unwrap().mqtt_broker.unwrap();
    assert_eq!(parsed.statements.len(), 2);
    assert_eq!(parsed.statements[1].identities[0].text, "5");

    let empty = hub("1.2", &json!({"authorizations": []})).unwrap();
    assert_eq!(empty.mqtt_broker, Some(BrokerPolicy { statements: vec![] }));
    let absent = hub("1.2", &json!({})).unwrap();
    assert_eq!(
        absent.mqtt_broker,
        Some(BrokerPolicy { statements: vec![] })
    );
    let null = hub("1.2", &Value::Null).unwrap();
    assert_eq!(null.mqtt_broker, None);
    for old in ["1.0", "1.1"] {
        let ignored = hub(old, &json!({"authorizations": "not even an array"})).unwrap();
        assert_eq!(ignored.mqtt_broker, None, "{old}");
    }
}

#[test]
fn everything_is_denied_by_default() {
    let empty = policy(&json!([]));
    let only_d2 = policy(&json!([{"identities": ["d2"], "allow": [
        {"operations": ["mqtt:connect", "mqtt:publish", "mqtt:subscribe"], "resources": ["#"]}
    ]}]));
    for p in [&empty, &only_d2] {
        for op in Operation::ALL {
            assert!(
                !p.allows(&DEVICE, "edge", HUB, op, Some("#"), |_, _| true),
                "{op}"
            );
        }
    }
}

#[test]
fn the_first_deciding_statement_wins() {
    let p = policy(&json!([
        {"identities": ["d1"], "deny": [{"operations": ["mqtt:publish"], "resources": ["a"]}]},
        {"identities": ["d1"], "allow": [{"operations": ["mqtt:publish"], "resources": ["a", "b"]}]},
        {"identities": ["{{iot:identity}}"], "deny": [{"operations": ["mqtt:publish"], "resources": ["b", "c"]}]},
        {"identities": ["d1"], "allow": [{"operations": ["mqtt:publish"], "resources": ["c"]}]}
    ]));
    assert!(!allows(&p, DEVICE, Operation::Publish, "a"), "denied first");
    assert!(
        allows(&p, DEVICE, Operation::Publish, "b"),
        "allowed before the deny"
    );
    assert!(
        !allows(&p, DEVICE, Operation::Publish, "c"),
        "denied before the allow"
    );
    assert!(
        !allows(&p, DEVICE, Operation::Subscribe, "b"),
        "no rule for subscribe"
    );
}

#[test]
fn deny_wins_within_a_statement() {
    let p = policy(&json!([
        {"identities": ["d1"],
         "allow": [{"operations": ["mqtt:publish"], "resources": ["a", "b"]}],
         "deny": [{"operations": ["mqtt:publish"], "resources": ["a"]}]},
        {"identities": ["d1"], "allow": [{"operations": ["mqtt:publish"], "resources": ["a"]}]}
    ]));
    assert!(!allows(&p, DEVICE, Operation::Publish, "a"));
    assert!(allows(&p, DEVICE, Operation::Publish, "b"));
}

#[test]
fn variables_in_identities() {
    let p = policy(&json!([
        {"identities": ["{{iot:this_device_id}}/{{iot:module_id}}"], "allow": [{"operations": ["mqtt:publish"], "resources": ["local"]}]},
        {"identities": ["{{iot:device_id}}"], "allow": [{"operations": ["mqtt:publish"], "resources": ["devices"]}]},
        {"identities": ["{{iot:this_device_id}}"], "allow": [{"operations": ["mqtt:publish"], "resources": ["edge"]}]},
        {"identities": ["{{mqtt:client_id}}"], "allow": [{"operations": ["mqtt:subscribe"], "resources": ["all"]}]}
    ]));
    let other_module = Client {
        device: "d1",
        module: Some("filter"),
    };
    let edge = Client {
        device: "edge",
        module: None,
    };
    assert!(allows(&p, MODULE, Operation::Publish, "local"));
    assert!(!allows(&p, other_module, Operation::Publish, "local"));
    assert!(!allows(&p, MODULE, Operation::Publish, "devices"));
    assert!(allows(&p, DEVICE, Operation::Publish, "devices"));
    assert!(!allows(&p, DEVICE, Operation::Publish, "local"));
    assert!(allows(&p, edge, Operation::Publish, "edge"));
    assert!(!allows(&p, DEVICE, Operation::Publish, "edge"));
    for client in [DEVICE, MODULE, other_module, edge] {
        assert!(
            allows(&p, client, Operation::Subscribe, "all"),
            "{client:?}"
        );
    }
}

#[test]
fn variables_in_resources() {
    let rule = json!({"operations": ["mqtt:publish"], "resources": [
        "id/{{iot:identity}}", "dev/{{iot:device_id}}", "mod/{{iot:module_id}}/x",
        "here/{{iot:this_device_id}}", "cid/{{mqtt:client_id}}"
    ]});
    let p = policy(&json!([{"identities": ["{{iot:identity}}"], "allow": [rule]}]));
    for topic in ["id/d1", "dev/d1", "mod//x", "here/edge", "cid/d1"] {
        assert!(allows(&p, DEVICE, Operation::Publish, topic), "{topic}");
    }
    for topic in [
        "id/edge/filter",
        "dev/edge",
        "mod/filter/x",
        "here/edge",
        "cid/edge/filter",
    ] {
        assert!(allows(&p, MODULE, Operation::Publish, topic), "{topic}");
    }
    for topic in [
        "id/d2",
        "dev/d2",
        "mod/filter/x",
        "here/d1",
        "id/{{iot:identity}}",
    ] {
        assert!(!allows(&p, DEVICE, Operation::Publish, topic), "{topic}");
    }
    let seen = std::cell::RefCell::new(Vec::new());
    assert!(p.allows(
        &MODULE,
        "gw",
        HUB,
        Operation::Publish,
        Some("here/gw"),
        |f, t| {
            seen.borrow_mut().push(f.to_owned());
            f == t
        }
    ));
    assert_eq!(
        seen.borrow()[..4],
        ["id/edge/filter", "dev/edge", "mod/filter/x", "here/gw"]
    );
}

#[test]
fn a_client_name_never_widens_a_filter() {
    let p = policy(&json!([{"identities": ["{{iot:identity}}"], "allow": [
        {"operations": ["mqtt:subscribe"], "resources": ["dev/{{iot:device_id}}/#"]}
    ]}]));
    for device in ["+", "#", "a+b", "nul\0"] {
        let client = Client {
            device,
            module: None,
        };
        let seen = std::cell::Cell::new(false);
        let allowed = p.allows(
            &client,
            "edge",
            HUB,
            Operation::Subscribe,
            Some("dev/x/#"),
            |_, _| {
                seen.set(true);
                true
            },
        );
        assert!(!allowed && !seen.get(), "{device:?}");
    }
    let long = "d".repeat(MAX_FILTER_LEN);
    let client = Client {
        device: &long,
        module: None,
    };
    assert!(!p.allows(
        &client,
        "edge",
        HUB,
        Operation::Subscribe,
        Some("x"),
        |_, _| true
    ));
}

#[test]
fn connect_ignores_resources_and_others_need_one() {
    let p = policy(&json!([{"identities": ["d1"], "allow": [
        {"operations": ["mqtt:connect", "mqtt:publish"], "resources": ["t"]}
    ]}]));
    assert!(p.allows(&DEVICE, "edge", HUB, Operation::Connect, None, |_, _| false));
    assert!(p.allows(
        &DEVICE,
        "edge",
        HUB,
        Operation::Connect,
        Some("x"),
        |_, _| false
    ));
    assert!(p.allows(&DEVICE, "edge", HUB, Operation::Publish, Some("t"), equal));
    assert!(!p.allows(&DEVICE, "edge", HUB, Operation::Publish, None, |_, _| true));
    let deny = policy(
        &json!([{"identities": ["d1"], "deny": [{"operations": ["mqtt:connect"]}],
        "allow": [{"operations": ["mqtt:connect"]}]}]),
    );
    assert!(!deny.allows(&DEVICE, "edge", HUB, Operation::Connect, None, equal));
}

#[test]
fn clients_and_operations() {
    let identity = Identity::module(
        DeviceId::parse("edge").unwrap(),
        ModuleId::parse("filter").unwrap(),
    );
    assert_eq!(Client::from(&identity), MODULE);
    assert_eq!(MODULE.client_id(), "edge/filter");
    assert_eq!(DEVICE.client_id(), "d1");
    for op in Operation::ALL {
        assert_eq!(Operation::parse(op.as_str()), Some(op));
        assert_eq!(op.to_string(), op.as_str());
    }
    assert_eq!(Operation::parse("MQTT:CONNECT"), None);
}

#[test]
fn a_qualified_identity_names_the_client_of_this_hub() {
    let p = policy(&json!([{"identities": ["hub.example.net/d1"], "allow": [
        {"operations": ["mqtt:connect"]}
    ]}]));
    let connect = |client: &Client<'_>, hub: &str| {
        p.allows(client, "edge", hub, Operation::Connect, None, equal)
    };
    assert!(connect(&DEVICE, HUB));
    assert!(!connect(&DEVICE, "other.example.net"));
    // Read as a client ID too: device `hub.example.net`'s module `d1`.
    let module = Client {
        device: "hub.example.net",
        module: Some("d1"),
    };
    assert!(connect(&module, "other.example.net"));
    assert!(!connect(&MODULE, HUB));
}
