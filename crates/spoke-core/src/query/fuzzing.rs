//! Fuzz entry point for the query language (STYLE.md §10).
//!
//! `fuzz_query` must never panic on any input. It asserts the properties the rest of the
//! module promises: a parsed query executes without error over arbitrary documents, its
//! result has at most one row per document (or one aggregate row), and the `Display` text
//! of every parsed query, condition and target condition parses back to an equal tree.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::{Condition, ItemType, MAX_QUERY_LEN, Query, QueryError, TargetCondition};

/// A few documents of each collection with the shapes queries usually touch.
static DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    vec![
        json!({
            "deviceId": "d1", "status": "enabled", "connectionState": "Connected", "version": 3,
            "tags": {"env": "prod", "location": {"region": "US", "plant": 43}, "list": [1, "a"]},
            "properties": {
                "desired": {"telemetryConfig": {"sendFrequencyInSecs": 300}, "$version": 4},
                "reported": {"telemetryConfig": {"status": "Success"}, "temp": 21.5, "$version": 7}
            },
            "capabilities": {"iotEdge": true},
            "configurations": {"cfg-1": {"status": "Applied"}}
        }),
        json!({
            "deviceId": "d2", "status": "disabled", "tags": {"env": null, "Location": "EU"},
            "properties": {"desired": {"$version": 1}, "reported": {"temp": -3, "$version": 1}},
            "capabilities": {"iotEdge": false}
        }),
        json!({
            "deviceId": "d1", "moduleId": "$edgeAgent", "status": "enabled",
            "properties": {"desired": {"schemaVersion": "1.1"}, "reported": {"status": "scanning"}}
        }),
        json!({"deviceId": "d1", "jobId": "j1", "jobType": "scheduleUpdateTwin", "status": "completed"}),
    ]
});

/// Parses `data` as a query, a condition and a target condition, and checks the results.
pub fn fuzz_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let docs = &*DOCS;
    if let Ok(query) = Query::parse(text) {
        let output = match query.execute(docs) {
            Ok(output) => output,
            Err(e) => panic!("query {text:?} parsed but failed to execute: {e}"),
        };
        assert!(
            output.items.len() <= docs.len().max(1),
            "too many rows for {text:?}"
        );
        if output.item_type != ItemType::Raw {
            assert!(output.items.iter().all(|item| docs.contains(item)));
        }
        round_trip(&query, Query::parse);
    }
    if let Ok(condition) = Condition::parse(text) {
        for doc in docs {
            condition.matches(doc);
        }
        round_trip(&condition, Condition::parse);
    }
    if let Ok(target) = TargetCondition::parse(text) {
        round_trip(&target, TargetCondition::parse);
    }
}

/// Asserts that `value`'s text parses back to `value` (when the text is not too long).
fn round_trip<T>(value: &T, parse: fn(&str) -> Result<T, QueryError>)
where
    T: std::fmt::Display + std::fmt::Debug + PartialEq,
{
    let printed = value.to_string();
    if printed.chars().count() > MAX_QUERY_LEN {
        return;
    }
    match parse(&printed) {
        Ok(again) => assert_eq!(&again, value, "round trip through {printed:?}"),
        Err(e) => panic!("printed form {printed:?} of {value:?} does not parse: {e}"),
    }
}
