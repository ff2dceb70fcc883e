//! Fuzz entry point for twin patches (run by `fuzz/` and the `fuzz_smoke_twin` test).

use serde_json::Value;
use time::macros::datetime;

use super::{Twin, TwinHeader};

/// Parses `data` as JSON and applies it to a fresh twin as a service PATCH, a service PUT
/// and a device reported PATCH. A JSON array is taken as a sequence of such documents,
/// applied in turn to the same twin. Never panics on any input; asserts that refused
/// operations leave the twin untouched, that versions and etags move together, that the
/// views carry the versions, and that the storage form round-trips.
pub fn fuzz_twin_patch(data: &[u8]) {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let docs = match input {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut twin = Twin::new(datetime!(2024-01-01 0:00 UTC));
    for (i, doc) in docs.iter().enumerate() {
        let now = datetime!(2024-01-01 0:00 UTC) + time::Duration::seconds(i as i64 + 1);
        let ops: [fn(&mut Twin, &Value, time::OffsetDateTime) -> _; 3] =
            [Twin::patch, Twin::replace, Twin::patch_reported];
        for op in ops {
            let before = twin.clone();
            match op(&mut twin, doc, now) {
                Err(_) => assert_eq!(twin, before, "a refused operation changed the twin"),
                Ok(change) if change.is_empty() => {
                    assert_eq!(twin, before, "an empty change moved the twin");
                }
                Ok(change) => {
                    check_change(&before, &twin, &change);
                    check_twin(&twin);
                }
            }
        }
    }
}

fn check_change(before: &Twin, after: &Twin, change: &super::TwinChange) {
    assert_eq!(after.version(), before.version() + 1);
    assert_eq!(after.version(), change.version);
    assert_ne!(after.etag(), before.etag());
    if let Some(desired) = change.desired_notification() {
        assert_eq!(desired["$version"], Value::from(after.desired_version()));
    }
    let body = change.notification_body();
    assert!(body.is_some_and(|b| b["version"] == after.version()));
}

fn check_twin(twin: &Twin) {
    let view = twin.device_view();
    assert_eq!(
        view["desired"]["$version"],
        Value::from(twin.desired_version())
    );
    assert_eq!(
        view["reported"]["$version"],
        Value::from(twin.reported_version())
    );
    let text = view.to_string();
    assert!(serde_json::from_str::<Value>(&text).is_ok_and(|v| v == view));

    let service = twin.service_json(&TwinHeader::new("fuzz"));
    assert_eq!(service["etag"], Value::from(twin.etag()));
    assert!(twin.etag_matches(Some(&format!("\"{}\"", twin.etag()))));

    let stored = serde_json::to_string(twin).expect("a twin always serializes");
    let loaded: Twin = serde_json::from_str(&stored).expect("the storage form parses back");
    assert_eq!(&loaded, twin);
}
