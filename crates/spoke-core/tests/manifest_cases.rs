//! Manifest behaviour as tables: a valid base document, a JSON merge patch (RFC 7396; `null`
//! deletes) per case, and the expected status code and description text, or the defaults a
//! valid document gets.

use serde_json::{Map, Value, json};
use spoke_core::ids::ModuleId;
use spoke_core::manifest::{
    AgentDesired, Deployment, HubDesired, ImagePullPolicy, ManifestError, ModuleKind, ModuleStatus,
    RestartPolicy, RouteSpec, SystemModules,
};

/// Applies an RFC 7396 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("object");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn patched(base: Value, patch: &Value) -> Value {
    let mut doc = base;
    merge(&mut doc, patch);
    doc
}

fn agent_base() -> Value {
    json!({
        "$version": 4,
        "$metadata": {"$lastUpdated": "2024-01-01T00:00:00Z"},
        "schemaVersion": "1.1",
        "runtime": {"type": "docker", "settings": {"registryCredentials": {}}},
        "systemModules": {
            "edgeAgent": {"type": "docker", "settings": {"image": "agent:1"}},
            "edgeHub": {"type": "docker", "status": "running", "settings": {"image": "hub:1"}}
        },
        "modules": {"m": {"type": "docker", "status": "running", "settings": {"image": "app"}}}
    })
}

fn hub_base() -> Value {
    json!({
        "schemaVersion": "1.1",
        "routes": {"r": "FROM /messages/* INTO $upstream"},
        "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}
    })
}

fn agent(patch: &Value) -> Result<AgentDesired, ManifestError> {
    AgentDesired::from_twin(&patched(agent_base(), patch))
}

fn hub(patch: &Value) -> Result<HubDesired, ManifestError> {
    HubDesired::from_twin(&patched(hub_base(), patch))
}

fn check_refusals<T: std::fmt::Debug>(
    parse: impl Fn(&Value) -> Result<T, ManifestError>,
    cases: &[(Value, u16, &str)],
) {
    for (patch, status, text) in cases {
        let err = match parse(patch) {
            Ok(parsed) => panic!("{patch} was accepted: {parsed:?}"),
            Err(err) => err,
        };
        let description = err.to_string();
        assert_eq!(err.status(), *status, "{patch}: {description}");
        assert!(
            description.contains(text),
            "{patch}: {description:?} lacks {text:?}"
        );
    }
}

