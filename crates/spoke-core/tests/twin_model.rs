//! Behaviour of the twin document model (protocol spec §3.8, §4): merge tables, versions,
//! metadata, etags, validation atomicity, views and notifications.

use serde_json::{Value, json};
use spoke_core::twin::{ChangeKind, KeyProblem, Section, Twin, TwinError, TwinHeader};
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2024-01-01 00:00:00 UTC);
const T1: OffsetDateTime = datetime!(2024-01-01 00:00:01.5 UTC);
const T2: OffsetDateTime = datetime!(2024-01-01 00:00:02 UTC);

fn twin_with_desired(desired: &Value) -> Twin {
    let mut twin = Twin::new(T0);
    twin.patch(&json!({"properties": {"desired": desired}}), T0)
        .expect("valid setup patch");
    twin
}

/// (name, initial desired, service patch of desired, expected desired)
const MERGE_CASES: &[(&str, &str, &str, &str)] = &[
    ("add key", r#"{"a":1}"#, r#"{"b":2}"#, r#"{"a":1,"b":2}"#),
    (
        "replace scalar",
        r#"{"a":1}"#,
        r#"{"a":"x"}"#,
        r#"{"a":"x"}"#,
    ),
    (
        "null deletes",
        r#"{"a":1,"b":2}"#,
        r#"{"a":null}"#,
        r#"{"b":2}"#,
    ),
    (
        "delete missing is a no-op",
        r#"{"a":1}"#,
        r#"{"zz":null}"#,
        r#"{"a":1}"#,
    ),
    (
        "nested merge",
        r#"{"o":{"x":1,"y":{"z":2}}}"#,
        r#"{"o":{"y":{"w":3}}}"#,
        r#"{"o":{"x":1,"y":{"z":2,"w":3}}}"#,
    ),
    (
        "nested delete",
        r#"{"o":{"x":1,"y":2}}"#,
        r#"{"o":{"x":null}}"#,
        r#"{"o":{"y":2}}"#,
    ),
    (
        "array replaces",
        r#"{"a":[1,2,3]}"#,
        r#"{"a":[9]}"#,
        r#"{"a":[9]}"#,
    ),
    (
        "array is not merged with object",
        r#"{"a":[1]}"#,
        r#"{"a":{"k":1}}"#,
        r#"{"a":{"k":1}}"#,
    ),
    (
        "object replaced by scalar",
        r#"{"a":{"k":1}}"#,
        r#"{"a":false}"#,
        r#"{"a":false}"#,
    ),
    (
        "null inside new object is dropped",
        "{}",
        r#"{"a":{"b":null,"c":1}}"#,
        r#"{"a":{"c":1}}"#,
    ),
    ("identical value", r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":1}"#),
];

#[test]
fn desired_merge_table() {
    for (name, initial, patch, expected) in MERGE_CASES {
        let initial: Value = serde_json::from_str(initial).unwrap();
        let patch: Value = serde_json::from_str(patch).unwrap();
        let expected: Value = serde_json::from_str(expected).unwrap();
        let mut twin = twin_with_desired(&initial);
        let (version, desired_version) = (twin.version(), twin.desired_version());
        let change = twin
            .patch(&json!({"properties": {"desired": patch.clone()}}), T1)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(Value::Object(twin.desired().clone()), expected, "{name}");
        // Every non-empty patch is a write (module docs), even a no-op delete.
        assert_eq!(twin.version(), version + 1, "{name}");
        assert_eq!(twin.desired_version(), desired_version + 1, "{name}");
        let mut notified = patch.clone();
        notified["$version"] = json!(desired_version + 1);
        assert_eq!(change.desired_notification(), Some(notified), "{name}");
    }
}

#[test]
fn reported_merge_table() {
    for (name, initial, patch, expected) in MERGE_CASES {
        let initial: Value = serde_json::from_str(initial).unwrap();
        let patch: Value = serde_json::from_str(patch).unwrap();
        let mut twin = Twin::new(T0);
        twin.patch_reported(&initial, T0).unwrap();
        let before = twin.reported_version();
        let change = twin.patch_reported(&patch, T1).unwrap();
        assert_eq!(
            Value::Object(twin.reported().clone()),
            serde_json::from_str::<Value>(expected).unwrap(),
            "{name}"
        );
        assert_eq!(twin.reported_version(), before + 1, "{name}");
        assert_eq!(
            change.reported.as_ref().map(|r| r.version),
            Some(before + 1)
        );
        assert!(!change.desired_changed());
    }
}

#[test]
fn new_twin_matches_azure() {
    let twin = Twin::new(T0);
    assert_eq!(
        (
            twin.version(),
            twin.desired_version(),
            twin.reported_version()
        ),
        (2, 1, 1)
    );
    assert_eq!(twin.etag(), "AAAAAAAAAAE=");
    assert_eq!(
        twin.service_json(&TwinHeader::new("d1")),
        json!({
            "deviceId": "d1", "etag": "AAAAAAAAAAE=", "deviceEtag": "", "status": "enabled",
            "statusUpdateTime": "0001-01-01T00:00:00Z", "connectionState": "Disconnected",
            "lastActivityTime": "0001-01-01T00:00:00Z", "cloudToDeviceMessageCount": 0,
            "authenticationType": "sas",
            "x509Thumbprint": {"primaryThumbprint": null, "secondaryThumbprint": null},
            "modelId": "", "version": 2,
            "properties": {
                "desired": {"$metadata": {"$lastUpdated": "2024-01-01T00:00:00Z"}, "$version": 1},
                "reported": {"$metadata": {"$lastUpdated": "2024-01-01T00:00:00Z"}, "$version": 1}
            },
            "capabilities": {"iotEdge": false}
        })
    );
}

#[test]
fn versions_and_etag_move_on_every_change() {
    let mut twin = Twin::new(T0);
    let steps: [(&str, Value); 4] = [
        ("tags", json!({"tags": {"env": "prod"}})),
        ("desired", json!({"properties": {"desired": {"a": 1}}})),
        (
            "both",
            json!({"tags": {"x": 1}, "properties": {"desired": {"b": 2}}}),
        ),
        ("reported", json!({"r": 1})),
    ];
    let mut etags = vec![twin.etag()];
    for (i, (name, doc)) in steps.iter().enumerate() {
        let change = if *name == "reported" {
            twin.patch_reported(doc, T1).unwrap()
        } else {
            twin.patch(doc, T1).unwrap()
        };
        assert_eq!(
            twin.version(),
            3 + i as u64,
            "{name}: one bump per operation"
        );
        assert_eq!(change.version, twin.version());
        etags.push(twin.etag());
    }
    assert_eq!(
        etags,
        [
            "AAAAAAAAAAE=",
            "AAAAAAAAAAI=",
            "AAAAAAAAAAM=",
            "AAAAAAAAAAQ=",
            "AAAAAAAAAAU="
        ]
    );
    assert_eq!((twin.desired_version(), twin.reported_version()), (3, 2));
}

#[test]
fn empty_patches_change_nothing() {
    let mut twin = Twin::new(T0);
    let before = twin.clone();
    for doc in [
        json!({}),
        json!({"tags": {}}),
        json!({"properties": {"desired": {}}}),
        json!({"tags": null, "properties": null}),
    ] {
        let change = twin.patch(&doc, T1).unwrap();
        assert!(
            change.is_empty() && change.notification_body().is_none(),
            "{doc}"
        );
    }
    assert!(twin.patch_reported(&json!({}), T1).unwrap().is_empty());
    assert_eq!(twin, before);
}

#[test]
fn metadata_per_level() {
    let mut twin = Twin::new(T0);
    twin.patch(
        &json!({"properties": {"desired": {"o": {"x": 1, "y": 2}, "k": [1]}}}),
        T1,
    )
    .unwrap();
    twin.patch(&json!({"properties": {"desired": {"o": {"y": 3}}}}), T2)
        .unwrap();
    let service = twin.service_json(&TwinHeader::new("d1"));
    let t1 = "2024-01-01T00:00:01.5000000Z";
    let t2 = "2024-01-01T00:00:02Z";
    assert_eq!(
        service["properties"]["desired"],
        json!({
            "o": {"x": 1, "y": 3}, "k": [1],
            "$metadata": {
                "$lastUpdated": t2, "$lastUpdatedVersion": 3,
                "o": {
                    "$lastUpdated": t2, "$lastUpdatedVersion": 3,
                    "x": {"$lastUpdated": t1, "$lastUpdatedVersion": 2},
                    "y": {"$lastUpdated": t2, "$lastUpdatedVersion": 3}
                },
                "k": {"$lastUpdated": t1, "$lastUpdatedVersion": 2}
            },
            "$version": 3
        })
    );
    // Reported metadata has no $lastUpdatedVersion.
    twin.patch_reported(&json!({"r": {"s": true}}), T2).unwrap();
    let service = twin.service_json(&TwinHeader::new("d1"));
    assert_eq!(
        service["properties"]["reported"]["$metadata"],
        json!({"$lastUpdated": t2, "r": {"$lastUpdated": t2, "s": {"$lastUpdated": t2}}})
    );
}

#[test]
fn refused_operations_leave_the_twin_untouched() {
    let mut twin = Twin::new(T0);
    twin.patch(
        &json!({"tags": {"t": 1}, "properties": {"desired": {"a": 1}}}),
        T0,
    )
    .unwrap();
    twin.patch_reported(&json!({"r": 1}), T0).unwrap();
    let big = "x".repeat(3000);
    let cases: Vec<(Value, TwinError)> = vec![
        (
            json!({"properties": {"reported": {"r": 2}}}),
            TwinError::ReportedNotAllowed,
        ),
        // Valid tags in the same request are not applied either.
        (
            json!({"tags": {"ok": 1}, "properties": {"desired": {"bad.key": 1}}}),
            TwinError::KeyInvalid {
                key: "bad.key".into(),
                path: "properties.desired".into(),
                reason: KeyProblem::Dot,
            },
        ),
        (
            json!({"properties": {"desired": {"$version": 7}}}),
            TwinError::KeyInvalid {
                key: "$version".into(),
                path: "properties.desired".into(),
                reason: KeyProblem::Dollar,
            },
        ),
        (
            json!({"tags": 5}),
            TwinError::NotAnObject {
                what: "tags".into(),
            },
        ),
        (
            json!([1]),
            TwinError::NotAnObject {
                what: "twin".into(),
            },
        ),
        (
            json!({"properties": {"desired": "x"}}),
            TwinError::NotAnObject {
                what: "properties.desired".into(),
            },
        ),
        (
            json!({"properties": {"desire": {}}}),
            TwinError::UnknownSection {
                name: "desire".into(),
            },
        ),
        (
            json!({"tags": {"a": big, "b": big, "c": big}}),
            TwinError::TooLarge {
                section: Section::Tags,
                size: 9028,
                limit: 8192,
            },
        ),
        (
            json!({"properties": {"desired": {"n": 4_503_599_627_370_496_i64}}}),
            TwinError::IntegerOutOfRange {
                path: "properties.desired.n".into(),
                value: "4503599627370496".into(),
            },
        ),
    ];
    for (doc, expected) in cases {
        let before = twin.clone();
        assert_eq!(twin.patch(&doc, T1), Err(expected.clone()), "{doc}");
        assert_eq!(twin, before, "{doc}");
        assert_eq!(expected.status(), 400);
    }
    let before = twin.clone();
    for doc in [
        json!({"$version": 3}),
        json!({"a b": 1}),
        json!("text"),
        json!({"s": "x".repeat(4097)}),
    ] {
        assert!(twin.patch_reported(&doc, T1).is_err(), "{doc}");
        assert_eq!(twin, before);
    }
}

#[test]
fn replace_applies_a_diff() {
    let mut twin = Twin::new(T0);
    twin.patch(&json!({"tags": {"t": 1}, "properties": {"desired": {"keep": 1, "drop": 2, "o": {"x": 1}}}}), T1)
        .unwrap();
    let change = twin
        .replace(
            &json!({"properties": {"desired": {"keep": 1, "o": {"y": 2}, "new": 3}}}),
            T2,
        )
        .unwrap();
    assert_eq!(change.kind, ChangeKind::Replace);
    assert_eq!(twin.tags().len(), 0, "absent tags are emptied by PUT");
    assert_eq!(
        Value::Object(twin.desired().clone()),
        json!({"keep": 1, "o": {"y": 2}, "new": 3})
    );
    assert_eq!(
        change.tags,
        Some(json!({"t": null}).as_object().unwrap().clone())
    );
    assert_eq!(
        change.desired_notification(),
        Some(json!({"drop": null, "o": {"x": null, "y": 2}, "new": 3, "$version": 3}))
    );
    // `keep` was not rewritten, so it keeps its metadata.
    let service = twin.service_json(&TwinHeader::new("d"));
    assert_eq!(
        service["properties"]["desired"]["$metadata"]["keep"]["$lastUpdatedVersion"],
        2
    );

    // Sending the service view back is accepted and, being identical, changes nothing.
    let before = twin.clone();
    assert!(twin.replace(&service, T2).unwrap().is_empty());
    assert_eq!(twin, before);
}

#[test]
fn set_desired_path_replaces_at_the_path() {
    let mut twin =
        twin_with_desired(&json!({"modules": {"a": {"x": 1, "y": 2}, "b": 1}, "flat": 5}));
    let change = twin
        .set_desired_path(&["modules", "a"], &json!({"x": 1}), T1)
        .unwrap();
    assert_eq!(twin.desired()["modules"], json!({"a": {"x": 1}, "b": 1}));
    assert_eq!(
        change.desired_notification(),
        Some(json!({"modules": {"a": {"y": null}}, "$version": 3}))
    );
    // Through a scalar: intermediate objects are created.
    twin.set_desired_path(&["flat", "deep"], &json!(true), T1)
        .unwrap();
    assert_eq!(twin.desired()["flat"], json!({"deep": true}));
    // Null removes; identical content is a no-op.
    twin.set_desired_path(&["modules", "b"], &Value::Null, T1)
        .unwrap();
    assert!(twin.desired()["modules"].get("b").is_none());
    let version = twin.desired_version();
    assert!(
        twin.set_desired_path(&["flat", "deep"], &json!(true), T2)
            .unwrap()
            .is_empty()
    );
    assert_eq!(twin.desired_version(), version);
    // Empty path replaces the whole section.
    twin.set_desired_path(&[], &json!({"schemaVersion": "1.1"}), T2)
        .unwrap();
    assert_eq!(
        Value::Object(twin.desired().clone()),
        json!({"schemaVersion": "1.1"})
    );
    assert_eq!(
        twin.set_desired_path(&[], &json!(1), T2),
        Err(TwinError::NotAnObject {
            what: "properties.desired".into()
        })
    );
    assert!(matches!(
        twin.set_desired_path(&["a.b"], &json!(1), T2),
        Err(TwinError::KeyInvalid {
            reason: KeyProblem::Dot,
            ..
        })
    ));
}

#[test]
fn device_view_shape() {
    let mut twin = Twin::new(T0);
    twin.patch(
        &json!({"tags": {"t": 1}, "properties": {"desired": {"foo": 2}}}),
        T1,
    )
    .unwrap();
    twin.patch_reported(&json!({"bar": 3}), T1).unwrap();
    assert_eq!(
        twin.device_view(),
        json!({"desired": {"foo": 2, "$version": 2}, "reported": {"bar": 3, "$version": 2}})
    );
}

#[test]
fn module_twin_service_json() {
    let mut twin = Twin::new(T0);
    twin.patch(&json!({"tags": {"site": "a"}}), T1).unwrap();
    let mut header = TwinHeader::new("edge1");
    header.module_id = Some("$edgeAgent".into());
    header.iot_edge = None;
    header.status_reason = Some("maintenance".into());
    header.device_scope = Some("ms-azure-iot-edge://edge1-1".into());
    header.parent_scopes = Some(vec![]);
    header.last_activity_time = T1;
    let v = twin.service_json(&header);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "deviceId",
            "moduleId",
            "etag",
            "deviceEtag",
            "status",
            "statusReason",
            "statusUpdateTime",
            "connectionState",
            "lastActivityTime",
            "cloudToDeviceMessageCount",
            "authenticationType",
            "x509Thumbprint",
            "modelId",
            "version",
            "tags",
            "properties",
            "deviceScope",
            "parentScopes"
        ]
    );
    assert_eq!(v["moduleId"], "$edgeAgent");
    assert_eq!(v["lastActivityTime"], "2024-01-01T00:00:01.5000000Z");
    assert_eq!(v["tags"], json!({"site": "a"}));
}

