//! Restart policy and back-off, per module (edge contracts spec §5.3; edgeAgent's
//! `RestartPolicyManager` and `HealthRestartPlanner`).
//!
//! The state machine of a module that should be running, as a pure function of its restart
//! policy, what the runtime reports, its [`RestartRecord`] and the time ([`evaluate`]):
//!
//! - running (and not unhealthy under a policy that cares): [`Verdict::Running`]; once it has
//!   run for `IntensiveCareTimeInMinutes` since its last start, its record is cleared
//!   ([`reset_due`]);
//! - created and never started: [`Verdict::FirstStart`], started at once, not counted;
//! - not running, or unhealthy, and the policy restarts it (`always`: any exit; `on-failure`:
//!   a non-zero exit; `on-unhealthy`: a non-zero exit or an unhealthy health check; `never`:
//!   nothing): [`Verdict::Failed`] once `restartCount >= MaxRestartCount`, else
//!   [`Verdict::Backoff`] with the instant the restart is due;
//! - anything else (exit 0 under `on-failure`, `dead`, `unknown`, ...): [`Verdict::Settled`].
//!
//! Back-off: a module restarts once `min(CoolOffTimeUnitInSeconds × 2^restartCount, 300 s)`
//! has passed since its last exit; with an exit time in the future (clock skew) at once.
//! Two deliberate differences from edgeAgent, both about the boundary rather than the curve:
//! the restart is due *at* the end of the cool-off (edgeAgent: strictly after; it polls every
//! 5 s, Spoke sleeps exactly until [`Verdict::Backoff::due`]), and the cool-off runs from the
//! later of the last exit and the agent's own last restart, so a reconcile on an observation
//! that predates the restart does not restart the module twice. Each restart the agent orders
//! increments `restartCount` and sets `lastRestartTimeUtc`.

use spoke_core::manifest::RestartPolicy;
use time::{Duration, OffsetDateTime};

use super::observed::ObservedModule;
use crate::runtime::RuntimeStatus;

/// The cap on the cool-off period (`RestartPolicyManager.MaxCoolOffPeriodSecs`).
pub const MAX_COOL_OFF: Duration = Duration::seconds(300);

/// edgeAgent's restart settings (spec §3.1, agent environment settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    /// `MaxRestartCount`: restarts before a module is declared failed (default 20).
    pub max_restart_count: u32,
    /// `CoolOffTimeUnitInSeconds`: the base of the back-off (default 10 s).
    pub cool_off_time_unit: Duration,
    /// `IntensiveCareTimeInMinutes`: how long a module must run before its restart count is
    /// cleared (default 10 min).
    pub intensive_care_time: Duration,
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self {
            max_restart_count: 20,
            cool_off_time_unit: Duration::seconds(10),
            intensive_care_time: Duration::minutes(10),
        }
    }
}

impl RestartConfig {
    /// The cool-off before restart number `restart_count + 1`:
    /// `min(cool_off_time_unit × 2^restart_count, 300 s)` (zero for a unit of zero or less).
    pub fn cool_off(&self, restart_count: u32) -> Duration {
        if !self.cool_off_time_unit.is_positive() {
            return Duration::ZERO;
        }
        2_i32
            .checked_pow(restart_count)
            .and_then(|factor| self.cool_off_time_unit.checked_mul(factor))
            .map_or(MAX_COOL_OFF, |period| period.min(MAX_COOL_OFF))
    }
}

/// A module's restart bookkeeping (edgeAgent keeps it in its store; Spoke in
/// [`super::AgentState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestartRecord {
    /// Restarts since the record was last cleared (`restartCount`).
    pub count: u32,
    /// When the agent last ordered a restart (`lastRestartTimeUtc`).
    pub last_restart: Option<OffsetDateTime>,
}

impl RestartRecord {
    /// Whether there is anything to clear.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }

    /// Counts a restart ordered at `now`.
    pub fn record_restart(&mut self, now: OffsetDateTime) {
        self.count = self.count.saturating_add(1);
        self.last_restart = Some(now);
    }
}

/// What the restart policy says about a module that should be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Running; nothing to do.
    Running,
    /// Created and never started: start it now (a first start is not a restart).
    FirstStart,
    /// The policy restarts it; the restart is due at `due` (now or earlier: restart now).
    /// Reported as `backoff`.
    Backoff {
        /// When the cool-off ends.
        due: OffsetDateTime,
    },
    /// The policy would restart it, but `MaxRestartCount` restarts are used up. Reported as
    /// `failed`; no more restarts until the module is updated or its status changes.
    Failed,
    /// Not running and the policy leaves it so; reported with its observed status.
    Settled,
}

/// Applies `policy` to a module that should be running (see the module docs).
pub fn evaluate(
    policy: RestartPolicy,
    observed: &ObservedModule,
    record: &RestartRecord,
    config: &RestartConfig,
    now: OffsetDateTime,
) -> Verdict {
    let restart = match observed.status {
        RuntimeStatus::Running => {
            observed.unhealthy()
                && matches!(policy, RestartPolicy::OnUnhealthy | RestartPolicy::Always)
        }
        RuntimeStatus::Stopped if observed.never_started() => return Verdict::FirstStart,
        RuntimeStatus::Stopped => policy == RestartPolicy::Always,
        RuntimeStatus::Failed => policy != RestartPolicy::Never,
        RuntimeStatus::Dead | RuntimeStatus::Unknown => false,
    };
    if !restart {
        return if observed.status == RuntimeStatus::Running {
            Verdict::Running
        } else {
            Verdict::Settled
        };
    }
    if record.count >= config.max_restart_count {
        return Verdict::Failed;
    }
    let reference = match (observed.finished_at, record.last_restart) {
        (Some(exit), Some(restart)) => Some(exit.max(restart)),
        (exit, restart) => exit.or(restart),
    };
    let due = match reference {
        Some(at) if at <= now => at.saturating_add(config.cool_off(record.count)),
        // Never exited, or an exit "in the future" (clock skew): restart at once.
        _ => now,
    };
    Verdict::Backoff { due }
}