#[test]
fn bad_agent_manifests() {
    let module = |fields: Value| json!({"modules": {"m": fields}});
    let process = |settings: Value| json!({"modules": {"p": {"type": "process", "status": "running", "settings": settings}}});
    let cases = [
        (
            json!({"schemaVersion": "2.0"}),
            412,
            "$edgeAgent.schemaVersion \"2.0\" is not supported",
        ),
        (json!({"schemaVersion": "1.2"}), 412, "expected 1.0 or 1.1"),
        (json!({"schemaVersion": "1"}), 412, "schemaVersion"),
        (
            json!({"schemaVersion": null}),
            400,
            "$edgeAgent.schemaVersion is required",
        ),
        (
            json!({"runtime": null}),
            400,
            "$edgeAgent.runtime is required",
        ),
        (
            json!({"runtime": {"type": "rkt"}}),
            400,
            "$edgeAgent.runtime.type is \"rkt\"; expected docker",
        ),
        (
            json!({"runtime": {"type": null}}),
            400,
            "runtime.type is required",
        ),
        (
            json!({"runtime": {"settings": {"registryCredentials": {"acr": {"address": "a", "username": "u"}}}}}),
            400,
            "registryCredentials.acr.password is required",
        ),
        (
            json!({"runtime": {"settings": {"registryCredentials": {"acr": {"address": " ", "username": "u", "password": "p"}}}}}),
            400,
            "registryCredentials.acr.address is required",
        ),
        (
            json!({"systemModules": null}),
            400,
            "$edgeAgent.systemModules is required",
        ),
        (
            json!({"systemModules": {"edgeHub": {"status": null}}}),
            400,
            "systemModules.edgeHub.status is required",
        ),
        (
            json!({"systemModules": {"edgeAgent": {"settings": {"image": ""}}}}),
            400,
            "systemModules.edgeAgent.settings.image is required",
        ),
        (
            json!({"modules": []}),
            400,
            "$edgeAgent.modules must be a JSON object",
        ),
        (
            json!({"modules": {"m": "app"}}),
            400,
            "$edgeAgent.modules.m must be a JSON object",
        ),
        (
            module(json!({"type": null})),
            400,
            "modules.m.type is required",
        ),
        (
            module(json!({"type": "kubernetes"})),
            400,
            "modules.m.type is \"kubernetes\"; expected docker or process",
        ),
        (module(json!({"type": "Docker"})), 400, "modules.m.type"),
        (
            module(json!({"status": null})),
            400,
            "modules.m.status is required",
        ),
        (
            module(json!({"status": "backoff"})),
            400,
            "modules.m.status is \"backoff\"; expected running or stopped",
        ),
        (
            module(json!({"status": 2})),
            400,
            "modules.m.status must be a string",
        ),
        (
            module(json!({"restartPolicy": "sometimes"})),
            400,
            "modules.m.restartPolicy is \"sometimes\"; expected never, on-failure, on-unhealthy or always",
        ),
        (
            module(json!({"restartPolicy": "unknown"})),
            400,
            "modules.m.restartPolicy",
        ),
        (
            module(json!({"imagePullPolicy": "always"})),
            400,
            "modules.m.imagePullPolicy is \"always\"",
        ),
        (
            module(json!({"startupOrder": -1})),
            400,
            "modules.m.startupOrder is -1",
        ),
        (
            module(json!({"startupOrder": 4_294_967_296_u64})),
            400,
            "modules.m.startupOrder",
        ),
        (
            module(json!({"startupOrder": 1.5})),
            400,
            "modules.m.startupOrder",
        ),
        (
            module(json!({"startupOrder": "first"})),
            400,
            "modules.m.startupOrder",
        ),
        (
            module(json!({"settings": null})),
            400,
            "modules.m.settings is required",
        ),
        (
            module(json!({"settings": {"image": null}})),
            400,
            "modules.m.settings.image is required",
        ),
        (
            module(json!({"settings": {"image": "app:"}})),
            400,
            "modules.m.settings.image is \"app:\"",
        ),
        (
            module(json!({"settings": {"image": 5}})),
            400,
            "modules.m.settings.image must be a string",
        ),
        (
            module(json!({"settings": {"createOptions": "{bad"}})),
            400,
            "modules.m.settings.createOptions is not valid JSON",
        ),
        (
            module(json!({"settings": {"createOptions": "[]"}})),
            400,
            "modules.m.settings.createOptions must be a JSON object",
        ),
        (
            module(json!({"settings": {"createOptions": "{", "createOptions02": "}"}})),
            400,
            "modules.m.settings: expected chunk createOptions01 but found createOptions02",
        ),
        (
            module(json!({"settings": {"createOptions01": "{}"}})),
            400,
            "expected chunk createOptions but found createOptions01",
        ),
        (
            module(json!({"settings": {"digest": {}}})),
            400,
            "modules.m.settings.digest must be a string",
        ),
        (
            module(json!({"env": {"A": {"value": {}}}})),
            400,
            "modules.m.env.A.value must be a string",
        ),
        (
            module(json!({"env": {"A": "x"}})),
            400,
            "modules.m.env.A must be a JSON object",
        ),
        (
            module(json!({"env": []})),
            400,
            "modules.m.env must be a JSON object",
        ),
        (
            module(json!({"version": []})),
            400,
            "modules.m.version must be a string",
        ),
        (
            json!({"modules": {"$m": {}}}),
            400,
            "$edgeAgent.modules: module name \"$m\" is reserved",
        ),
        (
            json!({"modules": {"edgeHub": {}}}),
            400,
            "module name \"edgeHub\" is reserved",
        ),
        (
            json!({"modules": {"a/b": {}}}),
            400,
            "module name \"a/b\" is invalid",
        ),
        (
            json!({"modules": {"": {}}}),
            400,
            "module name \"\" is invalid: identifier is empty",
        ),
        (
            process(json!({})),
            400,
            "modules.p.settings.command is required",
        ),
        (
            process(json!({"command": []})),
            400,
            "modules.p.settings.command is []",
        ),
        (
            process(json!({"command": ["  ", "x"]})),
            400,
            "modules.p.settings.command",
        ),
        (
            process(json!({"command": [1]})),
            400,
            "modules.p.settings.command must be a non-empty array",
        ),
        (
            process(json!({"command": "run"})),
            400,
            "modules.p.settings.command must be",
        ),
        (
            process(json!({"command": ["run"], "workingDir": 1})),
            400,
            "modules.p.settings.workingDir must be a string",
        ),
    ];
    check_refusals(agent, &cases);
}

