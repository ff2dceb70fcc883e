//! Fuzz entry point of the manifest model. It takes arbitrary bytes, must never panic, and
//! checks the model's invariants on whatever parses: images are normalized, create options
//! are objects, routes are in range, broker policies are well formed and decide consistently,
//! error codes are edgeAgent's, and a parsed `$edgeAgent` written back with
//! [`AgentDesired::to_twin`] reads back equal. `fuzz/fuzz_targets/manifest.rs`
//! wraps it; `tests/fuzz_smoke_manifest.rs` runs it over the corpus and seeded random input.

use serde_json::Value;

use super::broker::{Template, is_valid_filter};
use super::create_options::{CHUNK_CHARS, MAX_CHUNKS};
use super::{
    AgentDesired, BrokerPolicy, Client, Deployment, HubDesired, MAX_ROUTE_PRIORITY, ManifestError,
    ModuleKind, ModuleSpec, Operation, normalize_image,
};

/// Manifests: the bytes as a whole deployment, as `$edgeAgent` desired properties and as
/// `$edgeHub` desired properties.
pub fn fuzz_manifest(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match Deployment::from_modules_content(&doc) {
        Ok(deployment) => {
            check_agent(&deployment.agent);
            let agent_twin = deployment
                .desired
                .get("$edgeAgent")
                .map(AgentDesired::from_twin);
            assert_eq!(agent_twin, Some(Ok(deployment.agent)));
            if let Some(hub) = &deployment.hub {
                check_hub(hub);
            }
        }
        Err(e) => check_error(&e),
    }
    match AgentDesired::from_twin(&doc) {
        Ok(agent) => check_agent(&agent),
        Err(e) => check_error(&e),
    }
    match HubDesired::from_twin(&doc) {
        Ok(hub) => check_hub(&hub),
        Err(e) => check_error(&e),
    }
}

/// Every module is normalized, and the whole reads back from its manifest form.
fn check_agent(agent: &AgentDesired) {
    let system = [
        &agent.system_modules.edge_agent,
        &agent.system_modules.edge_hub,
    ];
    let specs: Vec<&ModuleSpec> = system
        .into_iter()
        .flatten()
        .chain(agent.modules.values())
        .collect();
    let mut fits_chunks = true;
    for spec in specs {
        match &spec.kind {
            ModuleKind::Docker {
                image,
                create_options,
                ..
            } => {
                assert_eq!(normalize_image(image).as_ref(), Some(image));
                assert!(create_options.is_object(), "{create_options}");
                fits_chunks &=
                    create_options.to_string().chars().count() <= MAX_CHUNKS * CHUNK_CHARS;
            }
            ModuleKind::Process { command, .. } => {
                assert!(command.first().is_some_and(|p| !p.trim().is_empty()));
            }
        }
    }
    if fits_chunks {
        let twin = agent.to_twin();
        assert_eq!(AgentDesired::from_twin(&twin).as_ref(), Ok(agent), "{twin}");
    }
}

/// Route priorities are in range and a zero TTL reads as absent.
fn check_hub(hub: &HubDesired) {
    for route in hub.routes.values() {
        assert!(route.priority.is_none_or(|p| p <= MAX_ROUTE_PRIORITY));
        assert_ne!(route.ttl_secs, Some(0));
        assert!(!route.text.trim().is_empty());
    }
    if let Some(policy) = &hub.mqtt_broker {
        check_broker(policy);
    }
}

/// Statements have identities and rules, rules have operations and (but for connect)
/// resources, templates read back equal, and resources are topic filters. Decisions: `covers`
/// only ever sees valid filters, even for a client named with wildcards; repeating the
/// statements changes nothing; connect ignores resources; publish and subscribe need a
/// resource that a filter covers.
fn check_broker(policy: &BrokerPolicy) {
    for statement in &policy.statements {
        assert!(!statement.identities.is_empty());
        assert!(!statement.allow.is_empty() || !statement.deny.is_empty());
        let mut templates: Vec<&Template> = statement.identities.iter().collect();
        for rule in statement.allow.iter().chain(&statement.deny) {
            assert!(!rule.operations.is_empty());
            let connect_only = rule.operations.iter().all(|&op| op == Operation::Connect);
            assert!(connect_only || !rule.resources.is_empty());
            assert!(rule.resources.iter().all(|r| is_valid_filter(&r.text)));
            templates.extend(&rule.resources);
        }
        for template in templates {
            assert_eq!(Template::parse(&template.text).as_ref(), Ok(template));
        }
    }
    let doubled = BrokerPolicy {
        statements: [policy.statements.as_slice(), policy.statements.as_slice()].concat(),
    };
    let covers = |filter: &str, resource: &str| {
        assert!(is_valid_filter(filter), "{filter:?}");
        filter == resource || filter == "#"
    };
    let clients = [
        ("d", None),
        ("edge", Some("m")),
        ("edge", None),
        ("in+#", None),
    ];
    for (device, module) in clients {
        let client = Client { device, module };
        for op in Operation::ALL {
            for resource in [None, Some("a/b"), Some("#")] {
                let decision =
                    policy.allows(&client, "edge", "hub.example.net", op, resource, covers);
                assert_eq!(
                    doubled.allows(&client, "edge", "hub.example.net", op, resource, covers),
                    decision
                );
                let uncovered =
                    policy.allows(&client, "edge", "hub.example.net", op, resource, |_, _| {
                        false
                    });
                if op == Operation::Connect {
                    assert_eq!(uncovered, decision);
                } else {
                    assert!(!uncovered);
                }
            }
        }
    }
}

/// Errors carry one of edgeAgent's codes and a description.
fn check_error(error: &ManifestError) {
    assert!(matches!(error.status(), 400 | 412 | 417), "{error}");
    assert!(!error.to_string().is_empty());
}
