//! Restart policies and back-off through [`Agent::reconcile`] and [`Agent::next_wakeup`]
//! (edge contracts spec §5.3): exact due times, the cap, `MaxRestartCount` and the
//! intensive-care reset, all on a simulated clock.

mod agent_support;

use agent_support::{T0, agent, created, docker, exited, id, running, secs};
use serde_json::{Value, json};
use spoke_edge::agent::{Action, Agent, Health, ObservedModule};
use spoke_edge::runtime::RuntimeStatus;
use time::{Duration, OffsetDateTime};

/// The cool-offs before restarts 1..=8 with the defaults: 10 s × 2^n, capped at 300 s.
const COOL_OFFS: [i64; 8] = [10, 20, 40, 80, 160, 300, 300, 300];

/// How long each run lasts before it crashes.
const RUN: i64 = 3;

fn one_module(policy: &str) -> Value {
    json!({"m": docker("m:1", None, "running", policy)})
}

/// An agent whose module `m` was just created and started at `T0`.
fn started(policy: &str) -> Agent {
    let mut agent = agent(&one_module(policy));
    agent.reconcile(Vec::new(), T0 - secs(1));
    assert_eq!(agent.reconcile(vec![running("m", T0)], T0), []);
    agent
}

fn reported_module(agent: &Agent, now: OffsetDateTime) -> Value {
    agent.reported(now)["modules"]["m"].clone()
}

/// Crashes `m` (started at `start`) with `code` after [`RUN`] seconds and checks the back-off:
/// nothing before the due time, a restart exactly at it. Returns the restart time.
fn crash_and_restart(
    agent: &mut Agent,
    start: OffsetDateTime,
    code: i64,
    cool_off: i64,
) -> OffsetDateTime {
    let exit = start + secs(RUN);
    let observed = vec![exited("m", code, start, exit)];
    assert_eq!(agent.reconcile(observed.clone(), exit), []);
    let due = exit + secs(cool_off);
    assert_eq!(agent.next_wakeup(exit), Some(due), "cool-off {cool_off}");
    assert_eq!(reported_module(agent, exit)["runtimeStatus"], "backoff");
    let early = due - Duration::nanoseconds(1);
    assert_eq!(agent.reconcile(observed.clone(), early), []);
    assert_eq!(
        agent.reconcile(observed.clone(), due),
        [Action::Start(id("m"))]
    );
    // A reconcile on the same, stale observation does not restart twice.
    assert_eq!(agent.reconcile(observed, due), []);
    assert_eq!(agent.reconcile(vec![running("m", due)], due), []);
    due
}

#[test]
fn back_off_timeline_per_policy() {
    // (policy, exit code, restarted?, runtimeStatus when not restarted)
    let cases = [
        ("always", 1, true, ""),
        ("always", 0, true, ""),
        ("on-failure", 1, true, ""),
        ("on-failure", 0, false, "stopped"),
        ("on-unhealthy", 1, true, ""),
        ("on-unhealthy", 0, false, "stopped"),
        ("never", 1, false, "failed"),
        ("never", 0, false, "stopped"),
    ];
    for (policy, code, restarts, settled) in cases {
        let mut agent = started(policy);
        if restarts {
            let mut start = T0;
            for (n, cool_off) in COOL_OFFS.into_iter().enumerate() {
                start = crash_and_restart(&mut agent, start, code, cool_off);
                let module = reported_module(&agent, start);
                assert_eq!(module["restartCount"], n + 1, "{policy} {code}");
                assert_eq!(module["runtimeStatus"], "running");
                assert_eq!(
                    module["lastRestartTimeUtc"],
                    start
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap()
                );
            }
        } else {
            let exit = T0 + secs(RUN);
            let observed = vec![exited("m", code, T0, exit)];
            for later in [0, 10, 3600] {
                assert_eq!(agent.reconcile(observed.clone(), exit + secs(later)), []);
            }
            assert_eq!(agent.next_wakeup(exit), None, "{policy} {code}");
            let module = reported_module(&agent, exit);
            assert_eq!(module["runtimeStatus"], settled, "{policy} {code}");
            assert_eq!(module["exitCode"], code);
            assert_eq!(module["restartCount"], 0);
        }
    }
}