/// When a running module's record is cleared: `IntensiveCareTime` after its current run
/// started. `None` when the record is already clear or the start time is unknown.
pub fn reset_due(
    observed: &ObservedModule,
    record: &RestartRecord,
    config: &RestartConfig,
) -> Option<OffsetDateTime> {
    if record.is_clear() || observed.status != RuntimeStatus::Running {
        return None;
    }
    observed
        .started_at
        .map(|started| started.saturating_add(config.intensive_care_time))
}

#[cfg(test)]
mod tests {
    use spoke_core::ids::ModuleId;
    use time::macros::datetime;

    use super::*;
    use crate::agent::observed::Health;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn module(status: RuntimeStatus) -> ObservedModule {
        ObservedModule::new(ModuleId::parse("m").unwrap(), status)
    }

    fn exited(code: i64) -> ObservedModule {
        ObservedModule {
            exit_code: Some(code),
            started_at: Some(T0 - Duration::minutes(1)),
            finished_at: Some(T0),
            ..module(RuntimeStatus::from_exit_code(code))
        }
    }

    #[test]
    fn cool_off_doubles_and_caps() {
        let config = RestartConfig::default();
        let secs: Vec<i64> = (0..8).map(|n| config.cool_off(n).whole_seconds()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(config.cool_off(u32::MAX), MAX_COOL_OFF);
        let zero = RestartConfig {
            cool_off_time_unit: Duration::ZERO,
            ..config
        };
        assert_eq!(zero.cool_off(40), Duration::ZERO);
    }

    #[test]
    fn policy_table() {
        use RestartPolicy::{Always, Never, OnFailure, OnUnhealthy};
        let backoff = Verdict::Backoff {
            due: T0 + Duration::seconds(10),
        };
        let unhealthy = ObservedModule {
            health: Some(Health::Unhealthy),
            started_at: Some(T0 - Duration::minutes(1)),
            ..module(RuntimeStatus::Running)
        };
        let cases = [
            (Never, exited(1), Verdict::Settled),
            (OnFailure, exited(1), backoff),
            (OnUnhealthy, exited(1), backoff),
            (Always, exited(1), backoff),
            (Never, exited(0), Verdict::Settled),
            (OnFailure, exited(0), Verdict::Settled),
            (OnUnhealthy, exited(0), Verdict::Settled),
            (Always, exited(0), backoff),
            (Never, unhealthy.clone(), Verdict::Running),
            (OnFailure, unhealthy.clone(), Verdict::Running),
            (OnUnhealthy, unhealthy.clone(), Verdict::Backoff { due: T0 }),
            (Always, unhealthy, Verdict::Backoff { due: T0 }),
            (Always, module(RuntimeStatus::Stopped), Verdict::FirstStart),
            (Never, module(RuntimeStatus::Stopped), Verdict::FirstStart),
            (Always, module(RuntimeStatus::Dead), Verdict::Settled),
            (Always, module(RuntimeStatus::Unknown), Verdict::Settled),
            (Never, module(RuntimeStatus::Running), Verdict::Running),
        ];
        let config = RestartConfig::default();
        for (policy, observed, expected) in cases {
            let verdict = evaluate(policy, &observed, &RestartRecord::default(), &config, T0);
            assert_eq!(verdict, expected, "{policy:?} {observed:?}");
        }
    }

    #[test]
    fn failed_at_max_restart_count() {
        let config = RestartConfig::default();
        let mut record = RestartRecord {
            count: 19,
            last_restart: Some(T0 - Duration::hours(1)),
        };
        let verdict = evaluate(RestartPolicy::Always, &exited(1), &record, &config, T0);
        assert_eq!(
            verdict,
            Verdict::Backoff {
                due: T0 + MAX_COOL_OFF
            }
        );
        record.count = 20;
        let verdict = evaluate(RestartPolicy::Always, &exited(1), &record, &config, T0);
        assert_eq!(verdict, Verdict::Failed);
    }

    #[test]
    fn back_off_reference_is_the_later_of_exit_and_restart() {
        let config = RestartConfig::default();
        let mut record = RestartRecord::default();
        record.record_restart(T0 + Duration::seconds(10));
        // The observation still shows the exit before the restart.
        let now = T0 + Duration::seconds(10);
        let verdict = evaluate(RestartPolicy::Always, &exited(1), &record, &config, now);
        assert_eq!(
            verdict,
            Verdict::Backoff {
                due: now + Duration::seconds(20)
            }
        );
    }

    #[test]
    fn exit_in_the_future_restarts_at_once() {
        let config = RestartConfig::default();
        let now = T0 - Duration::hours(1);
        let verdict = evaluate(
            RestartPolicy::Always,
            &exited(1),
            &RestartRecord::default(),
            &config,
            now,
        );
        assert_eq!(verdict, Verdict::Backoff { due: now });
    }

    #[test]
    fn reset_after_intensive_care() {
        let config = RestartConfig::default();
        let running = ObservedModule {
            started_at: Some(T0),
            ..module(RuntimeStatus::Running)
        };
        let mut record = RestartRecord::default();
        assert_eq!(reset_due(&running, &record, &config), None);
        record.record_restart(T0);
        assert_eq!(
            reset_due(&running, &record, &config),
            Some(T0 + Duration::minutes(10))
        );
        assert_eq!(reset_due(&exited(1), &record, &config), None);
    }
}
