//! The module runtime contract (STYLE.md §5): one set of cases, run against the Docker and the
//! process runtime through the same trait objects ([`Backend`]). Each backend's test runs all
//! cases concurrently (distinct module names), then cleans up, then reports failed cases.
//!
//! The Docker test needs `/var/run/docker.sock` and is skipped, with a printed reason, only
//! when that socket is absent. It imports a throwaway image built from the host's binaries
//! (`runtime_support::image`) and removes its containers, network and image at the end.

mod runtime_support;

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, RemoveImageOptions,
};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, join_all};
use runtime_support::{Fixture, Flavor, WAIT, environ_has, text};
use serde_json::json;
use spoke_edge::runtime::docker::{DockerConfig, DockerRuntime, INSTANCE_LABEL};
use spoke_edge::runtime::process::{LogRotation, ProcessRuntime};
use spoke_edge::runtime::{
    Backend, DockerSettings, LogOptions, LogSource, ModuleSettings, ProcessSettings, RuntimeError,
    RuntimeEventKind, RuntimeStatus,
};
use time::OffsetDateTime;
use tokio::io::AsyncBufReadExt;

const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const HUB_ALIAS: &str = "edgehub.spoke.test";
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints `READY` once set up (after its child is forked, so it has two processes); on SIGTERM
/// prints `BYE` and exits 0.
const SERVICE: &str = r#"trap 'echo BYE; exit 0' TERM
echo "ENV_FOO=$FOO"
echo "ENV_URI=$IOTEDGE_WORKLOADURI"
test -S "${IOTEDGE_WORKLOADURI#unix://}" && echo SOCKET_OK
sleep 1000 &
echo READY
wait"#;

fn run_id() -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000;
    format!("{}x{nanos}", std::process::id())
}

fn ready_count(lines: &[String]) -> usize {
    lines.iter().filter(|l| *l == "READY").count()
}

// ---------------------------------------------------------------------------------------------
// The contract.