#[test]
fn empty_and_non_object_agent_desired() {
    for empty in [json!({}), json!({"$version": 3, "$metadata": {}})] {
        let err = AgentDesired::from_twin(&empty).unwrap_err();
        assert_eq!(err.status(), 417, "{empty}");
        assert!(err.to_string().contains("empty configuration"));
        assert_eq!(HubDesired::from_twin(&empty).unwrap_err().status(), 417);
    }
    for bad in [json!(null), json!([]), json!("x")] {
        let err = AgentDesired::from_twin(&bad).unwrap_err();
        assert_eq!(err.to_string(), "$edgeAgent must be a JSON object");
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn agent_defaults() {
    let desired = agent(&json!({
        "systemModules": {"edgeAgent": {"status": "stopped", "restartPolicy": "never", "startupOrder": 9}}
    }))
    .unwrap();
    assert_eq!(desired.schema_version, "1.1");
    assert!(desired.registry_credentials.is_empty());
    let m = &desired.modules["m"];
    assert_eq!(m.name.as_str(), "m");
    assert_eq!(m.version, "");
    assert_eq!(m.status, ModuleStatus::Running);
    assert_eq!(m.restart_policy, RestartPolicy::OnUnhealthy);
    assert_eq!(m.image_pull_policy, ImagePullPolicy::OnCreate);
    assert_eq!(m.startup_order, 4_294_967_295);
    assert!(m.env.is_empty());
    assert_eq!(
        m.kind,
        ModuleKind::Docker {
            image: "app:latest".into(),
            create_options: json!({}),
            digest: None,
        }
    );
    let edge_agent = desired.system_modules.edge_agent.as_ref().unwrap();
    assert_eq!(edge_agent.name.as_str(), "edgeAgent");
    assert_eq!(
        (
            edge_agent.status,
            edge_agent.restart_policy,
            edge_agent.startup_order
        ),
        (ModuleStatus::Running, RestartPolicy::Always, 0)
    );
    let edge_hub = desired.system_modules.edge_hub.as_ref().unwrap();
    assert_eq!(edge_hub.restart_policy, RestartPolicy::Always);
    assert_eq!(edge_hub.startup_order, u32::MAX);

    let bare =
        agent(&json!({"systemModules": {"edgeAgent": null, "edgeHub": null}, "modules": null}))
            .unwrap();
    assert_eq!(bare.system_modules, SystemModules::default());
    assert!(bare.modules.is_empty());
}

#[test]
fn agent_reads_like_newtonsoft() {
    let mut doc = patched(
        agent_base(),
        &json!({
            "schemaVersion": "1.0.0",
            "modules": {"n": {
                "Type": "docker", "STATUS": "Stopped", "restartPolicy": "On-Failure",
                "startupOrder": "3", "version": 2, "imagePullPolicy": "NEVER",
                "settings": {"Image": " app:1 ", "CreateOptions": {"Env": ["A=1"]}, "digest": "sha256:x"},
                "env": {"N": {"value": 0}, "B": {"value": false}, "E": {}},
                "unknownField": {"ignored": true}
            }}
        }),
    );
    // Set after the merge patch, which would treat the nulls as deletions.
    doc["modules"]["n"]["env"]["Z"] = json!({"value": null});
    let desired = AgentDesired::from_twin(&doc).unwrap();
    let n = &desired.modules["n"];
    assert_eq!(n.status, ModuleStatus::Stopped);
    assert_eq!(n.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(n.image_pull_policy, ImagePullPolicy::Never);
    assert_eq!(n.startup_order, 3);
    assert_eq!(n.version, "2");
    assert_eq!(
        n.kind,
        ModuleKind::Docker {
            image: "app:1".into(),
            create_options: json!({"Env": ["A=1"]}),
            digest: Some("sha256:x".into()),
        }
    );
    let env: Vec<(&str, &str)> = n
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("B", "false"), ("E", ""), ("N", "0"), ("Z", "")]);

    doc["modules"]["m"] = Value::Null;
    let err = AgentDesired::from_twin(&doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "$edgeAgent.modules.m must be a JSON object"
    );
}

#[test]
fn create_options_chunking() {
    let options = |settings: Value| {
        let desired = agent(&json!({"modules": {"m": {"settings": settings}}})).unwrap();
        match &desired.modules["m"].kind {
            ModuleKind::Docker { create_options, .. } => create_options.clone(),
            ModuleKind::Process { .. } => unreachable!(),
        }
    };
    assert_eq!(options(json!({"createOptions": ""})), json!({}));
    assert_eq!(options(json!({"createOptions": "null"})), json!({}));
    assert_eq!(
        options(json!({
            "createOptions": "{\"HostConfig\":{\"Port",
            "createOptions01": "Bindings\":{\"80/tcp\":[{\"HostPort\":",
            "createOptions02": "\"8080\"}]}}}",
        })),
        json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}})
    );
    let mut many = Map::new();
    many.insert("image".into(), json!("app"));
    many.insert("createOptions".into(), json!("{\"Env\":[\"A="));
    for i in 1..=10 {
        many.insert(format!("createOptions{i:02}"), json!("x"));
    }
    many.insert("createOptions11".into(), json!("\"]}"));
    assert_eq!(
        options(Value::Object(many)),
        json!({"Env": [format!("A={}", "x".repeat(10))]})
    );
}

