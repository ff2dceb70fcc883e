//! Unit tests of the registry core: no store, no sockets, fixed time.

use serde_json::json;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-01-02 03:04:05 UTC);

fn dev(id: &str) -> DeviceId {
    DeviceId::parse(id).unwrap()
}

fn body(value: serde_json::Value) -> DeviceBody {
    serde_json::from_value(value).unwrap()
}

fn create(core: &mut RegistryCore, id: &str) -> DeviceEntry {
    core.put_device(
        &dev(id),
        body(json!({"authentication": {"symmetricKey": {}}})),
        None,
        NOW,
    )
    .unwrap()
    .value
}

#[test]
fn create_generates_keys_and_refuses_duplicates() {
    let mut core = RegistryCore::default();
    let entry = create(&mut core, "d1");
    let keys: Vec<&str> = entry.authentication.keys().collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.len() == 44));
    assert_ne!(keys[0], keys[1]);
    assert_eq!(entry.etag, 1);
    let again = core.put_device(&dev("d1"), DeviceBody::default(), None, NOW);
    assert!(matches!(again, Err(RegistryError::DeviceAlreadyExists(_))));
}

#[test]
fn given_keys_are_validated() {
    let mut core = RegistryCore::default();
    let bad = body(json!({"authentication": {"symmetricKey": {"primaryKey": "not base64!"}}}));
    let err = core.put_device(&dev("d1"), bad, None, NOW).unwrap_err();
    assert_eq!(err.status(), 400);
    let short = body(json!({"authentication": {"symmetricKey": {"primaryKey": "AAAA"}}}));
    assert_eq!(
        core.put_device(&dev("d1"), short, None, NOW)
            .unwrap_err()
            .status(),
        400
    );
    assert!(
        core.get_device(&dev("d1")).is_err(),
        "a refused create leaves nothing behind"
    );
}

#[test]
fn update_needs_a_matching_etag() {
    let mut core = RegistryCore::default();
    create(&mut core, "d1");
    let stale = core.put_device(&dev("d1"), DeviceBody::default(), Some("\"Mg==\""), NOW);
    assert!(matches!(stale, Err(RegistryError::PreconditionFailed)));
    let updated = core
        .put_device(&dev("d1"), DeviceBody::default(), Some("\"MQ==\""), NOW)
        .unwrap();
    assert_eq!(updated.value.etag, 2);
    assert!(
        core.put_device(&dev("d1"), DeviceBody::default(), Some("*"), NOW)
            .is_ok()
    );
}

#[test]
fn disabling_disconnects_the_device_and_its_modules() {
    let mut core = RegistryCore::default();
    create(&mut core, "d1");
    let module = ModuleId::parse("m1").unwrap();
    core.put_module(&dev("d1"), &module, ModuleBody::default(), None, NOW)
        .unwrap();
    let keys = core.get_device(&dev("d1")).unwrap().authentication;
    let out = core
        .put_device(
            &dev("d1"),
            DeviceBody {
                status: Some(Status::Disabled),
                authentication: Some(keys),
                ..DeviceBody::default()
            },
            Some("*"),
            NOW,
        )
        .unwrap();
    let disconnected: Vec<String> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Disconnect(identity) => Some(identity.client_id()),
            _ => None,
        })
        .collect();
    assert_eq!(disconnected, ["d1", "d1/m1"]);
    assert!(
        !core
            .credentials(&Identity::device(dev("d1")))
            .unwrap()
            .enabled
    );
}

#[test]
fn edge_devices_get_their_system_modules() {
    let mut core = RegistryCore::default();
    let out = core
        .put_device(
            &dev("edge1"),
            body(json!({"capabilities": {"iotEdge": true}})),
            None,
            NOW,
        )
        .unwrap();
    assert!(
        out.value
            .device_scope
            .as_deref()
            .unwrap()
            .starts_with("ms-azure-iot-edge://edge1-")
    );
    let modules: Vec<String> = core
        .list_modules(&dev("edge1"))
        .unwrap()
        .iter()
        .map(|m| m.module_id.to_string())
        .collect();
    assert_eq!(modules, ["$edgeAgent", "$edgeHub"]);
    assert_eq!(
        out.persist.len(),
        3,
        "the device and both modules are persisted"
    );
}

#[test]
fn deleting_a_device_forgets_all_its_sessions() {
    let mut core = RegistryCore::default();
    create(&mut core, "d1");
    let module = ModuleId::parse("m1").unwrap();
    core.put_module(&dev("d1"), &module, ModuleBody::default(), None, NOW)
        .unwrap();
    let out = core.delete_device(&dev("d1"), Some("\"*\"")).unwrap();
    assert_eq!(out.effects.len(), 2);
    assert!(out.effects.iter().all(|e| matches!(e, Effect::Forget(_))));
    assert!(core.get_device(&dev("d1")).is_err());
    assert!(core.delete_device(&dev("d1"), None).is_err());
}

