//! The planner through [`Agent::reconcile`]: fresh deployments, updates, removals, desired
//! status, refused manifests and failed actions (edge contracts spec §3.1, §5.1).

mod agent_support;

use agent_support::{
    T0, agent, all_running, config, created, desired, docker, exited, id, running, secs, spec, twin,
};
use serde_json::json;
use spoke_core::manifest::AgentDesired;
use spoke_edge::agent::{Action, Agent, AgentState, ObservedModule, StatusCode};

fn five_modules() -> serde_json::Value {
    json!({
        "a": docker("a:1", Some(2), "running", "always"),
        "b": docker("b:1", Some(0), "running", "always"),
        "c": docker("c:1", Some(1), "running", "always"),
        "d": docker("d:1", None, "running", "always"),
        "e": docker("e:1", Some(1), "stopped", "always"),
    })
}

/// Deploys `modules` and observes the outcome, so the next reconcile starts from steady state.
fn deployed(modules: &serde_json::Value) -> (Agent, AgentDesired, Vec<ObservedModule>) {
    let mut agent = agent(modules);
    let d = desired(modules);
    agent.reconcile(Vec::new(), T0);
    let observed: Vec<ObservedModule> = d
        .modules
        .values()
        .map(|s| match s.status {
            spoke_core::manifest::ModuleStatus::Running => running(s.name.as_str(), T0),
            spoke_core::manifest::ModuleStatus::Stopped => created(s.name.as_str()),
        })
        .collect();
    assert_eq!(agent.reconcile(observed.clone(), T0 + secs(1)), []);
    (agent, d, observed)
}

#[test]
fn fresh_deploy_follows_startup_order() {
    let modules = five_modules();
    let d = desired(&modules);
    let mut agent = agent(&modules);
    let actions = agent.reconcile(Vec::new(), T0);
    let create = |n: &str| Action::Create(spec(&d, n));
    let start = |n: &str| Action::Start(id(n));
    // b (0), then c and e (1; e is stopped: created only), a (2), d (default: last).
    let expected = [
        create("b"),
        start("b"),
        create("c"),
        start("c"),
        create("e"),
        create("a"),
        start("a"),
        create("d"),
        start("d"),
    ];
    assert_eq!(actions, expected);
    assert!(agent.take_state_changed());
}

#[test]
fn steady_state_needs_nothing() {
    let (mut agent, _, observed) = deployed(&five_modules());
    agent.take_state_changed();
    assert_eq!(agent.reconcile(observed, T0 + secs(60)), []);
    assert!(!agent.take_state_changed());
    assert_eq!(agent.next_wakeup(T0 + secs(60)), None);
}

#[test]
fn update_of_one_module_leaves_the_others_untouched() {
    let (mut agent, _, observed) = deployed(&five_modules());
    let mut changed = five_modules();
    changed["c"]["settings"]["image"] = json!("c:2");
    changed["a"]["env"] = json!({"LEVEL": {"value": "debug"}});
    changed["e"]["settings"]["createOptions"] = json!("{\"HostConfig\":{\"Privileged\":true}}");
    agent.apply_twin(&twin(2, &changed));
    assert_eq!(agent.status().code, StatusCode::Ok, "{:?}", agent.status());
    let d = desired(&changed);
    let actions = agent.reconcile(observed, T0 + secs(2));
    let expected = [
        Action::Update(spec(&d, "c")),
        Action::Start(id("c")),
        Action::Update(spec(&d, "e")),
        Action::Update(spec(&d, "a")),
        Action::Start(id("a")),
    ];
    assert_eq!(actions, expected);
}

#[test]
fn create_options_key_order_is_no_change() {
    let mut modules = json!({"m": docker("m:1", None, "running", "always")});
    modules["m"]["settings"]["createOptions"] = json!("{\"A\":1,\"B\":2}");
    let (mut agent, _, observed) = deployed(&modules);
    modules["m"]["settings"]["createOptions"] = json!("{\"B\":2,\"A\":1}");
    agent.apply_twin(&twin(2, &modules));
    assert_eq!(agent.reconcile(observed, T0 + secs(2)), []);
    assert_eq!(agent.reported(T0)["lastDesiredVersion"], 2);
}

#[test]
fn removal() {
    let (mut agent, _, mut observed) = deployed(&five_modules());
    let mut fewer = five_modules();
    fewer.as_object_mut().unwrap().remove("c");
    agent.apply_twin(&twin(2, &fewer));
    // A stray module and a runtime module named like a system module.
    observed.push(running("stray", T0));
    observed.push(running("edgeHub", T0));
    let actions = agent.reconcile(observed, T0 + secs(2));
    assert_eq!(
        actions,
        [Action::Remove(id("c")), Action::Remove(id("stray"))]
    );
    assert!(agent.state().module("c").is_none());
}

#[test]
fn desired_status_changes() {
    let (mut agent, _, _) = deployed(&five_modules());
    let mut flipped = five_modules();
    flipped["a"]["status"] = json!("stopped");
    flipped["b"]["status"] = json!("stopped");
    flipped["e"]["status"] = json!("running");
    agent.apply_twin(&twin(2, &flipped));
    let observed = vec![
        running("a", T0),
        running("b", T0),
        running("c", T0),
        running("d", T0),
        exited("e", 137, T0, T0 + secs(1)),
    ];
    let actions = agent.reconcile(observed, T0 + secs(2));
    // Stops first, highest startup order first; then starts by startup order.
    let expected = [
        Action::Stop(id("a")),
        Action::Stop(id("b")),
        Action::Start(id("e")),
    ];
    assert_eq!(actions, expected);
}