#[test]
fn module_equality_is_the_change_test() {
    let a = agent(&json!({"modules": {"m": {"settings": {"createOptions": "{\"a\":1,\"b\":2}"}}}}))
        .unwrap();
    let b = agent(&json!({"modules": {"m": {"settings": {"createOptions": "{\"b\":2,\"a\":1}"}}}}))
        .unwrap();
    assert_eq!(a.modules["m"], b.modules["m"], "key order does not count");
    let c = agent(&json!({"modules": {"m": {"env": {"X": {"value": "1"}}}}})).unwrap();
    assert_ne!(a.modules["m"], c.modules["m"]);
    let d = agent(&json!({"modules": {"m": {"status": "stopped"}}})).unwrap();
    assert_ne!(a.modules["m"], d.modules["m"]);
}

#[test]
fn bad_hub_manifests() {
    let route = |r: Value| json!({"routes": {"r": r}});
    let cases = [
        (
            json!({"schemaVersion": "1.4"}),
            412,
            "$edgeHub.schemaVersion \"1.4\" is not supported",
        ),
        (
            json!({"schemaVersion": "2.0"}),
            412,
            "expected 1.0, 1.1, 1.2 or 1.3",
        ),
        (
            json!({"schemaVersion": null}),
            400,
            "$edgeHub.schemaVersion is required",
        ),
        (json!({"routes": null}), 400, "$edgeHub.routes is required"),
        (
            json!({"routes": "x"}),
            400,
            "$edgeHub.routes must be a JSON object",
        ),
        (
            route(json!({"route": "FROM /* INTO $upstream", "priority": 10})),
            400,
            "$edgeHub.routes.r.priority is 10; expected 0..=9",
        ),
        (
            route(json!({"route": "FROM /* INTO $upstream", "priority": -1})),
            400,
            "routes.r.priority",
        ),
        (
            route(json!({"route": "FROM /* INTO $upstream", "timeToLiveSecs": -5})),
            400,
            "routes.r.timeToLiveSecs is -5",
        ),
        (
            route(json!({"priority": 1})),
            400,
            "$edgeHub.routes.r.route is required",
        ),
        (route(json!("  ")), 400, "$edgeHub.routes.r is \"  \""),
        (
            route(json!(5)),
            400,
            "$edgeHub.routes.r must be a route string or",
        ),
        (
            json!({"routes": {" ": "FROM /* INTO $upstream"}}),
            400,
            "route names that are not blank",
        ),
        (
            json!({"schemaVersion": "1.0", "routes": {"r": {"route": "FROM /* INTO $upstream"}}}),
            400,
            "routes.r must be a route string (schema 1.0)",
        ),
        (
            json!({"storeAndForwardConfiguration": null}),
            400,
            "$edgeHub.storeAndForwardConfiguration is required",
        ),
        (
            json!({"storeAndForwardConfiguration": {"timeToLiveSecs": 2_147_483_648_i64}}),
            400,
            "storeAndForwardConfiguration.timeToLiveSecs is 2147483648; expected a 32-bit integer",
        ),
        (
            json!({"storeAndForwardConfiguration": {"storeLimits": {"maxSizeBytes": -1}}}),
            400,
            "storeLimits.maxSizeBytes is -1",
        ),
    ];
    check_refusals(hub, &cases);
}

