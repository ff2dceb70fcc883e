//! Tests of the edge commands: argument parsing, the `list` and `status` formats, and the
//! management client against a real `ManagementServer` with a test double of the daemon.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use clap::Parser as _;
use futures_util::stream;
use serde_json::json;
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_edge::management::wire::{DeploymentDetails, ModuleCounts};
use spoke_edge::management::{
    ControlError, DaemonStatus, ManagementServer, ModuleControl, ModuleInfo,
};
use spoke_edge::runtime::{
    DockerSettings, LogEntry, LogOptions, LogSource, LogStream, ModuleSettings, ProcessSettings,
};
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

/// `spoke edge ...` parsed on its own.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    edge: EdgeArgs,
}

fn parse(args: &[&str]) -> Result<EdgeArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("edge").chain(args.iter().copied())).map(|cli| cli.edge)
}

fn module(name: &str, status: ModuleStatus) -> ModuleInfo {
    ModuleInfo {
        name: ModuleId::parse(name).expect("id"),
        instance: None,
        status,
        description: None,
        exit_code: None,
        start_time: Some(datetime!(2026-05-01 11:55:00 UTC)),
        exit_time: None,
        settings: ModuleSettings::Docker(DockerSettings {
            image: format!("registry/{name}:1.0"),
            create_options: json!({}),
        }),
        version: None,
    }
}

