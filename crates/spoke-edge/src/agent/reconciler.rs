//! [`Agent`]: the edge agent's synchronous core. It owns the desired state, the last
//! observation of the runtime, the per-module records and `lastDesiredStatus`, and turns
//! events (new desired properties, an observation, an action's failure, the time) into
//! [`Action`]s, a wake-up time and the reported properties. No I/O (STYLE.md §2-3).
//!
//! Invariants: the state's desired properties are the last good ones, replaced only by
//! desired properties that parse; refused ones change `lastDesiredVersion` and
//! `lastDesiredStatus` but no module. Without any good desired properties the agent plans
//! nothing (it never removes modules it does not know it should not run).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use spoke_core::ids::ModuleId;
use spoke_core::manifest::{AgentDesired, ManifestError};
use time::OffsetDateTime;

use super::config::AgentConfig;
use super::observed::ObservedModule;
use super::plan::{self, Action};
use super::report::{self, Inputs};
use super::state::AgentState;
use super::status::{DeploymentStatus, StatusCode};

/// The edge agent's core; see the module docs. Typical driver loop:
///
/// 1. on a desired-properties change: [`Agent::apply_twin`] with the whole desired section;
/// 2. on a module event, a wake-up or a period: list the runtime's modules, call
///    [`Agent::reconcile`], carry out the actions in order (reporting failures with
///    [`Agent::action_failed`]);
/// 3. persist [`Agent::state`] when [`Agent::take_state_changed`] says so, send
///    [`report::reported_patch`] of the previous and the new [`Agent::reported`], and sleep
///    until [`Agent::next_wakeup`] or the next event.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    state: AgentState,
    last_desired_version: Option<u64>,
    /// Why the latest desired properties were refused, if they were.
    refused: Option<DeploymentStatus>,
    /// The first action failure since the last reconcile began.
    failure: Option<String>,
    observed: BTreeMap<ModuleId, ObservedModule>,
    state_changed: bool,
}

impl Agent {
    /// An agent resuming from `state` (the default state on first start). With a stored
    /// deployment it reports that deployment's version as applied; without, 417.
    pub fn new(config: AgentConfig, state: AgentState) -> Self {
        Self {
            config,
            last_desired_version: state.version(),
            state,
            refused: None,
            failure: None,
            observed: BTreeMap::new(),
            state_changed: false,
        }
    }

    /// Takes new `$edgeAgent` desired properties with their `$version`: a parsed deployment
    /// becomes the desired state (status 200); a refused one only sets `lastDesiredStatus` to
    /// the error's code and message, and the modules keep running as they are.
    pub fn apply_desired(&mut self, version: u64, desired: Result<AgentDesired, ManifestError>) {
        self.last_desired_version = Some(version);
        match desired {
            Ok(desired) => {
                self.refused = None;
                self.failure = None;
                let next = Some((version, desired));
                if self.state.desired != next {
                    self.state.desired = next;
                    self.state_changed = true;
                }
            }
            Err(error) => self.refused = Some(DeploymentStatus::refused(&error)),
        }
    }

    /// [`Agent::apply_desired`] for the whole desired section of the `$edgeAgent` twin
    /// (`$version` read from it, 0 when absent). A desired-properties patch must be merged
    /// into the full section first.
    pub fn apply_twin(&mut self, desired: &Value) {
        let version = desired.get("$version").and_then(Value::as_u64).unwrap_or(0);
        self.apply_desired(version, AgentDesired::from_twin(desired));
    }

    /// Plans a reconcile against `observed` (every module the runtime has) at `now`. The
    /// actions are ordered (see [`plan`]); the agent's records assume they
    /// succeed unless [`Agent::action_failed`] says otherwise. A status 500 from the last
    /// reconcile's failures is cleared.
    pub fn reconcile(
        &mut self,
        observed: impl IntoIterator<Item = ObservedModule>,
        now: OffsetDateTime,
    ) -> Vec<Action> {
        self.observed = observed
            .into_iter()
            .map(|module| (module.name.clone(), module))
            .collect();
        let Some((_, desired)) = &self.state.desired else {
            return Vec::new();
        };
        self.failure = None;
        let before = self.state.modules.clone();
        let actions = plan::plan(
            desired,
            &self.observed,
            &mut self.state.modules,
            &self.config.restart,
            now,
        );
        if self.state.modules != before {
            self.state_changed = true;
        }
        actions
    }

    /// Records that the driver could not carry out `action`: until the next reconcile,
    /// `lastDesiredStatus` is 500 with the first failed action and its error (unless the latest
    /// desired properties were refused: their code stays). A failed create or update is
    /// forgotten so the next reconcile tries again.
    pub fn action_failed(&mut self, action: &Action, error: &dyn fmt::Display) {
        self.failure
            .get_or_insert_with(|| format!("{action}: {error}"));
        if matches!(action, Action::Create(_) | Action::Update(_))
            && self.state.modules.remove(action.module()).is_some()
        {
            self.state_changed = true;
        }
    }

    /// When the next reconcile is due on time alone (a back-off ending, a restart count to
    /// clear), judged from the last observation; `None` when nothing is scheduled. An
    /// instant at or before `now` means "reconcile now".
    pub fn next_wakeup(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let desired = self.state.desired()?;
        plan::next_wakeup(
            desired,
            &self.observed,
            &self.state.modules,
            &self.config.restart,
            now,
        )
    }

    /// The `$edgeAgent` reported properties at `now` (see [`report`]).
    pub fn reported(&self, now: OffsetDateTime) -> Value {
        report::reported(&Inputs {
            config: &self.config,
            state: &self.state,
            last_desired_version: self.last_desired_version,
            status: &self.status(),
            observed: &self.observed,
            now,
        })
    }

    /// The state to persist.
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// Whether the state changed since the last call (then the driver persists it).
    pub fn take_state_changed(&mut self) -> bool {
        std::mem::take(&mut self.state_changed)
    }

    /// `lastDesiredStatus`: the refusal of the latest desired properties, else the failure
    /// of an action since the last reconcile (500), else 200 with a deployment and 417
    /// without.
    pub fn status(&self) -> DeploymentStatus {
        if let Some(refused) = &self.refused {
            return refused.clone();
        }
        match (&self.failure, self.state.desired()) {
            (Some(failure), _) => DeploymentStatus {
                code: StatusCode::Failed,
                description: failure.clone(),
            },
            (None, Some(_)) => DeploymentStatus::ok(),
            (None, None) => DeploymentStatus::not_set(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }
}
