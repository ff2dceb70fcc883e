//! The planner: desired modules + observed modules + records + now → ordered [`Action`]s
//! (edge contracts spec §3.1, §5.3; edgeAgent's `HealthRestartPlanner`).
//!
//! Rules, per module:
//! - observed but not desired (and not `edgeAgent`/`edgeHub`, which Spoke runs built in):
//!   [`Action::Remove`];
//! - desired, not observed: [`Action::Create`], then [`Action::Start`] if `status: running`;
//! - desired and observed, but created from a different spec (status aside) or unknown to
//!   the agent: [`Action::Update`], then [`Action::Start`] if running. Every other module keeps
//!   running untouched: no action at all;
//! - only `status` changed: [`Action::Start`] or [`Action::Stop`] at once, restart record
//!   cleared (as edgeAgent does);
//! - unchanged and `status: stopped` but running: [`Action::Stop`];
//! - unchanged and `status: running`: the restart policy decides ([`super::restart`]): a
//!   first start or a due restart is [`Action::Start`] (preceded by [`Action::Stop`] for an
//!   unhealthy module that is still running), counted in the module's record; a record whose
//!   module has run for the intensive-care time is cleared.
//!
//! Order: removals (by name), then stops of modules whose `status` is `stopped` (highest
//! `startupOrder` first), then everything else by ascending `startupOrder`, ties by name.
//! Modules with the same `startupOrder` may be started together; the driver may run such a
//! run of consecutive actions concurrently, or everything in order.

use std::collections::BTreeMap;
use std::fmt;

use spoke_core::ids::ModuleId;
use spoke_core::manifest::{AgentDesired, ModuleSpec, ModuleStatus, SYSTEM_MODULE_NAMES};
use time::OffsetDateTime;

use super::observed::ObservedModule;
use super::restart::{RestartConfig, RestartRecord, Verdict, evaluate, reset_due};
use super::state::ModuleRecord;
use crate::runtime::RuntimeStatus;

/// One thing for the driver to do to the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the module from this spec, stopped (pull its image first as its
    /// `imagePullPolicy` says).
    Create(ModuleSpec),
    /// Start the module.
    Start(ModuleId),
    /// Stop the module (SIGTERM, then kill after the driver's timeout).
    Stop(ModuleId),
    /// Remove the module: stop it gracefully if it runs, then delete it.
    Remove(ModuleId),
    /// Replace the module because its spec changed: stop it gracefully if it runs, remove it,
    /// create it from this spec. A [`Action::Start`] follows when it should run.
    Update(ModuleSpec),
}

impl Action {
    /// The module the action is about.
    pub fn module(&self) -> &ModuleId {
        match self {
            Action::Create(spec) | Action::Update(spec) => &spec.name,
            Action::Start(name) | Action::Stop(name) | Action::Remove(name) => name,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self {
            Action::Create(_) => "create",
            Action::Start(_) => "start",
            Action::Stop(_) => "stop",
            Action::Remove(_) => "remove",
            Action::Update(_) => "update",
        };
        write!(f, "{verb} module {}", self.module())
    }
}

/// Whether two specs are equal apart from `status`.
fn same_but_status(a: &ModuleSpec, b: &ModuleSpec) -> bool {
    ModuleSpec {
        status: b.status,
        ..a.clone()
    } == *b
}

/// How a desired module that exists relates to its record.
enum Relation<'a> {
    /// Created from another spec, or not by this agent.
    Changed,
    /// Same spec, another desired status.
    StatusChanged(&'a mut ModuleRecord),
    /// Same spec and status.
    Same(&'a mut ModuleRecord),
}

fn relation<'a>(record: Option<&'a mut ModuleRecord>, spec: &ModuleSpec) -> Relation<'a> {
    match record {
        Some(record) if record.deployed == *spec => Relation::Same(record),
        Some(record) if same_but_status(&record.deployed, spec) => Relation::StatusChanged(record),
        _ => Relation::Changed,
    }
}

