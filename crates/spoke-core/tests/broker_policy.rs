//! Runs the MQTT broker policy table `tests/fixtures/broker_policy_cases.json`: each policy as
//! the `mqttBroker` of `$edgeHub` desired properties, its allowed and denied requests, and the
//! refusals with their paths.

use serde_json::{Value, json};
use spoke_core::manifest::{BrokerPolicy, Client, HubDesired, ManifestError, Operation};

fn cases() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/broker_policy_cases.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn hub(schema: &str, broker: &Value) -> Result<HubDesired, ManifestError> {
    HubDesired::from_twin(&json!({
        "schemaVersion": schema,
        "routes": {"r": "FROM /messages/* INTO $upstream"},
        "storeAndForwardConfiguration": {"timeToLiveSecs": 7200},
        "mqttBroker": broker
    }))
}

/// MQTT 3.1.1 §4.7 for the table: whether every topic that `requested` (a topic name or a
/// filter) matches is matched by `filter`. `+` in `filter` takes any one level except a
/// requested `#`; `#` takes the rest; wildcards first do not match `$` topics (§4.7.2).
fn covers(filter: &str, requested: &str) -> bool {
    if requested.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut requested_levels = requested.split('/');
    for level in filter.split('/') {
        if level == "#" {
            return true;
        }
        match requested_levels.next() {
            Some(asked) if asked != "#" && (level == "+" || level == asked) => {}
            _ => return false,
        }
    }
    requested_levels.next().is_none()
}

/// A request row: `[client ID, operation, resource or null]`.
fn request(row: &Value) -> (Client<'_>, Operation, Option<&str>) {
    let client_id = row[0].as_str().expect("client ID");
    let client = match client_id.split_once('/') {
        Some((device, module)) => Client {
            device,
            module: Some(module),
        },
        None => Client {
            device: client_id,
            module: None,
        },
    };
    let op = Operation::parse(row[1].as_str().expect("operation")).expect("known operation");
    (client, op, row[2].as_str())
}

/// Where the policy runs: the edge device and its hub's host name.
struct Edge<'a> {
    device: &'a str,
    hub: &'a str,
}

fn check(policy: &BrokerPolicy, edge: &Edge<'_>, rows: &Value, want: bool, name: &str) -> usize {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    for row in rows {
        let (client, op, resource) = request(row);
        let got = policy.allows(&client, edge.device, edge.hub, op, resource, covers);
        assert_eq!(got, want, "{name}: {row}");
    }
    rows.len()
}

#[test]
fn the_coverage_helper_follows_mqtt() {
    for (filter, requested, want) in [
        ("a/#", "a", true),
        ("a/+", "a/b", true),
        ("a/+", "a/+", true),
        ("a/+", "a/#", false),
        ("a/b", "a/+", false),
        ("#", "$SYS/x", false),
        ("$SYS/#", "$SYS/x", true),
        ("+/+", "a", false),
        ("a", "a/b", false),
    ] {
        assert_eq!(covers(filter, requested), want, "{filter} {requested}");
    }
}

#[test]
fn policies_decide_as_the_table_says() {
    let cases = cases();
    let mut requests = 0;
    for case in cases["policies"].as_array().expect("policies") {
        let name = case["name"].as_str().expect("name");
        let schema = case["schemaVersion"].as_str().unwrap_or("1.2");
        let desired = hub(schema, &case["mqttBroker"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        if case["ignored"] == json!(true) {
            assert_eq!(desired.mqtt_broker, None, "{name}");
            continue;
        }
        let policy = desired.mqtt_broker.expect("mqttBroker read");
        let edge = Edge {
            device: case["this_device"].as_str().unwrap_or("edge"),
            hub: case["hub_hostname"].as_str().unwrap_or("hub.example.net"),
        };
        requests += check(&policy, &edge, &case["allow"], true, name);
        requests += check(&policy, &edge, &case["deny"], false, name);
    }
    assert!(requests >= 60, "{requests} requests");
}

#[test]
fn refusals_name_the_place() {
    let cases = cases();
    for case in cases["refusals"].as_array().expect("refusals") {
        let err = hub("1.2", &case["mqttBroker"]).expect_err("refused");
        let text = err.to_string();
        let path = case["path"].as_str().expect("path");
        assert!(text.starts_with(&format!("{path} ")), "{text}");
        assert!(
            text.contains(case["error"].as_str().expect("error")),
            "{text}"
        );
        assert_eq!(err.status(), 400, "{text}");
    }
}
