//! Fixtures for the runtime contract suite: one backend under test with what its modules need
//! (a workload socket each, a marker in their env), plus waiting helpers driven by runtime
//! events and log streams rather than sleeps.

pub mod image;

use std::collections::BTreeMap;
use std::os::unix::net::UnixListener;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use spoke_core::ids::ModuleId;
use spoke_edge::runtime::{
    Backend, DockerSettings, LogEntry, LogOptions, ModuleConfig, ModuleSettings, ModuleState,
    ProcessSettings, RuntimeEvent,
};
use tempfile::TempDir;
use tokio::sync::broadcast;

/// How long any single wait in the suite may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// Which backend a fixture runs.
pub enum Flavor {
    /// Docker, with the test image's reference.
    Docker {
        /// `repo:tag` of the imported shell image.
        image: String,
    },
    /// Host processes.
    Process,
}

/// One backend under test.
pub struct Fixture {
    /// The backend's capabilities.
    pub backend: Backend,
    /// Which backend it is.
    pub flavor: Flavor,
    /// A value unique to this run, put in every module's env as `SPOKE_TEST_MARKER`.
    pub marker: String,
    /// Scratch space: workload sockets (and the process runtime's data).
    pub dir: TempDir,
    sockets: Mutex<Vec<UnixListener>>,
}

impl Fixture {
    /// A fixture around `backend`.
    pub fn new(backend: Backend, flavor: Flavor, marker: String, dir: TempDir) -> Self {
        Self {
            backend,
            flavor,
            marker,
            dir,
            sockets: Mutex::new(Vec::new()),
        }
    }

    /// The module name of a case.
    pub fn name(case: &str) -> ModuleId {
        case.parse().expect("valid module name")
    }

    /// Settings running `/bin/sh -c script` in this backend.
    pub fn shell_settings(&self, script: &str) -> ModuleSettings {
        let command = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
        match &self.flavor {
            Flavor::Docker { image } => ModuleSettings::Docker(DockerSettings {
                image: image.clone(),
                create_options: json!({ "Cmd": command }),
            }),
            Flavor::Process => ModuleSettings::Process(ProcessSettings {
                command,
                working_dir: None,
            }),
        }
    }

    /// Settings of the other module type (which this backend must refuse).
    pub fn foreign_settings(&self) -> ModuleSettings {
        match &self.flavor {
            Flavor::Docker { .. } => ModuleSettings::Process(ProcessSettings {
                command: vec!["/bin/true".to_owned()],
                working_dir: None,
            }),
            Flavor::Process => ModuleSettings::Docker(DockerSettings {
                image: "unused".to_owned(),
                create_options: json!({}),
            }),
        }
    }

    /// Settings naming an image or program that does not exist.
    pub fn missing_settings(&self) -> ModuleSettings {
        match &self.flavor {
            Flavor::Docker { image } => ModuleSettings::Docker(DockerSettings {
                image: format!("{image}-absent"),
                create_options: json!({}),
            }),
            Flavor::Process => ModuleSettings::Process(ProcessSettings {
                command: vec!["spoke-test-no-such-program".to_owned()],
                working_dir: None,
            }),
        }
    }

    /// A module config for `case` with `settings`, a fresh workload socket and test env.
    pub fn module(&self, case: &str, settings: ModuleSettings) -> ModuleConfig {
        let socket = self.dir.path().join(format!("{case}.sock"));
        let listener = UnixListener::bind(&socket).expect("workload socket");
        self.sockets.lock().unwrap().push(listener);
        ModuleConfig {
            name: Self::name(case),
            settings,
            env: vec![
                ("FOO".to_owned(), "bar".to_owned()),
                ("SPOKE_TEST_MARKER".to_owned(), self.marker.clone()),
            ],
            workload_socket: socket,
            labels: BTreeMap::from([("spoke.test.case".to_owned(), case.to_owned())]),
            network: None,
            network_aliases: vec![format!("{case}.modules")],
        }
    }

    /// A shell module for `case`.
    pub fn shell_module(&self, case: &str, script: &str) -> ModuleConfig {
        self.module(case, self.shell_settings(script))
    }

    /// The `IOTEDGE_WORKLOADURI` a module must see.
    pub fn workload_uri(&self, config: &ModuleConfig) -> String {
        match self.flavor {
            Flavor::Docker { .. } => "unix:///var/run/iotedge/workload.sock".to_owned(),
            Flavor::Process => format!("unix://{}", config.workload_socket.display()),
        }
    }

    /// The current state of `name`.
    pub async fn state(&self, name: &ModuleId) -> ModuleState {
        self.backend.lifecycle.state(name).await.expect("state")
    }

    /// Waits until `name`'s state satisfies `want`, re-checking on every runtime event.
    pub async fn wait_state(
        &self,
        events: &mut broadcast::Receiver<RuntimeEvent>,
        name: &ModuleId,
        want: impl Fn(&ModuleState) -> bool,
    ) -> ModuleState {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let state = self.state(name).await;
            if want(&state) {
                return state;
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(elapsed) => panic!("{elapsed} waiting for {name}; last state {state:?}"),
                Ok(Err(broadcast::error::RecvError::Closed)) => panic!("event channel closed"),
                Ok(_) => {}
            }
        }
    }

    /// Waits for an event about `name` that satisfies `want`.
    pub async fn wait_event(
        &self,
        events: &mut broadcast::Receiver<RuntimeEvent>,
        name: &ModuleId,
        want: impl Fn(&RuntimeEvent) -> bool,
    ) -> RuntimeEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(elapsed) => panic!("{elapsed} waiting for an event of {name}"),
                Ok(Ok(event)) if &event.name == name && want(&event) => return event,
                Ok(Err(broadcast::error::RecvError::Closed)) => panic!("event channel closed"),
                Ok(_) => {}
            }
        }
    }

    /// Log entries of `name` as `options` select (the stream must end within [`WAIT`]).
    pub async fn logs(&self, name: &ModuleId, options: LogOptions) -> Vec<LogEntry> {
        let stream = self.backend.logs.logs(name, &options).await.expect("logs");
        tokio::time::timeout(WAIT, stream.map(|e| e.expect("log entry")).collect())
            .await
            .expect("log stream ends")
    }

    /// Follows `name`'s logs until the lines seen so far satisfy `done`; returns them.
    pub async fn follow_until(
        &self,
        name: &ModuleId,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let options = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = self.backend.logs.logs(name, &options).await.expect("logs");
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&lines) {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(entry)) => lines.push(text(&entry.expect("log entry"))),
                Ok(None) => panic!("log stream of {name} ended early: {lines:?}"),
                Err(elapsed) => panic!("{elapsed} following {name}: {lines:?}"),
            }
        }
        lines
    }
}

/// A log entry's line as text.
pub fn text(entry: &LogEntry) -> String {
    String::from_utf8_lossy(&entry.line).into_owned()
}

/// Whether `/proc/<pid>/environ` holds `KEY=VALUE`.
pub fn environ_has(pid: u32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == entry.as_bytes()))
}