#[test]
fn arguments() {
    let args = parse(&["logs", "filter", "--tail", "all", "--since", "90m", "-f"]).expect("logs");
    assert_eq!(args.config, Path::new(DEFAULT_CONFIG));
    assert!(matches!(
        args.command,
        Command::Logs { ref module, ref tail, ref since, follow: true }
            if module == "filter" && tail.as_deref() == Some("all") && since.as_deref() == Some("90m")
    ));
    let args = parse(&[
        "--config",
        "/tmp/c.toml",
        "restart",
        "$edgeHub",
        "--socket",
        "/s",
    ])
    .expect("restart");
    assert_eq!(args.config, Path::new("/tmp/c.toml"));
    assert_eq!(args.socket.as_deref(), Some(Path::new("/s")));
    assert!(matches!(args.command, Command::Restart { ref module } if module == "$edgeHub"));
    for bad in [
        &["logs", "m", "--tail", "ten"][..],
        &["logs", "m", "--since", "yesterday"],
        &["restart"],
        &["frobnicate"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn durations_read_like_docker_ps() {
    assert_eq!(humanize(Duration::ZERO), "less than a second");
    assert_eq!(humanize(Duration::from_secs(1)), "1 second");
    assert_eq!(humanize(Duration::from_secs(59)), "59 seconds");
    assert_eq!(humanize(Duration::from_secs(61)), "1 minute");
    assert_eq!(humanize(Duration::from_hours(2)), "2 hours");
    assert_eq!(humanize(Duration::from_secs(3 * 86_400 + 5)), "3 days");
}

#[test]
fn list_table_is_aligned() {
    let mut failed = module("filter", ModuleStatus::Failed);
    failed.exit_code = Some(2);
    failed.exit_time = Some(datetime!(2026-05-01 11:00:00 UTC));
    failed.settings = ModuleSettings::Process(ProcessSettings {
        command: vec!["/bin/filter".into(), "-v".into()],
        working_dir: None,
    });
    let mut backoff = module("sensor", ModuleStatus::Backoff);
    backoff.description = Some("restarting in 40 s".into());
    let modules: Vec<ModuleDetails> = [module("$edgeHub", ModuleStatus::Running), failed, backoff]
        .iter()
        .map(ModuleDetails::from)
        .collect();
    assert_eq!(
        format_table(&modules, NOW),
        "\
NAME       STATUS    DESCRIPTION             CONFIG
$edgeHub   running   Up 5 minutes            registry/$edgeHub:1.0
filter     failed    Exited (2) 1 hour ago   /bin/filter -v
sensor     backoff   restarting in 40 s      registry/sensor:1.0
"
    );
}

#[test]
fn status_lines() {
    let status = StatusResponse {
        device_id: "edge1".into(),
        hub_host_name: "hub.local".into(),
        upstream_connected: false,
        deployment: Some(DeploymentDetails {
            version: 4,
            code: 417,
            description: "the device's deployment configuration is not set".into(),
        }),
        uptime_secs: 90,
        version: "0.1.0".into(),
        modules: ModuleCounts {
            total: 2,
            running: 1,
            failed: 1,
            ..ModuleCounts::default()
        },
    };
    assert_eq!(
        format_status(&status),
        "\
device:      edge1
hub:         hub.local (disconnected)
deployment:  version 4, status 417 (the device's deployment configuration is not set)
modules:     2 (1 running, 0 stopped, 1 failed, 0 backoff, 0 other)
uptime:      1 minute
version:     0.1.0
"
    );
}

/// A daemon with two modules, one log history, and a record of restarts.
struct FakeDaemon {
    restarted: Mutex<Vec<ModuleId>>,
}

#[async_trait]
impl ModuleControl for FakeDaemon {
    async fn list(&self) -> Result<Vec<ModuleInfo>, ControlError> {
        Ok(vec![
            module("$edgeHub", ModuleStatus::Running),
            module("filter", ModuleStatus::Stopped),
        ])
    }

    async fn logs(&self, name: &ModuleId, options: &LogOptions) -> Result<LogStream, ControlError> {
        if name.as_str() != "filter" {
            return Err(ControlError::NotFound { name: name.clone() });
        }
        let lines = ["a", "b", "c"];
        let skip = options.tail.map_or(0, |t| lines.len().saturating_sub(t));
        let entries: Vec<_> = lines[skip..]
            .iter()
            .map(|line| {
                Ok(LogEntry {
                    source: LogSource::Stdout,
                    timestamp: NOW,
                    line: Bytes::from(*line),
                })
            })
            .collect();
        Ok(Box::pin(stream::iter(entries)))
    }

    async fn restart(&self, name: &ModuleId) -> Result<(), ControlError> {
        self.restarted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name.clone());
        Ok(())
    }

    async fn status(&self) -> Result<DaemonStatus, ControlError> {
        Ok(DaemonStatus {
            device_id: DeviceId::parse("edge1").expect("id"),
            hub_hostname: "hub.local".into(),
            upstream_connected: true,
            deployment: None,
            uptime: Duration::from_secs(5),
        })
    }
}

#[tokio::test]
async fn client_talks_to_a_real_management_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Arc::new(FakeDaemon {
        restarted: Mutex::new(Vec::new()),
    });
    let server =
        ManagementServer::bind(&dir.path().join("mgmt.sock"), daemon.clone()).expect("bind");
    let client = ManagementClient::new(server.path()).expect("client");

    let modules = client.list().await.expect("list");
    let table = format_table(&modules, NOW);
    assert!(
        table.contains("$edgeHub   running   Up 5 minutes"),
        "{table}"
    );

    let query = LogQuery {
        tail: Some("2".into()),
        ..LogQuery::default()
    };
    let logs = client.logs("filter", &query).await.expect("logs");
    assert_eq!(logs.text().await.expect("text"), "b\nc\n");

    let err = client
        .logs("ghost", &LogQuery::default())
        .await
        .expect_err("unknown module");
    assert!(
        err.to_string().contains("module ghost does not exist"),
        "{err}"
    );
    assert!(err.to_string().contains("404"), "{err}");

    client.restart("$edgeHub").await.expect("restart");
    assert_eq!(
        daemon
            .restarted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_slice(),
        [ModuleId::parse("$edgeHub").expect("id")]
    );

    let status = client.status().await.expect("status");
    assert_eq!((status.modules.total, status.modules.running), (2, 1));
    assert!(format_status(&status).contains("hub:         hub.local (connected)"));

    drop(server);
    let err = client.list().await.expect_err("daemon gone");
    assert!(
        format!("{err:#}").contains("is spoke-edge running?"),
        "{err:#}"
    );
}

#[test]
fn the_socket_comes_from_the_config_or_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"e\"\ndata_dir = \"{}\"\n[provisioning]\nsource = \"manual\"\n\
             connection_string = \"HostName=h;DeviceId=d;SharedAccessKey=AAAA\"\n",
            dir.path().display()
        ),
    )
    .expect("config");
    assert_eq!(
        socket_path(&config, None).expect("from config"),
        dir.path().join("mgmt.sock")
    );
    assert_eq!(
        socket_path(Path::new("/nonexistent"), Some(Path::new("/run/s.sock"))).expect("flag"),
        Path::new("/run/s.sock")
    );
    let err = socket_path(Path::new("/nonexistent/config.toml"), None).expect_err("no config");
    assert!(format!("{err:#}").contains("--socket PATH"), "{err:#}");
}
