//! Deployment manifests in the shapes Azure IoT Edge users deploy (see
//! `tests/fixtures/manifests/README.md`) parse unchanged, with the values edgeAgent would see.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};
use spoke_core::manifest::{
    AgentDesired, Deployment, ImagePullPolicy, ModuleKind, ModuleSpec, ModuleStatus, RestartPolicy,
};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

fn load(name: &str) -> Deployment {
    let text = fs::read_to_string(fixture_dir().join(name)).expect("fixture");
    let doc: Value = serde_json::from_str(&text).expect("fixture is JSON");
    Deployment::from_modules_content(&doc).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn module<'a>(deployment: &'a Deployment, name: &str) -> &'a ModuleSpec {
    deployment
        .agent
        .modules
        .get(name)
        .unwrap_or_else(|| panic!("module {name}"))
}

fn image(spec: &ModuleSpec) -> &str {
    match &spec.kind {
        ModuleKind::Docker { image, .. } => image,
        ModuleKind::Process { .. } => panic!("{} is not docker", spec.name),
    }
}

fn create_options(spec: &ModuleSpec) -> &Value {
    match &spec.kind {
        ModuleKind::Docker { create_options, .. } => create_options,
        ModuleKind::Process { .. } => panic!("{} is not docker", spec.name),
    }
}

#[test]
fn every_fixture_parses_and_round_trips() {
    let mut names: Vec<String> = fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        let deployment = load(name);
        assert!(deployment.desired.contains_key("$edgeAgent"), "{name}");
        assert!(
            deployment.hub.is_some(),
            "{name}: every fixture sets $edgeHub"
        );
        let twin = deployment.agent.to_twin();
        assert_eq!(
            AgentDesired::from_twin(&twin).as_ref(),
            Ok(&deployment.agent),
            "{name}: {twin}"
        );
    }
}

#[test]
fn simulated_temperature_sensor_quickstart() {
    let d = load("quickstart-simulated-temperature-sensor.json");
    let sensor = module(&d, "SimulatedTemperatureSensor");
    assert_eq!(
        image(sensor),
        "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5"
    );
    assert_eq!(sensor.status, ModuleStatus::Running);
    assert_eq!(sensor.restart_policy, RestartPolicy::Always);
    assert_eq!(sensor.image_pull_policy, ImagePullPolicy::OnCreate);
    assert_eq!(sensor.startup_order, u32::MAX);
    assert_eq!(create_options(sensor), &json!({}));
    let edge_hub = d.agent.system_modules.edge_hub.as_ref().expect("edgeHub");
    assert!(create_options(edge_hub)["HostConfig"]["PortBindings"]["8883/tcp"].is_array());
    let hub = d.hub.as_ref().expect("hub");
    assert_eq!(
        hub.routes["upstream"].text,
        "FROM /messages/* INTO $upstream"
    );
    assert_eq!(hub.store_and_forward.ttl_secs, 7200);
    assert_eq!(
        d.desired["SimulatedTemperatureSensor"],
        json!({"SendData": true, "SendInterval": 5})
    );
}

#[test]
fn nested_top_layer() {
    let d = load("nested-top-layer.json");
    let agent = d
        .agent
        .system_modules
        .edge_agent
        .as_ref()
        .expect("edgeAgent");
    assert_eq!(image(agent), "$upstream:443/azureiotedge-agent:1.5");
    let edge_hub = d.agent.system_modules.edge_hub.as_ref().expect("edgeHub");
    assert_eq!(edge_hub.env["DeviceScopeCacheRefreshDelaySecs"], "0");
    let proxy = module(&d, "IoTEdgeAPIProxy");
    assert_eq!(proxy.env["BLOB_UPLOAD_ROUTE_ADDRESS"], "8080");
    assert_eq!(proxy.startup_order, 3);
    assert!(d.agent.registry_credentials.contains_key("parentcr"));
    assert_eq!(d.hub.expect("hub").schema_version, "1.2");
}

#[test]
fn legacy_module_content_and_string_routes() {
    let d = load("schema-1.0-string-routes.json");
    assert_eq!(d.agent.schema_version, "1.0");
    let sensor = module(&d, "tempSensor");
    assert_eq!(create_options(sensor), &json!({}));
    assert_eq!(
        module(&d, "filtermodule").restart_policy,
        RestartPolicy::OnFailure
    );
    let hub = d.hub.expect("hub");
    assert_eq!(hub.routes.len(), 2);
    assert_eq!(hub.routes["sensorToFilter"].priority, None);
    assert_eq!(
        d.desired["filtermodule"],
        json!({"TemperatureThreshold": 25})
    );
}

#[test]
fn chunked_create_options_and_typed_env() {
    let d = load("chunked-create-options.json");
    let collector = module(&d, "collector");
    assert_eq!(image(collector), "localhost:5000/collector:latest");
    assert_eq!(collector.image_pull_policy, ImagePullPolicy::Never);
    assert_eq!(collector.restart_policy, RestartPolicy::OnUnhealthy);
    assert_eq!(collector.startup_order, 1);
    assert_eq!(create_options(collector)["Labels"]["team"], "line-3");
    assert_eq!(collector.env["VERBOSE"], "true");
    assert_eq!(collector.env["RATE"], "2.5");
    let stopped = module(&d, "stopped");
    assert_eq!(stopped.status, ModuleStatus::Stopped);
    assert_eq!(image(stopped), "busybox:latest");
    assert_eq!(create_options(stopped), &json!({}));
    let hub = d.hub.expect("hub");
    assert_eq!(hub.routes["all"].priority, Some(0));
    assert_eq!(hub.routes["all"].ttl_secs, Some(86_400));
}

#[test]
fn spec_example() {
    let d = load("spec-example.json");
    assert_eq!(module(&d, "sensor").startup_order, 1);
    assert_eq!(
        module(&d, "filter").restart_policy,
        RestartPolicy::OnFailure
    );
    assert_eq!(d.desired["filter"], json!({"threshold": 30}));
}

#[test]
fn spoke_process_modules() {
    let d = load("spoke-process-modules.json");
    let sensor = module(&d, "sensor");
    assert_eq!(
        sensor.kind,
        ModuleKind::Process {
            command: vec![
                "/opt/spoke/modules/simulated-temperature-sensor".into(),
                "--interval-ms".into(),
                "1000".into()
            ],
            working_dir: None,
        }
    );
    assert_eq!(sensor.env["MessageCount"], "-1");
    assert_eq!(sensor.env["SendData"], "true");
    let filter = module(&d, "filter");
    assert_eq!(filter.status, ModuleStatus::Stopped);
    assert_eq!(filter.restart_policy, RestartPolicy::OnUnhealthy);
    assert_eq!(filter.env["TEMP_THRESHOLD"], "25.5");
    let modbus = module(&d, "modbus");
    assert_eq!(image(modbus), "localhost:5000/modbus:latest");
    assert_eq!(modbus.image_pull_policy, ImagePullPolicy::Never);
    assert_eq!(
        create_options(modbus),
        &json!({"HostConfig": {"Binds": ["/dev/ttyUSB0:/dev/ttyUSB0"], "Privileged": true}})
    );
    let hub = d.hub.expect("hub");
    assert_eq!(hub.schema_version, "1.3");
    assert_eq!(hub.routes["bulk"].priority, Some(9));
    assert_eq!(hub.routes["bulk"].ttl_secs, Some(600));
    assert_eq!(hub.store_and_forward.ttl_secs, -1);
    assert_eq!(hub.store_and_forward.max_size_bytes, Some(1_073_741_824));
    assert_eq!(d.desired["filter"], json!({"threshold": 30}));
}
