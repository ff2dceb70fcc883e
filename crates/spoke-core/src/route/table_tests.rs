//! Unit tests of `RouteTable`: compiling `$edgeHub` routes, one destination per sink, the
//! highest priority winning with its TTL.

use serde_json::json;

use super::*;
use crate::ids::ModuleId;
use crate::route::DEFAULT_PRIORITY;

fn hub(routes: &serde_json::Value) -> HubDesired {
    HubDesired::from_twin(&json!({
        "schemaVersion": "1.1",
        "routes": routes,
        "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}
    }))
    .expect("valid $edgeHub desired properties")
}

fn input(module: &str, input: &str) -> Sink {
    Sink::ModuleInput {
        module: ModuleId::parse(module).unwrap(),
        input: input.to_owned(),
    }
}

fn output(module: &str, output: &str) -> MessageSource {
    MessageSource::ModuleOutput {
        module: module.to_owned(),
        output: output.to_owned(),
    }
}

fn json_message(body: &str) -> Message {
    let mut msg = Message::new(body);
    msg.system.content_type = Some("application/json".into());
    msg.system.content_encoding = Some("utf-8".into());
    msg
}

/// (sink, route, priority, ttl) of each destination.
fn summary(destinations: &[Destination]) -> Vec<(String, &str, u8, Option<u32>)> {
    destinations
        .iter()
        .map(|d| (d.sink.to_string(), d.route.as_str(), d.priority, d.ttl_secs))
        .collect()
}

#[test]
fn compiles_the_spec_example() {
    let table = RouteTable::compile(&hub(&json!({
        "sensorToFilter": "FROM /messages/modules/sensor/outputs/temperature INTO BrokeredEndpoint(\"/modules/filter/inputs/input1\")",
        "alertsUp": {"route": "FROM /messages/modules/filter/outputs/alerts WHERE $body.temp > 30 INTO $upstream",
                     "priority": 0, "timeToLiveSecs": 86400},
        "leafUp": "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream"
    })))
    .unwrap();
    let names: Vec<_> = table.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["alertsUp", "leafUp", "sensorToFilter"]);
    assert_eq!(table.routes()[0].priority, 0);
    assert_eq!(table.routes()[0].ttl_secs, Some(86_400));
    assert_eq!(table.routes()[1].priority, DEFAULT_PRIORITY);

    let mut reading = json_message("{}");
    reading.system.connection_module_id = Some("sensor".into());
    let sensor = table.destinations(&output("sensor", "temperature"), &reading);
    assert_eq!(
        summary(&sensor),
        [(
            "BrokeredEndpoint(\"/modules/filter/inputs/input1\")".to_owned(),
            "sensorToFilter",
            DEFAULT_PRIORITY,
            None
        )]
    );
    let mut hot = json_message(r#"{"temp": 35}"#);
    hot.system.connection_module_id = Some("filter".into());
    assert_eq!(
        summary(&table.destinations(&output("filter", "alerts"), &hot)),
        [("$upstream".to_owned(), "alertsUp", 0, Some(86_400))]
    );
    let mut cold = json_message(r#"{"temp": 20}"#);
    cold.system.connection_module_id = Some("filter".into());
    assert!(
        table
            .destinations(&output("filter", "alerts"), &cold)
            .is_empty()
    );
    let leaf = table.destinations(&MessageSource::Telemetry, &Message::new("x"));
    assert_eq!(
        summary(&leaf),
        [("$upstream".to_owned(), "leafUp", DEFAULT_PRIORITY, None)]
    );
}

#[test]
fn one_destination_per_sink_highest_priority_wins() {
    let table = RouteTable::compile(&hub(&json!({
        "a": {"route": "FROM /* INTO $upstream", "priority": 5, "timeToLiveSecs": 50},
        "b": {"route": "FROM /messages/* INTO $upstream", "priority": 1, "timeToLiveSecs": 10},
        "c": "FROM /messages/* INTO $upstream",
        "d": {"route": "FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/i\")", "priority": 3},
        "e": {"route": "FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/i\")", "priority": 3, "timeToLiveSecs": 7},
        "f": {"route": "FROM /messages/* WHERE false INTO BrokeredEndpoint(\"/modules/m/inputs/j\")", "priority": 0}
    })))
    .unwrap();
    let msg = Message::new("x");
    assert_eq!(
        summary(&table.destinations(&MessageSource::Telemetry, &msg)),
        [
            ("$upstream".to_owned(), "b", 1, Some(10)),
            (
                "BrokeredEndpoint(\"/modules/m/inputs/i\")".to_owned(),
                "d",
                3,
                None
            ),
        ],
        "b beats a and c; on a tie the first route by name (d) wins, with its TTL"
    );
    assert_eq!(
        summary(&table.destinations(&MessageSource::TwinChangeNotification, &msg)),
        [("$upstream".to_owned(), "a", 5, Some(50))],
        "only a reads twin change notifications"
    );
}

#[test]
fn destinations_are_ordered_by_sink() {
    let table = RouteTable::from_routes(vec![
        Route::parse(
            "z",
            "FROM /* INTO BrokeredEndpoint(\"/modules/b/inputs/x\")",
        )
        .unwrap(),
        Route::parse(
            "y",
            "FROM /* INTO BrokeredEndpoint(\"/modules/a/inputs/x\")",
        )
        .unwrap(),
        Route::parse("x", "FROM /* INTO $upstream").unwrap(),
    ]);
    assert_eq!(
        table
            .routes()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["x", "y", "z"]
    );
    let sinks: Vec<Sink> = table
        .destinations(&MessageSource::Telemetry, &Message::new(""))
        .into_iter()
        .map(|d| d.sink)
        .collect();
    assert_eq!(sinks, [Sink::Upstream, input("a", "x"), input("b", "x")]);
}

#[test]
fn compile_errors_name_the_route() {
    let e = RouteTable::compile(&hub(&json!({
        "good": "FROM /* INTO $upstream",
        "bad": "FROM /messages/* WHERE temp > 30 INTO $upstream"
    })))
    .unwrap_err();
    assert_eq!(e.route, "bad");
    assert_eq!(
        e.to_string(),
        "route \"bad\": invalid operands to binary operator '>': have 'string' and 'number' at 28"
    );
}

#[test]
fn empty_and_default_tables() {
    let empty = RouteTable::compile(&hub(&json!({}))).unwrap();
    assert!(empty.routes().is_empty());
    assert!(
        empty
            .destinations(&MessageSource::Telemetry, &Message::new(""))
            .is_empty()
    );
    let default = RouteTable::from_routes(vec![
        Route::parse("default", crate::route::DEFAULT_ROUTE).unwrap(),
    ]);
    for source in [
        MessageSource::Telemetry,
        MessageSource::Module { module: "m".into() },
        output("m", "o"),
        MessageSource::TwinChangeNotification,
    ] {
        assert_eq!(
            default.destinations(&source, &Message::new("")).len(),
            1,
            "{source:?}"
        );
    }
}
