//! The persisted [`AgentState`]: round trip, on-disk shape and refusal of bad files.

mod agent_support;

use agent_support::{T0, agent, docker, exited, running, secs};
use serde_json::{Value, json};
use spoke_edge::agent::{AgentState, StateError};

fn sample() -> AgentState {
    let mut modules = json!({
        "sensor": docker("sensor:1", Some(1), "running", "always"),
        "proc": {
            "type": "process", "status": "stopped",
            "settings": {"command": ["/bin/sleep", "60"], "workingDir": "/tmp"},
            "env": {"A": {"value": "1"}}
        },
    });
    modules["sensor"]["settings"]["createOptions"] =
        json!("{\"HostConfig\":{\"Binds\":[\"/d:/d\"]}}");
    let mut agent = agent(&modules);
    agent.reconcile(Vec::new(), T0);
    // One restart, so the record has a count and a time.
    agent.reconcile(vec![exited("sensor", 1, T0, T0 + secs(1))], T0 + secs(11));
    agent.reconcile(vec![running("sensor", T0 + secs(11))], T0 + secs(12));
    agent.state().clone()
}

#[test]
fn round_trip() {
    let state = sample();
    let stored = state.to_json().unwrap();
    assert_eq!(AgentState::from_json(&stored).unwrap(), state);
    // Through serde too.
    let text = serde_json::to_string(&state).unwrap();
    assert_eq!(serde_json::from_str::<AgentState>(&text).unwrap(), state);
    let empty = AgentState::default();
    assert_eq!(
        serde_json::to_value(&empty).unwrap(),
        json!({"format": 1, "modules": {}})
    );
    assert_eq!(AgentState::from_json(br#"{"format": 1}"#).unwrap(), empty);
}

#[test]
fn on_disk_shape() {
    let stored: Value = serde_json::from_slice(&sample().to_json().unwrap()).unwrap();
    assert_eq!(stored["format"], 1);
    assert_eq!(stored["desiredVersion"], 1);
    assert_eq!(stored["desired"]["schemaVersion"], "1.1");
    assert_eq!(stored["desired"]["modules"]["proc"]["type"], "process");
    let sensor = &stored["modules"]["sensor"];
    assert_eq!(sensor["restartCount"], 1);
    assert_eq!(sensor["lastRestartTimeUtc"], "2026-03-01T12:00:11Z");
    assert_eq!(sensor["deployed"]["settings"]["image"], "sensor:1");
    assert!(
        stored["modules"]["proc"]
            .get("lastRestartTimeUtc")
            .is_none()
    );
}

/// Whether an error is the expected one.
type Check = fn(&StateError) -> bool;

#[test]
fn bad_files_are_refused() {
    let good: Value = serde_json::from_slice(&sample().to_json().unwrap()).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (b"not json".to_vec(), |e| matches!(e, StateError::Shape(_))),
        (edit(&|v| v["format"] = json!(2)), |e| {
            matches!(e, StateError::Format(2))
        }),
        (edit(&|v| v["extra"] = json!(1)), |e| {
            matches!(e, StateError::Shape(_))
        }),
        (
            edit(&|v| {
                v.as_object_mut().unwrap().remove("desiredVersion");
            }),
            |e| matches!(e, StateError::VersionMismatch),
        ),
        (
            edit(&|v| v["desired"]["schemaVersion"] = json!("3.0")),
            |e| matches!(e, StateError::Manifest { .. }),
        ),
        (
            edit(&|v| v["modules"]["sensor"]["deployed"]["type"] = json!("vm")),
            |e| matches!(e, StateError::Manifest { .. }),
        ),
        (
            edit(&|v| v["modules"]["ghost"] = v["modules"]["proc"].clone()),
            |e| matches!(e, StateError::StrayRecord(name) if name == "ghost"),
        ),
        (
            edit(&|v| v["modules"]["sensor"]["lastRestartTimeUtc"] = json!("yesterday")),
            |e| matches!(e, StateError::Time(_)),
        ),
    ];
    for (data, check) in cases {
        let error = AgentState::from_json(&data).unwrap_err();
        assert!(check(&error), "{error:?}");
        assert!(serde_json::from_slice::<AgentState>(&data).is_err());
    }
}

#[test]
fn corpus_seeds_parse() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/agent_state");
    for (file, ok) in [
        ("empty.json", true),
        ("deployed.json", true),
        ("desired_only.json", true),
        ("bad_version.json", false),
    ] {
        let data = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(AgentState::from_json(&data).is_ok(), ok, "{file}");
    }
    let data = std::fs::read(dir.join("deployed.json")).unwrap();
    let state = AgentState::from_json(&data).unwrap();
    assert_eq!(state.version(), Some(7));
    let sensor = state.module("sensor").unwrap();
    assert_eq!(sensor.restart.count, 3);
    assert_eq!(sensor.deployed, state.desired().unwrap().modules["sensor"]);
}
