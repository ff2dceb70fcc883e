//! The `$edgeAgent` reported properties (edge contracts spec §5.1; edgeAgent's
//! `IoTHubReporter`, `AgentState`, `DockerRuntimeModule`), built from the agent's state, and
//! the merge patch that turns one reported document into the next.
//!
//! Shape and spellings follow the spec: `schemaVersion` `1.0`; `version {version, build,
//! commit}`; `lastDesiredVersion` (absent before any desired properties); `lastDesiredStatus
//! {code, description}`; `runtime {type, platform {os, architecture, version}, settings
//! {registryCredentials: {}}}` (credentials are never echoed); `systemModules {edgeAgent,
//! edgeHub}`; `modules {<name>: {<the desired entry>, runtimeStatus, exitCode,
//! statusDescription, lastStartTimeUtc, lastExitTimeUtc, restartCount,
//! lastRestartTimeUtc}}`.
//!
//! Choices where the spec leaves room:
//! - `edgeAgent` and `edgeHub` run inside spoke-edge, so both are `running` since the agent
//!   started, whatever their desired entries say; their entries come from the desired
//!   `systemModules` when present.
//! - Modules are the desired ones (of the last good deployment). A module the runtime does
//!   not have (yet) is `unknown`; one whose `status` is `stopped` and that is not running is
//!   `stopped` whatever its exit code (a stop that had to kill exits 137).
//! - Times are RFC 3339 in UTC; an absent time is `0001-01-01T00:00:00Z`, as edgeAgent
//!   writes .NET's `DateTime.MinValue`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use spoke_core::ids::ModuleId;
use spoke_core::manifest::{ModuleSpec, ModuleStatus};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::AgentConfig;
use super::observed::ObservedModule;
use super::plan::settled_verdict;
use super::restart::{RestartConfig, RestartRecord, Verdict, reset_due};
use super::state::{AgentState, ModuleRecord};
use super::status::DeploymentStatus;
use crate::runtime::RuntimeStatus;

/// The reported `schemaVersion`.
pub const REPORTED_SCHEMA_VERSION: &str = "1.0";

/// How an absent time is reported (.NET `DateTime.MinValue`).
pub const NO_TIME: &str = "0001-01-01T00:00:00Z";

/// A time as reported: RFC 3339 in UTC, or [`NO_TIME`].
pub fn utc_text(at: Option<OffsetDateTime>) -> String {
    at.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok())
        .unwrap_or_else(|| NO_TIME.to_owned())
}

/// Everything the reported properties are built from.
pub(super) struct Inputs<'a> {
    pub config: &'a AgentConfig,
    pub state: &'a AgentState,
    pub last_desired_version: Option<u64>,
    pub status: &'a DeploymentStatus,
    pub observed: &'a BTreeMap<ModuleId, ObservedModule>,
    pub now: OffsetDateTime,
}

/// Builds the whole reported document.
pub(super) fn reported(inputs: &Inputs<'_>) -> Value {
    let config = inputs.config;
    let mut doc = Map::new();
    doc.insert("schemaVersion".into(), json!(REPORTED_SCHEMA_VERSION));
    doc.insert(
        "version".into(),
        json!({
            "version": config.version.version,
            "build": config.version.build,
            "commit": config.version.commit,
        }),
    );
    if let Some(version) = inputs.last_desired_version {
        doc.insert("lastDesiredVersion".into(), json!(version));
    }
    doc.insert("lastDesiredStatus".into(), inputs.status.to_json());
    doc.insert(
        "runtime".into(),
        json!({
            "type": config.runtime_type,
            "platform": {
                "os": config.platform.os,
                "architecture": config.platform.architecture,
                "version": config.platform.version,
            },
            "settings": {"registryCredentials": {}},
        }),
    );
    doc.insert("systemModules".into(), system_modules(inputs));
    let modules: Map<String, Value> = inputs
        .state
        .desired()
        .map(|desired| {
            desired
                .modules
                .values()
                .map(|spec| (spec.name.to_string(), module(inputs, spec)))
                .collect()
        })
        .unwrap_or_default();
    doc.insert("modules".into(), Value::Object(modules));
    Value::Object(doc)
}

/// `systemModules`: both built in, running since the agent started.
fn system_modules(inputs: &Inputs<'_>) -> Value {
    let system = inputs.state.desired().map(|d| &d.system_modules);
    let started = utc_text(Some(inputs.config.started_at));
    let running = json!({
        "runtimeStatus": "running",
        "exitCode": 0,
        "statusDescription": "running",
        "lastStartTimeUtc": started,
        "lastExitTimeUtc": NO_TIME,
    });

    let mut agent = entry(
        system.and_then(|s| s.edge_agent.as_ref()),
        json!({"type": "docker"}),
    );
    for key in ["status", "restartPolicy", "startupOrder"] {
        agent.remove(key);
    }
    extend(&mut agent, &running);

    let hub_default = json!({"type": "docker", "status": "running", "restartPolicy": "always"});
    let mut hub = entry(system.and_then(|s| s.edge_hub.as_ref()), hub_default);
    extend(&mut hub, &running);
    extend(
        &mut hub,
        &json!({"restartCount": 0, "lastRestartTimeUtc": NO_TIME}),
    );
    json!({"edgeAgent": agent, "edgeHub": hub})
}