#[test]
fn stopped_module_is_created_not_started_and_stopped_if_running() {
    let modules = json!({"s": docker("s:1", None, "stopped", "always")});
    let d = desired(&modules);
    let mut agent = agent(&modules);
    assert_eq!(
        agent.reconcile(Vec::new(), T0),
        [Action::Create(spec(&d, "s"))]
    );
    // Created, never started: stays so.
    assert_eq!(agent.reconcile(vec![created("s")], T0 + secs(1)), []);
    // Started behind the agent's back: stopped again.
    let actions = agent.reconcile(vec![running("s", T0)], T0 + secs(2));
    assert_eq!(actions, [Action::Stop(id("s"))]);
    // Exited after the stop: reported as stopped whatever the exit code, not restarted.
    let observed = vec![exited("s", 137, T0, T0 + secs(3))];
    assert_eq!(agent.reconcile(observed, T0 + secs(600)), []);
    assert_eq!(
        agent.reported(T0 + secs(600))["modules"]["s"]["runtimeStatus"],
        "stopped"
    );
}

#[test]
fn unknown_existing_module_is_recreated() {
    let modules = json!({"m": docker("m:1", None, "running", "always")});
    let d = desired(&modules);
    let mut agent = agent(&modules);
    let actions = agent.reconcile(vec![running("m", T0)], T0);
    assert_eq!(
        actions,
        [Action::Update(spec(&d, "m")), Action::Start(id("m"))]
    );
}

#[test]
fn refused_manifest_keeps_modules_and_reports_its_code() {
    let cases = [
        (json!({"$version": 2, "schemaVersion": "2.0"}), 412),
        (json!({"$version": 2, "$metadata": {}}), 417),
        (
            json!({"$version": 2, "schemaVersion": "1.1", "systemModules": {}}),
            400,
        ),
        (json!([1, 2]), 400),
    ];
    for (bad, code) in cases {
        let (mut agent, _, observed) = deployed(&five_modules());
        agent.take_state_changed();
        let before = agent.state().clone();
        agent.apply_twin(&bad);
        assert_eq!(agent.status().code.as_u16(), code, "{bad}");
        assert_eq!(agent.reconcile(observed, T0 + secs(2)), [], "{bad}");
        assert_eq!(agent.state(), &before);
        assert!(!agent.take_state_changed());
        let reported = agent.reported(T0 + secs(2));
        assert_eq!(reported["lastDesiredStatus"]["code"], code);
        assert_ne!(reported["lastDesiredStatus"]["description"], "");
        let expected_version = if bad.is_object() { 2 } else { 0 };
        assert_eq!(reported["lastDesiredVersion"], expected_version);
        assert_eq!(reported["modules"].as_object().unwrap().len(), 5);
    }
}

#[test]
fn nothing_is_planned_without_a_deployment() {
    let mut agent = Agent::new(config(), AgentState::default());
    assert_eq!(agent.reconcile(vec![running("x", T0)], T0), []);
    assert_eq!(agent.status().code, StatusCode::ConfigEmptyError);
    assert_eq!(agent.next_wakeup(T0), None);
    // A refused first manifest plans nothing either.
    agent.apply_twin(&json!({"$version": 1, "schemaVersion": "9.0"}));
    assert_eq!(agent.reconcile(vec![running("x", T0)], T0), []);
}

#[test]
fn failed_action_reports_500_and_is_retried() {
    let modules = json!({"m": docker("m:1", None, "running", "always")});
    let d = desired(&modules);
    let mut agent = agent(&modules);
    let actions = agent.reconcile(Vec::new(), T0);
    agent.action_failed(&actions[0], &"image not found");
    let status = agent.status();
    assert_eq!(status.code, StatusCode::Failed);
    assert_eq!(status.description, "create module m: image not found");
    assert_eq!(agent.reported(T0)["lastDesiredStatus"]["code"], 500);
    // Nothing was created: the next reconcile creates again and the status returns to 200.
    let again = agent.reconcile(Vec::new(), T0 + secs(5));
    assert_eq!(
        again,
        [Action::Create(spec(&d, "m")), Action::Start(id("m"))]
    );
    assert_eq!(agent.status().code, StatusCode::Ok);
}

#[test]
fn resumes_from_persisted_state_without_touching_modules() {
    let (agent, d, observed) = deployed(&five_modules());
    let stored = agent.state().to_json().unwrap();
    let state = AgentState::from_json(&stored).unwrap();
    let mut resumed = Agent::new(config(), state);
    assert_eq!(resumed.reconcile(observed, T0 + secs(3600)), []);
    let reported = resumed.reported(T0 + secs(3600));
    assert_eq!(reported["lastDesiredVersion"], 1);
    assert_eq!(reported["lastDesiredStatus"]["code"], 200);
    assert_eq!(resumed.state().desired(), Some(&d));
    // And a fresh deployment still works on top.
    let all = all_running(&d, T0);
    assert_eq!(
        resumed.reconcile(all, T0 + secs(3601)),
        [Action::Stop(id("e"))]
    );
}

#[test]
fn refused_status_outlives_reconciles_and_failures_until_a_good_deployment() {
    let modules = json!({"m": docker("m:1", None, "running", "always")});
    let mut agent = agent(&modules);
    agent.apply_twin(&json!({"$version": 2, "schemaVersion": "7.0"}));
    let actions = agent.reconcile(Vec::new(), T0);
    agent.action_failed(&actions[0], &"no such image");
    assert_eq!(agent.status().code, StatusCode::InvalidSchemaVersion);
    agent.reconcile(Vec::new(), T0 + secs(5));
    assert_eq!(agent.status().code, StatusCode::InvalidSchemaVersion);
    agent.apply_twin(&twin(3, &modules));
    assert_eq!(agent.status().code, StatusCode::Ok);
    assert_eq!(agent.reported(T0)["lastDesiredVersion"], 3);
}