#[test]
fn failed_after_max_restart_count() {
    let mut agent = started("always");
    let mut start = T0;
    for n in 0..20 {
        start = crash_and_restart(&mut agent, start, 1, COOL_OFFS[n.min(7)]);
    }
    assert_eq!(reported_module(&agent, start)["restartCount"], 20);
    let exit = start + secs(RUN);
    let observed = vec![exited("m", 1, start, exit)];
    for later in [0, 300, 86_400] {
        assert_eq!(agent.reconcile(observed.clone(), exit + secs(later)), []);
    }
    assert_eq!(agent.next_wakeup(exit), None);
    let module = reported_module(&agent, exit);
    assert_eq!(module["runtimeStatus"], "failed");
    assert_eq!(module["restartCount"], 20);
    assert_eq!(module["exitCode"], 1);
}

#[test]
fn restart_count_resets_after_intensive_care() {
    let mut agent = started("always");
    let mut start = T0;
    for cool_off in &COOL_OFFS[..3] {
        start = crash_and_restart(&mut agent, start, 1, *cool_off);
    }
    let observed = vec![running("m", start)];
    let reset = start + Duration::minutes(10);
    assert_eq!(agent.next_wakeup(start + secs(60)), Some(reset));
    assert_eq!(agent.reconcile(observed.clone(), reset - secs(1)), []);
    assert_eq!(agent.state().module("m").unwrap().restart.count, 3);
    assert_eq!(reported_module(&agent, reset - secs(1))["restartCount"], 3);
    // The report already shows the reset at its time, the reconcile then records it.
    assert_eq!(reported_module(&agent, reset)["restartCount"], 0);
    agent.take_state_changed();
    assert_eq!(agent.reconcile(observed, reset), []);
    assert!(agent.take_state_changed());
    assert_eq!(agent.state().module("m").unwrap().restart.count, 0);
    assert_eq!(agent.next_wakeup(reset), None);
    let module = reported_module(&agent, reset);
    assert_eq!(module["lastRestartTimeUtc"], "0001-01-01T00:00:00Z");
    // The next crash starts the back-off from 10 s again.
    crash_and_restart(&mut agent, reset + secs(60), 1, 10);
}

#[test]
fn unhealthy_restarts_only_under_health_policies() {
    let unhealthy = ObservedModule {
        health: Some(Health::Unhealthy),
        ..running("m", T0)
    };
    for (policy, restarts) in [
        ("on-unhealthy", true),
        ("always", true),
        ("on-failure", false),
        ("never", false),
    ] {
        let mut agent = started(policy);
        let now = T0 + secs(30);
        let actions = agent.reconcile(vec![unhealthy.clone()], now);
        let module = reported_module(&agent, now);
        if restarts {
            assert_eq!(
                actions,
                [Action::Stop(id("m")), Action::Start(id("m"))],
                "{policy}"
            );
            assert_eq!(module["restartCount"], 1);
            // Still unhealthy after the restart: the next one waits 20 s from it.
            assert_eq!(agent.next_wakeup(now), Some(now + secs(20)));
            assert_eq!(module["runtimeStatus"], "backoff");
        } else {
            assert_eq!(actions, [], "{policy}");
            assert_eq!(module["runtimeStatus"], "unhealthy");
            assert_eq!(agent.next_wakeup(now), None);
        }
    }
}

#[test]
fn first_start_is_not_a_restart() {
    let mut agent = agent(&one_module("never"));
    agent.reconcile(Vec::new(), T0);
    // The start failed: the module exists but never ran. It is started again, uncounted.
    let actions = agent.reconcile(vec![created("m")], T0 + secs(5));
    assert_eq!(actions, [Action::Start(id("m"))]);
    assert_eq!(reported_module(&agent, T0 + secs(5))["restartCount"], 0);
}

#[test]
fn dead_and_unknown_are_left_alone() {
    for status in [RuntimeStatus::Dead, RuntimeStatus::Unknown] {
        let mut agent = started("always");
        let observed = ObservedModule {
            started_at: Some(T0),
            finished_at: Some(T0 + secs(1)),
            ..ObservedModule::new(id("m"), status)
        };
        assert_eq!(agent.reconcile(vec![observed], T0 + secs(600)), []);
        let module = reported_module(&agent, T0 + secs(600));
        assert_eq!(module["runtimeStatus"], status.as_str());
    }
}

#[test]
fn exit_in_the_future_restarts_at_once() {
    let mut agent = started("always");
    let now = T0 + secs(5);
    let observed = vec![exited("m", 1, T0, now + secs(3600))];
    assert_eq!(agent.reconcile(observed, now), [Action::Start(id("m"))]);
}
