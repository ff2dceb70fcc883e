//! Fuzz entry point of the manifest model. It takes arbitrary bytes, must never panic, and
//! checks the model's invariants on whatever parses: images are normalized, create options
//! are objects, routes are in range, error codes are edgeAgent's, and a parsed `$edgeAgent`
//! written back with [`AgentDesired::to_twin`] reads back equal. `fuzz/fuzz_targets/manifest.rs`
//! wraps it; `tests/fuzz_smoke_manifest.rs` runs it over the corpus and seeded random input.

use serde_json::Value;

use super::create_options::{CHUNK_CHARS, MAX_CHUNKS};
use super::{
    AgentDesired, Deployment, HubDesired, MAX_ROUTE_PRIORITY, ManifestError, ModuleKind,
    ModuleSpec, normalize_image,
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
}

/// Errors carry one of edgeAgent's codes and a description.
fn check_error(error: &ManifestError) {
    assert!(matches!(error.status(), 400 | 412 | 417), "{error}");
    assert!(!error.to_string().is_empty());
}
