//! Shared builders for the agent tests: manifests, observations and a fixed clock.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use serde_json::{Value, json};
use spoke_core::ids::ModuleId;
use spoke_core::manifest::{AgentDesired, ModuleSpec};
use spoke_edge::agent::{
    Agent, AgentConfig, AgentState, AgentVersion, ObservedModule, Platform, RestartConfig,
};
use spoke_edge::runtime::RuntimeStatus;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The tests' epoch.
pub const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

pub fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

pub fn id(name: &str) -> ModuleId {
    ModuleId::parse(name).expect("valid module name")
}

/// A docker module entry.
pub fn docker(image: &str, order: Option<u32>, status: &str, policy: &str) -> Value {
    let mut entry = json!({
        "version": "1.0",
        "type": "docker",
        "status": status,
        "restartPolicy": policy,
        "settings": {"image": image, "createOptions": "{}"},
    });
    if let Some(order) = order {
        entry["startupOrder"] = json!(order);
    }
    entry
}

/// `$edgeAgent` desired properties with these modules (and both system modules).
pub fn twin(version: u64, modules: &Value) -> Value {
    json!({
        "$version": version,
        "schemaVersion": "1.1",
        "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
        "systemModules": {
            "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}},
            "edgeHub": {
                "type": "docker", "status": "running", "restartPolicy": "always", "startupOrder": 0,
                "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5", "createOptions": "{}"}
            }
        },
        "modules": modules,
    })
}

pub fn desired(modules: &Value) -> AgentDesired {
    AgentDesired::from_twin(&twin(1, modules)).expect("test manifest parses")
}

pub fn spec(desired: &AgentDesired, name: &str) -> ModuleSpec {
    desired.modules[name].clone()
}

/// A config with fixed platform and version, so reported JSON is stable.
pub fn config() -> AgentConfig {
    AgentConfig {
        restart: RestartConfig::default(),
        runtime_type: "docker".to_owned(),
        platform: Platform {
            os: "linux".to_owned(),
            architecture: "x86_64".to_owned(),
            version: "0.1.0".to_owned(),
        },
        version: AgentVersion {
            version: "0.1.0".to_owned(),
            build: "42".to_owned(),
            commit: "abc123".to_owned(),
        },
        started_at: T0 - Duration::hours(1),
    }
}

/// An agent with this deployment applied as version 1.
pub fn agent(modules: &Value) -> Agent {
    let mut agent = Agent::new(config(), AgentState::default());
    agent.apply_twin(&twin(1, modules));
    agent
}

pub fn running(name: &str, started: OffsetDateTime) -> ObservedModule {
    ObservedModule {
        started_at: Some(started),
        ..ObservedModule::new(id(name), RuntimeStatus::Running)
    }
}

pub fn exited(
    name: &str,
    code: i64,
    started: OffsetDateTime,
    at: OffsetDateTime,
) -> ObservedModule {
    ObservedModule {
        exit_code: Some(code),
        started_at: Some(started),
        finished_at: Some(at),
        ..ObservedModule::new(id(name), RuntimeStatus::from_exit_code(code))
    }
}

pub fn created(name: &str) -> ObservedModule {
    ObservedModule::new(id(name), RuntimeStatus::Stopped)
}

/// The observation after a set of actions succeeded: every desired module exists, the
/// running ones started at `at`.
pub fn all_running(desired: &AgentDesired, at: OffsetDateTime) -> Vec<ObservedModule> {
    desired
        .modules
        .values()
        .map(|spec| running(spec.name.as_str(), at))
        .collect()
}

/// Builder helpers on observations.
pub trait ObservedModuleExt {
    /// The same module with a previous exit at `at`.
    fn finished(self, at: OffsetDateTime) -> Self;
}

impl ObservedModuleExt for ObservedModule {
    fn finished(self, at: OffsetDateTime) -> Self {
        ObservedModule {
            finished_at: Some(at),
            ..self
        }
    }
}
