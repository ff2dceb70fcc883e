//! Edge-side commands (ARCHITECTURE.md "spoke (edge side)"): `spoke edge list | logs MODULE
//! [--tail N] [--since T] [-f] | restart MODULE | check | status`, talking to the edge daemon's
//! management socket (`spoke_edge::management`), like `iotedge` (azure-iot-edge-contracts.md
//! §9). The socket is `--socket PATH`, or `<data_dir>/mgmt.sock` of the configuration file
//! (`--config FILE`, default [`DEFAULT_CONFIG`]).
//!
//! Exit codes: 0 on success; 1 when the daemon refused or could not be reached, or when
//! `check` found a failure (warnings alone exit 0, as in iotedge).

mod check;
mod client;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures_util::StreamExt as _;
use spoke_edge::config::EdgeConfig;
use spoke_edge::management::api::{parse_since, parse_tail};
use spoke_edge::management::wire::{ModuleDetails, StatusResponse};
use spoke_edge::management::{ModuleStatus, management_socket};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncWriteExt as _;

use self::client::{LogQuery, ManagementClient};

/// The configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/spoke/config.toml";

/// `spoke edge ...`: where the daemon is, and what to do.
#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// The spoke-edge configuration file; the management socket is `<data_dir>/mgmt.sock`.
    #[arg(long, global = true, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// The management socket, instead of the one the configuration names.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Edge commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the modules and their status.
    List,
    /// Print a module's logs.
    Logs {
        /// The module.
        module: String,
        /// Only the last N lines (a number, or `all`).
        #[arg(long, value_name = "N", value_parser = tail_arg)]
        tail: Option<String>,
        /// Only lines since T: a duration back from now (`90m`, `1d`), an RFC 3339 time, or
        /// seconds since the Unix epoch.
        #[arg(long, value_name = "T", value_parser = since_arg)]
        since: Option<String>,
        /// Keep printing new lines until the module exits (or Ctrl-C).
        #[arg(short, long)]
        follow: bool,
    },
    /// Restart a module.
    Restart {
        /// The module.
        module: String,
    },
    /// Check the device's configuration, connectivity and certificates.
    Check,
    /// Print the daemon's status: device, hub connection, deployment, modules.
    Status,
}

fn tail_arg(value: &str) -> Result<String, String> {
    parse_tail(value).map(|_| value.to_owned())
}

fn since_arg(value: &str) -> Result<String, String> {
    parse_since(value, OffsetDateTime::now_utc()).map(|_| value.to_owned())
}

/// Runs an edge command.
pub async fn run(args: EdgeArgs) -> anyhow::Result<ExitCode> {
    let connect = || ManagementClient::new(&socket_path(&args.config, args.socket.as_deref())?);
    match args.command {
        Command::Check => return Ok(check(&args.config, args.socket.as_deref()).await),
        Command::List => {
            let modules = connect()?.list().await?;
            print!("{}", format_table(&modules, OffsetDateTime::now_utc()));
        }
        Command::Logs {
            module,
            tail,
            since,
            follow,
        } => {
            let query = LogQuery {
                tail,
                since,
                follow,
            };
            let mut body = connect()?.logs(&module, &query).await?.bytes_stream();
            let mut stdout = tokio::io::stdout();
            while let Some(chunk) = body.next().await {
                stdout
                    .write_all(&chunk.context("the log stream broke off")?)
                    .await?;
                stdout.flush().await?;
            }
        }
        Command::Restart { module } => {
            connect()?.restart(&module).await?;
            println!("{module} restarted");
        }
        Command::Status => print!("{}", format_status(&connect()?.status().await?)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `check`: prints each check and a summary; fails when a check failed.
async fn check(config: &Path, socket: Option<&Path>) -> ExitCode {
    let checks = check::run_checks(config, socket, OffsetDateTime::now_utc()).await;
    for check in &checks {
        println!("{}", check.format());
    }
    println!("{}", check::summary(&checks));
    if check::succeeded(&checks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The management socket: `socket` if given, else the one `config` names.
fn socket_path(config: &Path, socket: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(socket) = socket {
        return Ok(socket.to_owned());
    }
    let config = EdgeConfig::load(config)
        .context("cannot find the management socket: pass --config FILE or --socket PATH")?;
    Ok(management_socket(&config))
}

/// `list` output: `NAME STATUS DESCRIPTION CONFIG` in aligned columns, like `iotedge list`.
pub fn format_table(modules: &[ModuleDetails], now: OffsetDateTime) -> String {
    let rows: Vec<[String; 4]> =
        std::iter::once(["NAME", "STATUS", "DESCRIPTION", "CONFIG"].map(String::from))
            .chain(modules.iter().map(|m| {
                [
                    m.name.clone(),
                    m.status.runtime_status.status.as_str().to_owned(),
                    describe(m, now),
                    m.config_summary(),
                ]
            }))
            .collect();
    let mut widths = [0; 3];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (cell, width) in row.iter().zip(widths) {
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 3));
        }
        out.push_str(&row[3]);
        out.push('\n');
    }
    out
}

/// The DESCRIPTION column: `Up 5 minutes` while running, else the daemon's description, else
/// how the last run ended.
pub fn describe(module: &ModuleDetails, now: OffsetDateTime) -> String {
    let status = &module.status;
    let since = |time: Option<&String>| {
        time.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .map(|t| humanize((now - t).try_into().unwrap_or(Duration::ZERO)))
    };
    if status.runtime_status.status == ModuleStatus::Running {
        return since(status.start_time.as_ref())
            .map_or_else(|| "Up".to_owned(), |up| format!("Up {up}"));
    }
    if let Some(description) = status
        .runtime_status
        .description
        .as_ref()
        .filter(|d| !d.is_empty())
    {
        return description.clone();
    }
    match &status.exit_status {
        Some(exit) => match since(exit.exit_time.as_ref()) {
            Some(ago) => format!("Exited ({}) {ago} ago", exit.status_code),
            None => format!("Exited ({})", exit.status_code),
        },
        None => "-".to_owned(),
    }
}

/// A duration in the largest whole unit, like `docker ps`: `12 seconds`, `1 minute`, `3 days`.
pub fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (count, unit) = match secs {
        0 => return "less than a second".to_owned(),
        1..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// `status` output, one `key: value` per line.
pub fn format_status(status: &StatusResponse) -> String {
    let upstream = if status.upstream_connected {
        "connected"
    } else {
        "disconnected"
    };
    let deployment = status.deployment.as_ref().map_or_else(
        || "none received".to_owned(),
        |d| {
            if d.description.is_empty() {
                format!("version {}, status {}", d.version, d.code)
            } else {
                format!(
                    "version {}, status {} ({})",
                    d.version, d.code, d.description
                )
            }
        },
    );
    let m = &status.modules;
    format!(
        "device:      {}\nhub:         {} ({upstream})\ndeployment:  {deployment}\n\
         modules:     {} ({} running, {} stopped, {} failed, {} backoff, {} other)\n\
         uptime:      {}\nversion:     {}\n",
        status.device_id,
        status.hub_host_name,
        m.total,
        m.running,
        m.stopped,
        m.failed,
        m.backoff,
        m.other,
        humanize(Duration::from_secs(status.uptime_secs)),
        status.version
    )
}

#[cfg(test)]
mod tests;
