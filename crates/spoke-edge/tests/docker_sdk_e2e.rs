//! An unchanged Azure SDK module (`ModuleClient.create_from_edge_environment()`) inside a
//! Docker container: `spoke-edge` with the Docker runtime creates it on its network, with the
//! workload socket bind-mounted; the module signs through it, resolves the edge device's
//! hostname to the network's gateway, connects to the edge hub there, and its output reaches the
//! hub through a route. Then, with real containers: a module that crashes is restarted after
//! the back-off, and an update of that module replaces its container while the SDK module
//! keeps its own.
//!
//! No registry is reachable, so the image is a `FROM scratch` root filesystem imported by the
//! test (`runtime_support/image.rs`), and the container bind-mounts the host's `/usr` and the
//! repository's Python venv (with its interpreter) read-only. Skipped, with a printed reason,
//! without a Docker socket or without the venv.

#[allow(dead_code)]
#[path = "runtime_support/image.rs"]
mod image;
mod support;

use std::path::{Path, PathBuf};

use bollard::Docker;
use serde_json::json;
use support::{TestHub, deployment, python};

const HUB_IP: &str = "127.0.0.79";
const EDGE_IP: &str = "127.0.0.80";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const NETWORK: &str = "spoke-test-sdk";
const IMAGE: &str = "spoke-test/host-runtime";

const MODULE: &str = r#"
import threading
from azure.iot.device import IoTHubModuleClient, Message
client = IoTHubModuleClient.create_from_edge_environment()
client.connect()
client.patch_twin_reported_properties({"inContainer": True})
client.send_message_to_output(Message("hello from a container"), "out")
threading.Event().wait()
"#;

/// The id of the container named `name`, if there is one.
async fn container_id(docker: &Docker, name: &str) -> Option<String> {
    docker.inspect_container(name, None).await.ok()?.id
}

/// The directory holding the venv's interpreter installation (`.../versions/3.x.y`).
fn interpreter_home(python: &Path) -> PathBuf {
    let real = std::fs::canonicalize(python).unwrap();
    real.parent().and_then(Path::parent).unwrap().to_owned()
}

#[tokio::test]
async fn an_azure_sdk_module_in_a_container_talks_through_the_edge_hub() {
    let Some(python) = python() else {
        eprintln!("skipped: no .venv with the Azure SDK (run scripts/setup.sh)");
        return;
    };
    if !Path::new(DOCKER_SOCKET).exists() {
        eprintln!("skipped: no Docker socket at {DOCKER_SOCKET}");
        return;
    }
    let docker =
        Docker::connect_with_socket(DOCKER_SOCKET, 120, bollard::API_DEFAULT_VERSION).unwrap();
    image::import_host_runtime_image(&docker, IMAGE, "1").await;

    let mut hub = TestHub::start(HUB_IP).await;
    let key = hub.service.edge_device("edge4").await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("module.py");
    std::fs::write(&script, MODULE).unwrap();
    let extra = format!("[moby_runtime]\nnetwork = \"{NETWORK}\"\n");
    let text = hub
        .edge_config_text("edge4", &key, EDGE_IP, &dir.path().join("data"), &extra)
        .replace("kind = \"process\"", "kind = \"docker\"")
        // A name, which containers resolve to their network's gateway (an address would be
        // their own loopback).
        .replace(
            &format!("hostname = \"{EDGE_IP}\""),
            "hostname = \"edge4.local\"",
        );
    let config = spoke_edge::config::EdgeConfig::parse(&text, Path::new("config.toml")).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(spoke_edge::daemon::run(config, async move {
        let _ = stop_rx.await;
    }));

    let venv = std::fs::canonicalize(python.parent().and_then(Path::parent).unwrap()).unwrap();
    let binds = [
        "/usr:/usr:ro".to_owned(),
        format!("{0}:{0}:ro", interpreter_home(&python).display()),
        format!("{0}:{0}:ro", venv.display()),
        format!("{}:/module.py:ro", script.display()),
    ];
    // The image has no entrypoint: the command comes with `createOptions`, as Azure allows.
    let create_options = json!({
        "HostConfig": {"Binds": binds},
        "Cmd": [venv.join("bin/python").display().to_string(), "/module.py"],
    });
    let module = json!({"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": format!("{IMAGE}:1"), "createOptions": create_options.to_string()}});
    let since = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
    let routes = json!({"up": "FROM /messages/modules/pyc/outputs/* INTO $upstream"});
    hub.service
        .deploy("edge4", deployment(&json!({"pyc": module}), &routes))
        .await;

    let event = hub.service.events("edge4", since, 1).await.remove(0);
    assert_eq!(event["event"]["module"], "pyc", "{event:#}");
    assert_eq!(event["event"]["payload"], "hello from a container");
    hub.service
        .wait_twin("/twins/edge4/modules/pyc", |r| r["inContainer"] == true)
        .await;

    // A module that exits with 3 under `on-failure` is restarted after the first back-off
    // (10 s); adding it leaves the running module's container alone.
    let pyc_container = container_id(&docker, "pyc").await;
    assert!(pyc_container.is_some());
    let shell = |script: &str| {
        let options =
            json!({"HostConfig": {"Binds": ["/usr:/usr:ro"]}, "Cmd": ["/bin/sh", "-c", script]});
        json!({"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "on-failure",
            "settings": {"image": format!("{IMAGE}:1"), "createOptions": options.to_string()}})
    };
    let modules = json!({"pyc": module.clone(), "crasher": shell("exit 3")});
    hub.service
        .deploy("edge4", deployment(&modules, &routes))
        .await;
    let reported = hub
        .service
        .wait_reported("edge4", |r| {
            r["modules"]["crasher"]["restartCount"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(
        reported["modules"]["crasher"]["exitCode"], 3,
        "{reported:#}"
    );
    assert_eq!(container_id(&docker, "pyc").await, pyc_container);
    let crasher_container = container_id(&docker, "crasher").await;

    // Updating that module replaces its container; the other keeps running in its own.
    let modules = json!({"pyc": module, "crasher": shell("trap 'exit 0' TERM; sleep 1000 & wait")});
    hub.service
        .deploy("edge4", deployment(&modules, &routes))
        .await;
    hub.service
        .wait_reported("edge4", |r| {
            r["lastDesiredVersion"].as_u64() >= Some(3)
                && r["modules"]["crasher"]["runtimeStatus"] == "running"
        })
        .await;
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while container_id(&docker, "crasher")
        .await
        .is_none_or(|id| Some(id) == crasher_container)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "crasher's container not replaced"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(container_id(&docker, "pyc").await, pyc_container);

    hub.service.remove_modules("edge4").await;
    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    hub.stop().await;
    let _ = docker.remove_network(NETWORK).await;
    let options = bollard::query_parameters::RemoveImageOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker
        .remove_image(&format!("{IMAGE}:1"), Some(options), None)
        .await;
}