#[test]
fn desired_changes_notify_the_device_with_the_version() {
    let mut core = RegistryCore::default();
    create(&mut core, "d1");
    let identity = Identity::device(dev("d1"));
    let out = core
        .update_twin(
            &identity,
            &json!({"properties": {"desired": {"a": 1}}}),
            Some("*"),
            false,
            NOW,
        )
        .unwrap();
    let [Effect::DesiredPatch { version, body, .. }] = out.effects.as_slice() else {
        panic!("expected one desired patch, got {:?}", out.effects);
    };
    assert_eq!(*version, 2);
    assert_eq!(body, &json!({"a": 1, "$version": 2}));
    let tags_only = core
        .update_twin(
            &identity,
            &json!({"tags": {"env": "prod"}}),
            None,
            false,
            NOW,
        )
        .unwrap();
    assert!(
        tags_only.effects.is_empty(),
        "tags are not pushed to devices"
    );
}

#[test]
fn reported_patches_bump_the_reported_version() {
    let mut core = RegistryCore::default();
    create(&mut core, "d1");
    let identity = Identity::device(dev("d1"));
    let out = core
        .patch_reported(&identity, &json!({"x": 1}), NOW)
        .unwrap();
    assert_eq!(out.value, 2);
    let view = core.device_twin_view(&identity).unwrap();
    assert_eq!(view["reported"], json!({"x": 1, "$version": 2}));
    assert!(
        core.patch_reported(&identity, &json!({"bad key": 1}), NOW)
            .is_err()
    );
}

#[test]
fn service_twin_json_carries_presence() {
    let mut core = RegistryCore::default();
    create(&mut core, "d1");
    let presence = Presence {
        connected: true,
        last_activity: None,
        c2d_count: 3,
    };
    let twin = core
        .twin_json(&Identity::device(dev("d1")), &presence)
        .unwrap();
    assert_eq!(twin["connectionState"], "Connected");
    assert_eq!(twin["cloudToDeviceMessageCount"], 3);
    assert_eq!(twin["deviceEtag"], "MQ==");
}

#[test]
fn applied_content_reaches_existing_and_future_module_twins() {
    let mut core = RegistryCore::default();
    core.put_device(
        &dev("e1"),
        body(json!({"capabilities": {"iotEdge": true}})),
        None,
        NOW,
    )
    .unwrap();
    let content = json!({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": {}}},
        "filter": {"properties.desired": {"threshold": 30}, "properties.desired.extra.on": true},
    }});
    let out = core.apply_configuration(&dev("e1"), &content, NOW).unwrap();
    let agent = Identity::module(dev("e1"), ModuleId::parse("$edgeAgent").unwrap());
    let [Effect::DesiredPatch { identity, body, .. }] = out.effects.as_slice() else {
        panic!("expected one notification, got {:?}", out.effects);
    };
    assert_eq!(identity, &agent);
    assert_eq!(body["schemaVersion"], "1.1");
    let filter = ModuleId::parse("filter").unwrap();
    core.put_module(&dev("e1"), &filter, ModuleBody::default(), None, NOW)
        .unwrap();
    let view = core
        .device_twin_view(&Identity::module(dev("e1"), filter))
        .unwrap();
    assert_eq!(view["desired"]["threshold"], 30);
    assert_eq!(view["desired"]["extra"]["on"], true);
    let again = core.apply_configuration(&dev("e1"), &content, NOW).unwrap();
    assert!(
        again.effects.is_empty(),
        "re-applying the same content changes nothing"
    );
}

#[test]
fn applying_content_needs_an_edge_device_and_valid_content() {
    let mut core = RegistryCore::default();
    create(&mut core, "plain");
    let content = json!({"modulesContent": {"$edgeAgent": {"properties.desired": {}}}});
    assert_eq!(
        core.apply_configuration(&dev("plain"), &content, NOW)
            .unwrap_err()
            .status(),
        400
    );
    core.put_device(
        &dev("e1"),
        body(json!({"capabilities": {"iotEdge": true}})),
        None,
        NOW,
    )
    .unwrap();
    let bad = json!({"modulesContent": {"$edgeHub": {"properties.desired": {"bad key": 1}}}});
    assert_eq!(
        core.apply_configuration(&dev("e1"), &bad, NOW)
            .unwrap_err()
            .status(),
        400
    );
}