/// A module entry: the spec's manifest form, or `default`.
fn entry(spec: Option<&ModuleSpec>, default: Value) -> Map<String, Value> {
    match spec.map_or(default, ModuleSpec::to_json) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn extend(map: &mut Map<String, Value>, fields: &Value) {
    if let Value::Object(fields) = fields {
        map.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// One entry of `modules`.
fn module(inputs: &Inputs<'_>, spec: &ModuleSpec) -> Value {
    let observed = inputs.observed.get(&spec.name);
    let record = inputs.state.modules.get(&spec.name);
    let restart_config = &inputs.config.restart;
    let verdict = settled_verdict(spec, observed, record, restart_config, inputs.now);
    let restart = effective_record(observed, record, restart_config, inputs.now);
    let runtime_status = runtime_status(spec, observed, verdict);

    let mut map = entry(Some(spec), Value::Null);
    let fields = json!({
        "runtimeStatus": runtime_status,
        "exitCode": observed.and_then(|m| m.exit_code).unwrap_or(0),
        "statusDescription": description(observed),
        "lastStartTimeUtc": utc_text(observed.and_then(|m| m.started_at)),
        "lastExitTimeUtc": utc_text(observed.and_then(|m| m.finished_at)),
        "restartCount": restart.count,
        "lastRestartTimeUtc": utc_text(restart.last_restart),
    });
    extend(&mut map, &fields);
    Value::Object(map)
}

/// The restart record as it stands at `now` (cleared if the intensive-care time is over,
/// even before the next reconcile clears it).
fn effective_record(
    observed: Option<&ObservedModule>,
    record: Option<&ModuleRecord>,
    config: &RestartConfig,
    now: OffsetDateTime,
) -> RestartRecord {
    let Some(record) = record else {
        return RestartRecord::default();
    };
    let cleared = observed
        .and_then(|m| reset_due(m, &record.restart, config))
        .is_some_and(|at| at <= now);
    if cleared {
        RestartRecord::default()
    } else {
        record.restart
    }
}

/// `runtimeStatus`: running | stopped | backoff | failed | unhealthy | dead | unknown.
fn runtime_status(
    spec: &ModuleSpec,
    observed: Option<&ObservedModule>,
    verdict: Option<Verdict>,
) -> &'static str {
    let Some(observed) = observed else {
        return "unknown";
    };
    match verdict {
        Some(Verdict::Backoff { .. }) => return "backoff",
        Some(Verdict::Failed) => return "failed",
        _ => {}
    }
    match observed.status {
        RuntimeStatus::Running if observed.unhealthy() => "unhealthy",
        RuntimeStatus::Stopped | RuntimeStatus::Failed if spec.status == ModuleStatus::Stopped => {
            "stopped"
        }
        status => status.as_str(),
    }
}

/// `statusDescription`: the engine's detail, else a short account of the observed state.
fn description(observed: Option<&ObservedModule>) -> String {
    let Some(observed) = observed else {
        return "module not created".to_owned();
    };
    if let Some(text) = &observed.description {
        return text.clone();
    }
    match (observed.status, observed.exit_code) {
        (RuntimeStatus::Running, _) => "running".to_owned(),
        (RuntimeStatus::Stopped | RuntimeStatus::Failed, Some(code)) => {
            format!("exited with code {code}")
        }
        _ if observed.never_started() => "created".to_owned(),
        (status, _) => status.as_str().to_owned(),
    }
}

/// The JSON merge patch (RFC 7396) that turns `from` into `to`: changed and new members of
/// `to`, `null` for members of `from` that `to` lacks. The driver sends it as the reported
/// properties update, so modules that went away are deleted from the twin. `None` when
/// nothing changed.
pub fn reported_patch(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for key in old.keys().filter(|key| !new.contains_key(*key)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in new {
                let change = match old.get(key) {
                    Some(previous) => reported_patch(previous, value),
                    None => Some(value.clone()),
                };
                if let Some(change) = change {
                    patch.insert(key.clone(), change);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if from == to => None,
        _ => Some(to.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_formats() {
        assert_eq!(utc_text(None), NO_TIME);
        let at = time::macros::datetime!(2026-03-01 13:00:05.25 +01:00);
        assert_eq!(utc_text(Some(at)), "2026-03-01T12:00:05.25Z");
    }

    #[test]
    fn patch_cases() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1}), None),
            (json!({"a": 1}), json!({"a": 2}), Some(json!({"a": 2}))),
            (
                json!({"m": {"x": {"s": "running"}, "y": {}}}),
                json!({"m": {"x": {"s": "failed"}}}),
                Some(json!({"m": {"y": null, "x": {"s": "failed"}}})),
            ),
            (
                json!({}),
                json!({"n": {"k": true}}),
                Some(json!({"n": {"k": true}})),
            ),
            (
                json!({"a": [1]}),
                json!({"a": [1, 2]}),
                Some(json!({"a": [1, 2]})),
            ),
            (
                json!({"a": {"b": 1}}),
                json!({"a": 3}),
                Some(json!({"a": 3})),
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(reported_patch(&from, &to), expected, "{from} -> {to}");
        }
    }
}
