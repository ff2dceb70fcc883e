//! `spoke`: one command-line tool for Spoke Hub and Spoke Edge.
//!
//! Exit codes: 0 on success, 1 when the command failed (the hub or the edge daemon refused, or
//! could not be reached; `spoke edge check` found a failure), 2 for invalid usage.

mod client;
mod edge;
mod hub;

use clap::{Parser, Subcommand};

/// Spoke command-line tool.
#[derive(Debug, Parser)]
#[command(name = "spoke", version)]
struct Cli {
    /// Hub service connection string (HostName=...;SharedAccessKeyName=...;SharedAccessKey=...).
    #[arg(
        long,
        env = "SPOKE_HUB_CONNECTION_STRING",
        global = true,
        hide_env_values = true
    )]
    hub_connection_string: Option<String>,
    /// CA certificate (PEM) that the hub's TLS certificate chains to.
    #[arg(long, env = "SPOKE_CA_FILE", global = true)]
    ca_file: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Hub commands at the top level, edge commands under `spoke edge`.
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Hub(hub::Command),
    /// Manage the local edge device through the spoke-edge management socket.
    Edge(edge::EdgeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spoke: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let command = match cli.command {
            Command::Edge(args) => return edge::run(args).await,
            Command::Hub(command) => command,
        };
        let Some(cs) = cli.hub_connection_string.as_deref() else {
            anyhow::bail!(
                "no hub: pass --hub-connection-string or set SPOKE_HUB_CONNECTION_STRING"
            );
        };
        let client = client::HubClient::new(cs, cli.ca_file.as_deref())?;
        hub::run(&client, command).await?;
        Ok(std::process::ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spoke: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