/// The restart verdict of a desired, unchanged, running module, if that is what it is.
pub(super) fn settled_verdict(
    spec: &ModuleSpec,
    observed: Option<&ObservedModule>,
    record: Option<&ModuleRecord>,
    config: &RestartConfig,
    now: OffsetDateTime,
) -> Option<Verdict> {
    let (observed, record) = (observed?, record?);
    let unchanged = record.deployed == *spec && spec.status == ModuleStatus::Running;
    unchanged.then(|| evaluate(spec.restart_policy, observed, &record.restart, config, now))
}

/// Plans one reconcile (see the module docs); updates `records` as if the actions succeed.
pub(super) fn plan(
    desired: &AgentDesired,
    observed: &BTreeMap<ModuleId, ObservedModule>,
    records: &mut BTreeMap<ModuleId, ModuleRecord>,
    config: &RestartConfig,
    now: OffsetDateTime,
) -> Vec<Action> {
    let mut actions: Vec<Action> = observed
        .keys()
        .filter(|name| {
            !desired.modules.contains_key(*name) && !SYSTEM_MODULE_NAMES.contains(&name.as_str())
        })
        .map(|name| Action::Remove(name.clone()))
        .collect();
    records.retain(|name, _| desired.modules.contains_key(name));

    let mut specs: Vec<&ModuleSpec> = desired.modules.values().collect();
    specs.sort_by(|a, b| (a.startup_order, &a.name).cmp(&(b.startup_order, &b.name)));

    let mut stops = Vec::new();
    let mut startup = Vec::new();
    for spec in specs {
        let name = &spec.name;
        let running = spec.status == ModuleStatus::Running;
        let Some(module) = observed.get(name) else {
            startup.push(Action::Create(spec.clone()));
            if running {
                startup.push(Action::Start(name.clone()));
            }
            records.insert(name.clone(), ModuleRecord::new(spec.clone()));
            continue;
        };
        let is_running = module.status == RuntimeStatus::Running;
        match relation(records.get_mut(name), spec) {
            Relation::Changed => {
                startup.push(Action::Update(spec.clone()));
                if running {
                    startup.push(Action::Start(name.clone()));
                }
                records.insert(name.clone(), ModuleRecord::new(spec.clone()));
            }
            Relation::StatusChanged(record) => {
                record.deployed.status = spec.status;
                record.restart = RestartRecord::default();
                if running && !is_running {
                    startup.push(Action::Start(name.clone()));
                } else if !running && is_running {
                    stops.push(Action::Stop(name.clone()));
                }
            }
            Relation::Same(_) if !running => {
                if is_running {
                    stops.push(Action::Stop(name.clone()));
                }
            }
            Relation::Same(record) => {
                match evaluate(spec.restart_policy, module, &record.restart, config, now) {
                    Verdict::FirstStart => startup.push(Action::Start(name.clone())),
                    Verdict::Backoff { due } if due <= now => {
                        if is_running {
                            startup.push(Action::Stop(name.clone()));
                        }
                        startup.push(Action::Start(name.clone()));
                        record.restart.record_restart(now);
                    }
                    Verdict::Running => {
                        if reset_due(module, &record.restart, config).is_some_and(|at| at <= now) {
                            record.restart = RestartRecord::default();
                        }
                    }
                    Verdict::Backoff { .. } | Verdict::Failed | Verdict::Settled => {}
                }
            }
        }
    }
    stops.reverse();
    actions.extend(stops);
    actions.extend(startup);
    actions
}

/// The earliest instant at which [`plan`] would act on time alone: a back-off ending or a
/// restart record due to be cleared. `None` when nothing is scheduled.
pub(super) fn next_wakeup(
    desired: &AgentDesired,
    observed: &BTreeMap<ModuleId, ObservedModule>,
    records: &BTreeMap<ModuleId, ModuleRecord>,
    config: &RestartConfig,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    desired
        .modules
        .values()
        .filter_map(|spec| {
            let module = observed.get(&spec.name);
            let record = records.get(&spec.name);
            match settled_verdict(spec, module, record, config, now)? {
                Verdict::Backoff { due } => Some(due),
                Verdict::Running => reset_due(module?, &record?.restart, config),
                Verdict::FirstStart | Verdict::Failed | Verdict::Settled => None,
            }
        })
        .min()
}