#[test]
fn if_match_forms() {
    let mut twin = Twin::new(T0);
    twin.patch(&json!({"tags": {"a": 1}}), T1).unwrap();
    assert_eq!(twin.etag(), "AAAAAAAAAAI=");
    let cases = [
        (None, true),
        (Some("*"), true),
        (Some("\"*\""), true),
        (Some("\"AAAAAAAAAAI=\""), true),
        (Some("AAAAAAAAAAI="), true),
        (Some(" W/\"AAAAAAAAAAI=\" "), true),
        (Some("\"AAAAAAAAAAE=\", \"AAAAAAAAAAI=\""), true),
        (Some("\"AAAAAAAAAAE=\""), false),
        (Some("AAAAAAAAAAE="), false),
        (Some(""), false),
        (Some("\""), false),
    ];
    for (header, expected) in cases {
        assert_eq!(twin.etag_matches(header), expected, "{header:?}");
    }
}

#[test]
fn change_notification_bodies() {
    let mut twin = Twin::new(T0);
    let change = twin
        .patch(
            &json!({"tags": {"env": "prod"}, "properties": {"desired": {"k": 1, "gone": null}}}),
            T1,
        )
        .unwrap();
    assert_eq!(change.kind.op_type(), "updateTwin");
    let t1 = "2024-01-01T00:00:01.5000000Z";
    assert_eq!(
        change.notification_body(),
        Some(json!({
            "version": 3,
            "tags": {"env": "prod"},
            "properties": {"desired": {
                "k": 1, "gone": null,
                "$metadata": {"$lastUpdated": t1, "$lastUpdatedVersion": 2,
                              "k": {"$lastUpdated": t1, "$lastUpdatedVersion": 2}},
                "$version": 2
            }}
        }))
    );
    let change = twin
        .patch_reported(&json!({"r": null, "s": "on"}), T2)
        .unwrap();
    let t2 = "2024-01-01T00:00:02Z";
    assert_eq!(
        change.notification_body(),
        Some(json!({
            "version": 4,
            "properties": {"reported": {
                "r": null, "s": "on",
                "$metadata": {"$lastUpdated": t2, "s": {"$lastUpdated": t2}},
                "$version": 2
            }}
        }))
    );
    assert_eq!(change.desired_notification(), None);
}

#[test]
fn storage_form_round_trips() {
    let mut twin = Twin::new(T0);
    twin.patch(&json!({"tags": {"b": 1, "a": 2}, "properties": {"desired": {"f": 0.1, "o": {"z": [1, {"q": null}]}}}}), T1)
        .unwrap();
    twin.patch_reported(&json!({"x": 1.0e-7}), T2).unwrap();
    let text = serde_json::to_string(&twin).unwrap();
    let back: Twin = serde_json::from_str(&text).unwrap();
    assert_eq!(back, twin);
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    // Key order survives storage.
    assert_eq!(back.tags().keys().collect::<Vec<_>>(), ["b", "a"]);
    // The storage form is strict.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["extra"] = json!(1);
    assert!(serde_json::from_value::<Twin>(v).is_err());
}
