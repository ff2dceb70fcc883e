//! Store-and-forward across an outage (the edge hub issue's outage test): the hub is stopped
//! while an unchanged Azure SDK module sends N messages to `$upstream`; half-way, `spoke-edge`
//! (the real binary) is killed with SIGKILL and started again, still offline; then the hub
//! comes back. All N messages arrive, each first copy in order; duplicates (at-least-once)
//! are counted and printed. The module also patches its reported properties during the
//! outage, before and after the SIGKILL: the edge hub acknowledges them offline, the module
//! reads them back in its twin, and they reach the hub when it returns.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use support::{TestHub, deployment, process_module, python, wait_file};

const HUB_IP: &str = "127.0.0.75";
const EDGE_IP: &str = "127.0.0.76";
const N: u64 = 200;

/// Sends `seq` 0..N to output `seq`, keeping its progress in a file so that a restart goes on
/// where it stopped; waits for file `go` first and for `resume` at N/2; writes `half` and
/// `done` when there. At N/2 and N it patches reported `progress` (and sets, then deletes,
/// `phase`); at N it writes the reported properties it reads to `reported.json`.
const COUNTER: &str = r#"
import json, os, sys, time
from azure.iot.device import IoTHubModuleClient, Message
d, n = sys.argv[1], int(sys.argv[2])
progress_file = os.path.join(d, "progress")
def wait_for(name):
    while not os.path.exists(os.path.join(d, name)):
        time.sleep(0.05)
def touch(name):
    open(os.path.join(d, name), "w").close()
progress = int(open(progress_file).read()) if os.path.exists(progress_file) else 0
client = IoTHubModuleClient.create_from_edge_environment()
client.connect()
wait_for("go")
for i in range(progress, n):
    client.send_message_to_output(Message(json.dumps({"seq": i}), content_encoding="utf-8", content_type="application/json"), "seq")
    with open(progress_file + ".tmp", "w") as f:
        f.write(str(i + 1))
    os.replace(progress_file + ".tmp", progress_file)
    if i + 1 == n // 2:
        client.patch_twin_reported_properties({"progress": i + 1, "phase": "first half"})
        touch("half")
        wait_for("resume")
client.patch_twin_reported_properties({"progress": n, "phase": None})
with open(os.path.join(d, "reported.json"), "w") as f:
    json.dump(client.get_twin()["reported"], f)
touch("done")
while True:
    time.sleep(3600)
"#;

/// The `spoke-edge` binary as a child process, killed when dropped (also when the test fails).
struct Daemon(Child);

impl Daemon {
    fn spawn(config: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_spoke-edge"))
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// SIGKILL.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    /// SIGTERM, and the exit status must be success.
    fn terminate(mut self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.0.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn nothing_is_lost_across_a_hub_outage_and_a_sigkill_of_spoke_edge() {
    let Some(python) = python() else {
        eprintln!("skipped: no .venv with the Azure SDK (run scripts/setup.sh)");
        return;
    };
    let mut hub = TestHub::start(HUB_IP).await;
    let key = hub.service.edge_device("edge3").await;
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    std::fs::create_dir(&control).unwrap();
    let script = dir.path().join("counter.py");
    std::fs::write(&script, COUNTER).unwrap();
    let config = dir.path().join("config.toml");
    let text = hub.edge_config_text("edge3", &key, EDGE_IP, &dir.path().join("data"), "");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::spawn(&config);

    let since = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
    let counter = process_module(&[
        python.display().to_string(),
        script.display().to_string(),
        control.display().to_string(),
        N.to_string(),
    ]);
    let routes = json!({"up": "FROM /messages/modules/counter/outputs/* INTO $upstream"});
    hub.service
        .deploy("edge3", deployment(&json!({"counter": counter}), &routes))
        .await;
    hub.service
        .wait_reported("edge3", |r| {
            r["lastDesiredStatus"]["code"] == 200
                && r["modules"]["counter"]["runtimeStatus"] == "running"
        })
        .await;
    hub.service
        .wait_twin("/twins/edge3/modules/%24edgeHub", |r| {
            r["lastDesiredStatus"]["code"] == 200
        })
        .await;

    // The outage: the module sends half, spoke-edge dies and comes back offline, the module
    // (restarted by the new spoke-edge) sends the rest.
    hub.stop().await;
    std::fs::write(control.join("go"), "").unwrap();
    wait_file(&control.join("half")).await;
    daemon.kill();
    std::fs::write(control.join("resume"), "").unwrap();
    let daemon = Daemon::spawn(&config);
    wait_file(&control.join("done")).await;

    // Offline, the module reads back what it reported.
    let read: Value =
        serde_json::from_slice(&std::fs::read(control.join("reported.json")).unwrap()).unwrap();
    assert_eq!(read["progress"], N);
    assert!(read.get("phase").is_none(), "{read}");

    // The hub comes back: everything arrives, and the reported properties.
    hub.start_again().await;
    hub.service
        .wait_twin("/twins/edge3/modules/counter", |r| {
            r["progress"] == N && r.get("phase").is_none()
        })
        .await;
    let seq = |e: &Value| e["event"]["payload"]["seq"].as_u64().unwrap();
    let events = hub
        .service
        .events_until("edge3", since, |events| {
            events.iter().map(seq).collect::<HashSet<_>>().len() as u64 >= N
        })
        .await;
    let mut seen = HashSet::new();
    let first_copies: Vec<u64> = events.iter().map(seq).filter(|s| seen.insert(*s)).collect();
    assert_eq!(first_copies, (0..N).collect::<Vec<_>>());
    for event in &events {
        assert_eq!(event["event"]["module"], "counter");
    }
    // The restarted spoke-edge's link follows the module again: the hub sees it connected.
    hub.service
        .wait_json("/twins/edge3/modules/counter", |twin| {
            twin["connectionState"] == "Connected"
        })
        .await;
    eprintln!(
        "outage test: {N} messages, {} delivered, {} duplicates",
        events.len(),
        events.len() as u64 - N
    );

    // Clean up: remove the module, then stop spoke-edge.
    hub.service.remove_modules("edge3").await;
    daemon.terminate();
    hub.stop().await;
}