#[test]
fn hub_defaults_and_versions() {
    let legacy = hub(&json!({
        "schemaVersion": "1.0",
        "routes": {"blank": " ", "gone": null, "r": "FROM /* INTO $upstream"},
        "storeAndForwardConfiguration": {"timeToLiveSecs": null}
    }))
    .unwrap();
    assert_eq!(legacy.routes.keys().collect::<Vec<_>>(), ["r"]);
    assert_eq!(legacy.store_and_forward.ttl_secs, 0);
    assert!(
        hub(&json!({"schemaVersion": "1.0", "routes": null}))
            .unwrap()
            .routes
            .is_empty()
    );

    let objects = hub(&json!({
        "schemaVersion": "1.2",
        "routes": {
            "a": {"route": "FROM /a INTO $upstream", "priority": 2_000_000_000, "timeToLiveSecs": 0},
            "b": {"route": "FROM /b INTO $upstream", "Priority": "3", "timeToLiveSecs": 60}
        },
        "storeAndForwardConfiguration": {"timeToLiveSecs": -1, "storeLimits": {}},
        "mqttBroker": {"authorizations": [{"identities": ["{{iot:identity}}"], "allow": [{"operations": ["mqtt:connect"]}]}]}
    }))
    .unwrap();
    assert!(objects.mqtt_broker.is_some());
    assert_eq!(
        objects.routes["a"],
        RouteSpec {
            text: "FROM /a INTO $upstream".into(),
            priority: None,
            ttl_secs: None
        }
    );
    assert_eq!(objects.routes["b"].priority, Some(3));
    assert_eq!(objects.routes["b"].ttl_secs, Some(60));
    assert_eq!(objects.store_and_forward.ttl_secs, -1);
    assert_eq!(objects.store_and_forward.max_size_bytes, Some(0));

    let signed = hub(&json!({"schemaVersion": "1.3", "integrity": {"header": {}}})).unwrap();
    assert_eq!(signed.schema_version, "1.3");
    assert_eq!(signed.mqtt_broker, None);
    let before_broker = hub(&json!({"mqttBroker": {"authorizations": "ignored in 1.1"}})).unwrap();
    assert_eq!(before_broker.mqtt_broker, None);
}

fn deployment(doc: &Value) -> Result<Deployment, ManifestError> {
    Deployment::from_modules_content(doc)
}

#[test]
fn deployment_shapes() {
    let inner = json!({
        "$edgeAgent": {"properties.desired": agent_base()},
        "$edgeHub": {"properties.desired": hub_base()},
        "m": {"properties.desired": {"threshold": 1}}
    });
    let wrapped = json!({"modulesContent": inner});
    let want = deployment(&wrapped).unwrap();
    assert_eq!(
        want.desired
            .keys()
            .map(ModuleId::as_str)
            .collect::<Vec<_>>(),
        ["$edgeAgent", "$edgeHub", "m"]
    );
    assert_eq!(want.desired["m"], json!({"threshold": 1}));
    assert_eq!(want.desired["$edgeAgent"], agent_base());
    assert!(want.hub.is_some());
    for shape in [
        inner.clone(),
        json!({"moduleContent": inner}),
        json!({"id": "d1", "priority": 10, "content": {"modulesContent": inner}}),
    ] {
        assert_eq!(deployment(&shape).unwrap(), want, "{shape}");
    }
    let no_hub = json!({"modulesContent": {"$edgeAgent": {"properties.desired": agent_base()}}});
    assert_eq!(deployment(&no_hub).unwrap().hub, None);
}

