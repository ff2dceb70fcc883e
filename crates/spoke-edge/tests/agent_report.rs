//! The `$edgeAgent` reported properties (edge contracts spec §5.1): a whole-document
//! snapshot and the merge patch between two reports.

mod agent_support;

use agent_support::{T0, agent, created, docker, exited, running, secs};
use serde_json::json;
use spoke_edge::agent::{Action, Agent, AgentState, reported_patch};

fn modules() -> serde_json::Value {
    let mut sensor = docker("sensor:1", Some(1), "running", "always");
    sensor["env"] = json!({"INTERVAL": {"value": "1000"}});
    json!({
        "sensor": sensor,
        "filter": docker("filter:1", Some(2), "running", "on-failure"),
        "idle": docker("idle", None, "stopped", "never"),
        "pending": docker("pending:1", None, "running", "always"),
    })
}

#[test]
fn reported_snapshot() {
    let mut agent = agent(&modules());
    agent.reconcile(Vec::new(), T0);
    let up = vec![
        running("sensor", T0 + secs(1)),
        running("filter", T0 + secs(1)),
        created("idle"),
    ];
    agent.reconcile(up, T0 + secs(2));
    // sensor crashes and is restarted once, filter crashes and waits.
    let crashed = vec![
        exited("sensor", 1, T0 + secs(1), T0 + secs(5)),
        running("filter", T0 + secs(1)),
        created("idle"),
    ];
    let actions = agent.reconcile(crashed, T0 + secs(15));
    assert!(actions.contains(&Action::Start(agent_support::id("sensor"))));
    let later = vec![
        agent_support::ObservedModuleExt::finished(running("sensor", T0 + secs(15)), T0 + secs(5)),
        exited("filter", 2, T0 + secs(1), T0 + secs(20)),
        created("idle"),
    ];
    agent.reconcile(later, T0 + secs(21));

    let expected = json!({
        "schemaVersion": "1.0",
        "version": {"version": "0.1.0", "build": "42", "commit": "abc123"},
        "lastDesiredVersion": 1,
        "lastDesiredStatus": {"code": 200, "description": ""},
        "runtime": {
            "type": "docker",
            "platform": {"os": "linux", "architecture": "x86_64", "version": "0.1.0"},
            "settings": {"registryCredentials": {}}
        },
        "systemModules": {
            "edgeAgent": {
                "version": "",
                "type": "docker",
                "imagePullPolicy": "on-create",
                "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5", "createOptions": "{}"},
                "env": {},
                "runtimeStatus": "running",
                "exitCode": 0,
                "statusDescription": "running",
                "lastStartTimeUtc": "2026-03-01T11:00:00Z",
                "lastExitTimeUtc": "0001-01-01T00:00:00Z"
            },
            "edgeHub": {
                "version": "",
                "type": "docker",
                "status": "running",
                "restartPolicy": "always",
                "imagePullPolicy": "on-create",
                "startupOrder": 0,
                "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5", "createOptions": "{}"},
                "env": {},
                "runtimeStatus": "running",
                "exitCode": 0,
                "statusDescription": "running",
                "lastStartTimeUtc": "2026-03-01T11:00:00Z",
                "lastExitTimeUtc": "0001-01-01T00:00:00Z",
                "restartCount": 0,
                "lastRestartTimeUtc": "0001-01-01T00:00:00Z"
            }
        },
        "modules": {
            "filter": {
                "version": "1.0",
                "type": "docker",
                "status": "running",
                "restartPolicy": "on-failure",
                "imagePullPolicy": "on-create",
                "startupOrder": 2,
                "settings": {"image": "filter:1", "createOptions": "{}"},
                "env": {},
                "runtimeStatus": "backoff",
                "exitCode": 2,
                "statusDescription": "exited with code 2",
                "lastStartTimeUtc": "2026-03-01T12:00:01Z",
                "lastExitTimeUtc": "2026-03-01T12:00:20Z",
                "restartCount": 0,
                "lastRestartTimeUtc": "0001-01-01T00:00:00Z"
            },
            "idle": {
                "version": "1.0",
                "type": "docker",
                "status": "stopped",
                "restartPolicy": "never",
                "imagePullPolicy": "on-create",
                "startupOrder": 4_294_967_295_u32,
                "settings": {"image": "idle:latest", "createOptions": "{}"},
                "env": {},
                "runtimeStatus": "stopped",
                "exitCode": 0,
                "statusDescription": "created",
                "lastStartTimeUtc": "0001-01-01T00:00:00Z",
                "lastExitTimeUtc": "0001-01-01T00:00:00Z",
                "restartCount": 0,
                "lastRestartTimeUtc": "0001-01-01T00:00:00Z"
            },
            "pending": {
                "version": "1.0",
                "type": "docker",
                "status": "running",
                "restartPolicy": "always",
                "imagePullPolicy": "on-create",
                "startupOrder": 4_294_967_295_u32,
                "settings": {"image": "pending:1", "createOptions": "{}"},
                "env": {},
                "runtimeStatus": "unknown",
                "exitCode": 0,
                "statusDescription": "module not created",
                "lastStartTimeUtc": "0001-01-01T00:00:00Z",
                "lastExitTimeUtc": "0001-01-01T00:00:00Z",
                "restartCount": 0,
                "lastRestartTimeUtc": "0001-01-01T00:00:00Z"
            },
            "sensor": {
                "version": "1.0",
                "type": "docker",
                "status": "running",
                "restartPolicy": "always",
                "imagePullPolicy": "on-create",
                "startupOrder": 1,
                "settings": {"image": "sensor:1", "createOptions": "{}"},
                "env": {"INTERVAL": {"value": "1000"}},
                "runtimeStatus": "running",
                "exitCode": 0,
                "statusDescription": "running",
                "lastStartTimeUtc": "2026-03-01T12:00:15Z",
                "lastExitTimeUtc": "2026-03-01T12:00:05Z",
                "restartCount": 1,
                "lastRestartTimeUtc": "2026-03-01T12:00:15Z"
            }
        }
    });
    let reported = agent.reported(T0 + secs(21));
    assert_eq!(
        reported,
        expected,
        "actual:\n{}",
        serde_json::to_string_pretty(&reported).unwrap()
    );
}

#[test]
fn fresh_agent_reports_417_and_both_system_modules() {
    let agent = Agent::new(agent_support::config(), AgentState::default());
    let reported = agent.reported(T0);
    assert_eq!(reported["lastDesiredStatus"]["code"], 417);
    assert!(reported.get("lastDesiredVersion").is_none());
    assert_eq!(reported["modules"], json!({}));
    let system = &reported["systemModules"];
    assert_eq!(system["edgeAgent"]["runtimeStatus"], "running");
    assert_eq!(system["edgeHub"]["runtimeStatus"], "running");
    assert_eq!(system["edgeHub"]["restartPolicy"], "always");
}

#[test]
fn patch_deletes_removed_modules() {
    let mut agent = agent(&modules());
    agent.reconcile(Vec::new(), T0);
    let before = agent.reported(T0);
    let mut fewer = modules();
    fewer.as_object_mut().unwrap().remove("pending");
    agent.apply_twin(&agent_support::twin(2, &fewer));
    let after = agent.reported(T0);
    let patch = reported_patch(&before, &after).unwrap();
    assert_eq!(
        patch,
        json!({"lastDesiredVersion": 2, "modules": {"pending": null}})
    );
    assert_eq!(reported_patch(&after, &after), None);
}