/// create → stopped; start → running with PIDs that carry the module env; logs show the env
/// and the workload socket; stop → stopped with code 0; restart; remove → gone.
async fn lifecycle(fx: &Fixture) {
    let config = fx.shell_module("lifecycle", SERVICE);
    let name = &config.name;
    let rt = &fx.backend.lifecycle;
    let mut events = fx.backend.events.subscribe();

    let id = rt.create(&config).await.expect("create");
    let created = fx.state(name).await;
    assert_eq!(
        (created.status, created.exit_code, created.pid),
        (RuntimeStatus::Stopped, None, None)
    );
    assert_eq!(created.id, id);
    let listed = rt.list().await.expect("list");
    assert!(
        listed
            .iter()
            .any(|s| &s.name == name && s.status == RuntimeStatus::Stopped)
    );
    assert!(matches!(
        rt.create(&config).await,
        Err(RuntimeError::AlreadyExists { .. })
    ));

    rt.start(name).await.expect("start");
    let running = fx
        .wait_state(&mut events, name, |s| s.status == RuntimeStatus::Running)
        .await;
    let pid = running.pid.expect("running module has a pid");
    assert!(running.started_at.is_some());
    let lines = fx.follow_until(name, |l| ready_count(l) == 1).await;
    assert!(lines.contains(&"ENV_FOO=bar".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&format!("ENV_URI={}", fx.workload_uri(&config))),
        "{lines:?}"
    );
    assert!(lines.contains(&"SOCKET_OK".to_owned()), "{lines:?}");

    let pids = fx.backend.processes.pids(name).await.expect("pids");
    assert!(pids.contains(&pid), "{pids:?} lacks main pid {pid}");
    assert!(pids.len() >= 2, "shell and sleep: {pids:?}");
    let marker = format!("SPOKE_TEST_MARKER={}", fx.marker);
    for p in &pids {
        assert!(environ_has(*p, &marker), "pid {p} is not the module's");
    }
    rt.start(name)
        .await
        .expect("start of a running module is a no-op");

    rt.stop(name, STOP_TIMEOUT).await.expect("stop");
    let stopped = fx.state(name).await;
    assert_eq!(
        (stopped.status, stopped.exit_code, stopped.pid),
        (RuntimeStatus::Stopped, Some(0), None)
    );
    assert!(stopped.finished_at.is_some());
    assert!(
        fx.backend
            .processes
            .pids(name)
            .await
            .expect("pids")
            .is_empty()
    );
    let last = fx
        .logs(
            name,
            LogOptions {
                tail: Some(1),
                ..LogOptions::default()
            },
        )
        .await;
    assert_eq!(last.iter().map(text).collect::<Vec<_>>(), ["BYE"]);
    rt.stop(name, STOP_TIMEOUT)
        .await
        .expect("stop of a stopped module is a no-op");

    rt.start(name).await.expect("restart");
    fx.wait_state(&mut events, name, |s| s.status == RuntimeStatus::Running)
        .await;
    let lines = fx.follow_until(name, |l| ready_count(l) == 2).await;
    assert_eq!(lines.iter().filter(|l| *l == "BYE").count(), 1, "{lines:?}");

    rt.remove(name).await.expect("remove a running module");
    assert!(matches!(
        rt.state(name).await,
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(
        !rt.list()
            .await
            .expect("list")
            .iter()
            .any(|s| &s.name == name)
    );
    assert!(matches!(
        rt.remove(name).await,
        Err(RuntimeError::NotFound { .. })
    ));
}

/// A module that exits by itself reports its code, by event and by state; stderr is tagged.
async fn crash_reports_exit_code(fx: &Fixture) {
    let config = fx.shell_module("crash", "echo boom >&2; exit 3");
    let name = &config.name;
    let mut events = fx.backend.events.subscribe();
    fx.backend.lifecycle.create(&config).await.expect("create");
    fx.backend.lifecycle.start(name).await.expect("start");
    let exited = fx
        .wait_event(&mut events, name, |e| {
            matches!(e.kind, RuntimeEventKind::Exited { .. })
        })
        .await;
    assert_eq!(exited.kind, RuntimeEventKind::Exited { exit_code: Some(3) });
    let state = fx.state(name).await;
    assert_eq!(
        (state.status, state.exit_code),
        (RuntimeStatus::Failed, Some(3))
    );
    let logs = fx.logs(name, LogOptions::default()).await;
    assert!(
        logs.iter()
            .any(|e| e.source == LogSource::Stderr && text(e) == "boom"),
        "{logs:?}"
    );
    fx.backend.lifecycle.remove(name).await.expect("remove");
}

/// A module ignoring SIGTERM is killed after the timeout and reports 128 + SIGKILL.
async fn stop_kills_after_timeout(fx: &Fixture) {
    let config = fx.shell_module("stubborn", "trap '' TERM; sleep 1000 & echo READY; wait");
    let name = &config.name;
    fx.backend.lifecycle.create(&config).await.expect("create");
    fx.backend.lifecycle.start(name).await.expect("start");
    fx.follow_until(name, |l| ready_count(l) == 1).await;
    let began = std::time::Instant::now();
    fx.backend
        .lifecycle
        .stop(name, Duration::from_secs(1))
        .await
        .expect("stop");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < STOP_TIMEOUT,
        "stop took {took:?}"
    );
    let state = fx.state(name).await;
    assert_eq!(
        (state.status, state.exit_code),
        (RuntimeStatus::Failed, Some(137))
    );
    fx.backend.lifecycle.remove(name).await.expect("remove");
}

/// `tail`, `since` and `follow` on a module that has exited.
async fn logs_tail_since_follow(fx: &Fixture) {
    let config = fx.shell_module("printer", "for i in 1 2 3 4 5; do echo line$i; done");
    let name = &config.name;
    let mut events = fx.backend.events.subscribe();
    let before = OffsetDateTime::now_utc() - Duration::from_secs(5);
    fx.backend.lifecycle.create(&config).await.expect("create");
    fx.backend.lifecycle.start(name).await.expect("start");
    fx.wait_state(&mut events, name, |s| {
        s.status == RuntimeStatus::Stopped && s.exit_code.is_some()
    })
    .await;
    let all: Vec<String> = fx
        .logs(name, LogOptions::default())
        .await
        .iter()
        .map(text)
        .collect();
    assert_eq!(all, ["line1", "line2", "line3", "line4", "line5"]);
    let tail = fx
        .logs(
            name,
            LogOptions {
                tail: Some(2),
                ..LogOptions::default()
            },
        )
        .await;
    assert_eq!(
        tail.iter().map(text).collect::<Vec<_>>(),
        ["line4", "line5"]
    );
    assert!(
        tail.iter()
            .all(|e| e.source == LogSource::Stdout && e.timestamp >= before)
    );
    let future = OffsetDateTime::now_utc() + Duration::from_hours(1);
    assert!(
        fx.logs(
            name,
            LogOptions {
                since: Some(future),
                ..LogOptions::default()
            }
        )
        .await
        .is_empty()
    );
    let since = fx
        .logs(
            name,
            LogOptions {
                since: Some(before),
                ..LogOptions::default()
            },
        )
        .await;
    assert_eq!(since.len(), 5);
    let followed = fx
        .logs(
            name,
            LogOptions {
                follow: true,
                ..LogOptions::default()
            },
        )
        .await;
    assert_eq!(
        followed.len(),
        5,
        "following an exited module ends after its history"
    );
    fx.backend.lifecycle.remove(name).await.expect("remove");
}

/// Nothing to run → a typed error, and nothing is left behind.
async fn missing_image_or_program(fx: &Fixture) {
    let config = fx.module("missing", fx.missing_settings());
    let result = fx.backend.lifecycle.create(&config).await;
    match (&fx.flavor, result) {
        (Flavor::Docker { .. }, Err(RuntimeError::ImageNotFound { .. }))
        | (Flavor::Process, Err(RuntimeError::CommandNotFound { .. })) => {}
        (_, other) => panic!("unexpected result {other:?}"),
    }
    assert!(matches!(
        fx.backend.lifecycle.state(&config.name).await,
        Err(RuntimeError::NotFound { .. })
    ));
}

/// Unknown modules are `NotFound` everywhere; settings of the other type are refused.
async fn unknown_modules_and_wrong_types(fx: &Fixture) {
    let name = Fixture::name("never-created");
    let rt = &fx.backend.lifecycle;
    let not_found = |r: Result<(), RuntimeError>| matches!(r, Err(RuntimeError::NotFound { .. }));
    assert!(not_found(rt.start(&name).await));
    assert!(not_found(rt.stop(&name, STOP_TIMEOUT).await));
    assert!(not_found(rt.remove(&name).await));
    assert!(not_found(rt.state(&name).await.map(drop)));
    assert!(not_found(fx.backend.processes.pids(&name).await.map(drop)));
    assert!(not_found(
        fx.backend
            .logs
            .logs(&name, &LogOptions::default())
            .await
            .map(drop)
    ));
    let wrong = fx.module("wrong-type", fx.foreign_settings());
    assert!(matches!(
        rt.create(&wrong).await,
        Err(RuntimeError::InvalidConfig { .. })
    ));
}

fn contract(fx: &Fixture) -> Vec<(&'static str, BoxFuture<'_, ()>)> {
    vec![
        ("lifecycle", lifecycle(fx).boxed()),
        (
            "crash_reports_exit_code",
            crash_reports_exit_code(fx).boxed(),
        ),
        (
            "stop_kills_after_timeout",
            stop_kills_after_timeout(fx).boxed(),
        ),
        ("logs_tail_since_follow", logs_tail_since_follow(fx).boxed()),
        (
            "missing_image_or_program",
            missing_image_or_program(fx).boxed(),
        ),
        (
            "unknown_modules_and_wrong_types",
            unknown_modules_and_wrong_types(fx).boxed(),
        ),
    ]
}

/// Runs the cases concurrently; returns the names of those that panicked.
async fn run_cases(cases: Vec<(&'static str, BoxFuture<'_, ()>)>) -> Vec<&'static str> {
    let results = join_all(cases.into_iter().map(|(name, case)| async move {
        let failed = AssertUnwindSafe(case).catch_unwind().await.is_err();
        (name, failed)
    }))
    .await;
    results
        .into_iter()
        .filter(|(_, failed)| *failed)
        .map(|(name, _)| name)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Process backend.

/// `settings.workingDir` is the module's working directory.
async fn process_working_dir(fx: &Fixture) {
    let dir = fx.dir.path().join("wd");
    std::fs::create_dir(&dir).expect("mkdir");
    let settings = ModuleSettings::Process(ProcessSettings {
        command: vec!["/bin/sh".into(), "-c".into(), "pwd".into()],
        working_dir: Some(dir.clone()),
    });
    let config = fx.module("working-dir", settings);
    let absent = ModuleSettings::Process(ProcessSettings {
        command: vec!["/bin/sh".into(), "-c".into(), "pwd".into()],
        working_dir: Some(dir.join("absent")),
    });
    let bad = fx.module("working-dir-absent", absent);
    let refused = fx.backend.lifecycle.create(&bad).await;
    assert!(
        matches!(refused, Err(RuntimeError::InvalidConfig { .. })),
        "{refused:?}"
    );
    let mut events = fx.backend.events.subscribe();
    fx.backend.lifecycle.create(&config).await.expect("create");
    fx.backend
        .lifecycle
        .start(&config.name)
        .await
        .expect("start");
    fx.wait_event(&mut events, &config.name, |e| {
        matches!(e.kind, RuntimeEventKind::Exited { .. })
    })
    .await;
    let logs = fx.logs(&config.name, LogOptions::default()).await;
    assert_eq!(
        logs.iter().map(text).collect::<Vec<_>>(),
        [dir.display().to_string()]
    );
}

/// A run left by a previous runtime on the same data dir is killed by the next `open`.
async fn process_orphans_are_killed_on_open(fx: &Fixture) {
    let data = fx.dir.path().join("orphans");
    let first = ProcessRuntime::open(&data, LogRotation::default()).expect("open");
    let config = fx.shell_module("orphan", "sleep 1000 & wait");
    let first = Backend::process(first);
    let mut events = first.events.subscribe();
    first.lifecycle.create(&config).await.expect("create");
    first.lifecycle.start(&config.name).await.expect("start");
    let pid = first
        .lifecycle
        .state(&config.name)
        .await
        .expect("state")
        .pid
        .expect("pid");
    drop(first);

    let second = ProcessRuntime::open(&data, LogRotation::default()).expect("reopen");
    let second = Backend::process(second);
    fx.wait_event(&mut events, &config.name, |e| {
        matches!(e.kind, RuntimeEventKind::Exited { .. })
    })
    .await;
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "orphan {pid} still exists"
    );
    let state = second.lifecycle.state(&config.name).await.expect("state");
    assert_eq!(
        (state.status, state.exit_code),
        (RuntimeStatus::Failed, Some(137))
    );
    assert!(state.description.is_some_and(|d| d.contains("previous")));
    second
        .lifecycle
        .start(&config.name)
        .await
        .expect("start again");
    second.lifecycle.remove(&config.name).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_runtime_meets_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime =
        ProcessRuntime::open(dir.path().join("data"), LogRotation::default()).expect("open");
    let fx = Fixture::new(Backend::process(runtime), Flavor::Process, run_id(), dir);
    let mut cases = contract(&fx);
    cases.push(("process_working_dir", process_working_dir(&fx).boxed()));
    cases.push((
        "process_orphans_are_killed_on_open",
        process_orphans_are_killed_on_open(&fx).boxed(),
    ));
    let failed = run_cases(cases).await;
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

// ---------------------------------------------------------------------------------------------
// Docker backend.

/// Containers reach the host (where the edge hub listens) under the configured hostname.
async fn docker_host_alias_reaches_the_host(fx: &Fixture, gateway: Option<IpAddr>) {
    let gateway = gateway.expect("the Spoke network has a gateway");
    let listener = tokio::net::TcpListener::bind((gateway, 0))
        .await
        .expect("listen on gateway");
    let port = listener.local_addr().expect("addr").port();
    let Flavor::Docker { image } = &fx.flavor else {
        unreachable!()
    };
    let script = format!("exec 3<>/dev/tcp/{HUB_ALIAS}/{port} && echo hello-from-module >&3");
    let settings = ModuleSettings::Docker(DockerSettings {
        image: image.clone(),
        create_options: json!({ "Cmd": ["/bin/bash", "-c", script] }),
    });
    let config = fx.module("host-alias", settings);
    fx.backend.lifecycle.create(&config).await.expect("create");
    fx.backend
        .lifecycle
        .start(&config.name)
        .await
        .expect("start");
    let (socket, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("module connects in time")
        .expect("accept");
    let mut line = String::new();
    tokio::io::BufReader::new(socket)
        .read_line(&mut line)
        .await
        .expect("read");
    assert_eq!(line.trim_end(), "hello-from-module");
}

/// `createOptions` reach Docker: its env and binds are used, its labels kept beside ours.
async fn docker_create_options_pass_through(fx: &Fixture, docker: &Docker) {
    let shared = fx.dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::write(shared.join("marker"), "from-the-host\n").expect("write");
    let Flavor::Docker { image } = &fx.flavor else {
        unreachable!()
    };
    let settings = ModuleSettings::Docker(DockerSettings {
        image: image.clone(),
        create_options: json!({
            "Cmd": ["/bin/sh", "-c", "echo \"CO=$FROM_CREATE_OPTIONS FOO=$FOO\"; cat /shared/marker"],
            "Env": ["FROM_CREATE_OPTIONS=yes", "FOO=overridden-by-module-env"],
            "Labels": {"spoke.test.from-create-options": "1"},
            "HostConfig": {"Binds": [format!("{}:/shared:ro", shared.display())]}
        }),
    });
    let config = fx.module("create-options", settings);
    let mut events = fx.backend.events.subscribe();
    let id = fx.backend.lifecycle.create(&config).await.expect("create");
    fx.backend
        .lifecycle
        .start(&config.name)
        .await
        .expect("start");
    fx.wait_event(&mut events, &config.name, |e| {
        matches!(e.kind, RuntimeEventKind::Exited { .. })
    })
    .await;
    let logs: Vec<String> = fx
        .logs(&config.name, LogOptions::default())
        .await
        .iter()
        .map(text)
        .collect();
    assert_eq!(logs, ["CO=yes FOO=bar", "from-the-host"]);
    let inspect = docker
        .inspect_container(id.as_str(), None)
        .await
        .expect("inspect");
    let labels = inspect.config.and_then(|c| c.labels).expect("labels");
    assert_eq!(labels["spoke.test.from-create-options"], "1");
    assert_eq!(labels["spoke.test.case"], "create-options");
    assert_eq!(labels["net.azure-devices.edge.owner"], "Spoke.Edge");
    assert_eq!(labels["net.azure-devices.edge.original-image"], *image);
}

/// Containers of another instance are invisible and untouched, even under our name prefix.
async fn docker_foreign_containers_are_invisible(fx: &Fixture, docker: &Docker, foreign: &str) {
    let Flavor::Docker { image } = &fx.flavor else {
        unreachable!()
    };
    let options = CreateContainerOptions {
        name: Some(foreign.to_owned()),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(vec!["/bin/true".into()]),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .expect("create foreign container");
    let name = Fixture::name("foreign");
    let rt = &fx.backend.lifecycle;
    assert!(matches!(
        rt.state(&name).await,
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(matches!(
        rt.remove(&name).await,
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(
        !rt.list()
            .await
            .expect("list")
            .iter()
            .any(|s| s.name == name)
    );
    docker
        .inspect_container(foreign, None)
        .await
        .expect("foreign container untouched");
}

/// `exists` and a pull that cannot succeed (no registry listens on 127.0.0.1:1).
async fn docker_image_store(fx: &Fixture) {
    let Flavor::Docker { image } = &fx.flavor else {
        unreachable!()
    };
    let images = fx
        .backend
        .images
        .as_ref()
        .expect("docker has an image store");
    assert!(images.exists(image).await.expect("exists"));
    assert!(
        !images
            .exists(&format!("{image}-absent"))
            .await
            .expect("exists")
    );
    let pull = images.pull("127.0.0.1:1/spoke-test/absent:1", None).await;
    assert!(
        matches!(pull, Err(RuntimeError::ImagePull { .. })),
        "{pull:?}"
    );
}

async fn docker_cleanup(
    docker: &Docker,
    instance: &str,
    foreign: &str,
    network: &str,
    image: &str,
) {
    let filters = [(
        "label".to_owned(),
        vec![format!("{INSTANCE_LABEL}={instance}")],
    )]
    .into();
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let mut containers: Vec<String> = docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    containers.push(foreign.to_owned());
    for container in containers {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let _ = docker.remove_container(&container, Some(options)).await;
    }
    let _ = docker.remove_network(network).await;
    let options = RemoveImageOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker.remove_image(image, Some(options), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_runtime_meets_the_contract() {
    if !Path::new(DOCKER_SOCKET).exists() {
        eprintln!("skipping the Docker runtime contract: no Docker socket at {DOCKER_SOCKET}");
        return;
    }
    let run = run_id();
    let docker = Docker::connect_with_socket(DOCKER_SOCKET, 120, bollard::API_DEFAULT_VERSION)
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("docker answers");
    let repo = "spoke-test/shell";
    let image = format!("{repo}:{run}");
    let instance = format!("spoke-test-{run}");
    let prefix = format!("{instance}-");
    let foreign = format!("{prefix}foreign");
    runtime_support::image::import_shell_image(&docker, repo, &run).await;
    let config = DockerConfig {
        socket: DOCKER_SOCKET.into(),
        network: instance.clone(),
        instance: instance.clone(),
        container_prefix: prefix,
        host_aliases: vec![HUB_ALIAS.to_owned()],
    };
    let runtime = DockerRuntime::connect(config).await.expect("connect");
    let gateway = runtime.gateway_ip();
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = Fixture::new(
        Backend::docker(runtime),
        Flavor::Docker {
            image: image.clone(),
        },
        run,
        dir,
    );
    let mut cases = contract(&fx);
    cases.push((
        "docker_host_alias_reaches_the_host",
        docker_host_alias_reaches_the_host(&fx, gateway).boxed(),
    ));
    cases.push((
        "docker_create_options_pass_through",
        docker_create_options_pass_through(&fx, &docker).boxed(),
    ));
    cases.push((
        "docker_foreign_containers_are_invisible",
        docker_foreign_containers_are_invisible(&fx, &docker, &foreign).boxed(),
    ));
    cases.push(("docker_image_store", docker_image_store(&fx).boxed()));
    let failed = run_cases(cases).await;
    drop(fx);
    docker_cleanup(&docker, &instance, &foreign, &instance, &image).await;
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}