#[test]
fn layered_keys_fold_into_the_section() {
    let module = json!({"type": "docker", "status": "running", "settings": {"image": "x"}});
    let doc = json!({"modulesContent": {
        "$edgeAgent": {
            "properties.desired.modules.x": module,
            "properties.desired": agent_base(),
            "properties.desired.modules.m": null,
        },
        "m": {"properties.desired.a.b": 1, "properties.desired.c": "d"},
        "n": {},
    }});
    let d = deployment(&doc).unwrap();
    assert_eq!(
        d.agent
            .modules
            .keys()
            .map(ModuleId::as_str)
            .collect::<Vec<_>>(),
        ["x"]
    );
    assert_eq!(d.desired["$edgeAgent"]["modules"], json!({"x": module}));
    assert_eq!(d.desired["m"], json!({"a": {"b": 1}, "c": "d"}));
    assert_eq!(d.desired["n"], json!({}));
}

#[test]
fn bad_deployments() {
    let agent_entry = json!({"properties.desired": agent_base()});
    let with = |extra: Value| {
        let mut content = json!({"$edgeAgent": agent_entry});
        merge(&mut content, &extra);
        json!({"modulesContent": content})
    };
    let cases = [
        (
            json!({"modulesContent": {}}),
            400,
            "modulesContent.$edgeAgent is required",
        ),
        (
            json!({"modulesContent": []}),
            400,
            "modulesContent must be a JSON object",
        ),
        (json!([]), 400, "modulesContent must be a JSON object"),
        (
            with(json!({"$edgeAgent": {"properties.reported": {}}})),
            400,
            "modulesContent.$edgeAgent.properties.reported is not allowed here",
        ),
        (
            with(json!({"m": {"properties.desired..x": 1}})),
            400,
            "modulesContent.m.properties.desired..x is not allowed here",
        ),
        (
            with(json!({"m": {"properties.desired.": 1}})),
            400,
            "is not allowed here",
        ),
        (
            json!({"modulesContent": {"$edgeAgent": {"properties.desired.modules.x": {}}}}),
            400,
            "modulesContent.$edgeAgent.properties.desired is required",
        ),
        (
            with(json!({"$edgeHub": {"properties.desired.routes.r": "FROM /* INTO $upstream"}})),
            400,
            "modulesContent.$edgeHub.properties.desired is required",
        ),
        (
            with(json!({"$edgeAgent": {"properties.desired.modules.x": {"type": "docker"}}})),
            400,
            "$edgeAgent.modules.x.settings is required",
        ),
        (
            with(json!({"m": {"properties.desired": 5}})),
            400,
            "modulesContent.m.properties.desired must be a JSON object",
        ),
        (
            with(json!({"m": 5})),
            400,
            "modulesContent.m must be a JSON object",
        ),
        (
            with(json!({"$other": {"properties.desired": {}}})),
            400,
            "modulesContent: module name \"$other\" is reserved",
        ),
        (
            with(json!({"a b": {"properties.desired": {}}})),
            400,
            "module name \"a b\" is invalid",
        ),
        (
            with(json!({"$edgeAgent": {"properties.desired": {"schemaVersion": "3.0"}}})),
            412,
            "$edgeAgent.schemaVersion \"3.0\" is not supported",
        ),
        (
            with(
                json!({"$edgeAgent": {"properties.desired": {"modules": {"m": {"status": "x"}}}}}),
            ),
            400,
            "$edgeAgent.modules.m.status is \"x\"",
        ),
        (
            with(json!({"$edgeHub": {"properties.desired": {"schemaVersion": "1.1"}}})),
            400,
            "$edgeHub.routes is required",
        ),
        (
            with(json!({"$edgeHub": {"properties.desired": {}}})),
            417,
            "$edgeHub has an empty",
        ),
    ];
    check_refusals(deployment, &cases);
}
