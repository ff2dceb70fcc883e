//! `spoke`: one command-line tool for Spoke Hub (and, later, Spoke Edge).
//!
//! Exit codes: 0 on success, 1 when the command failed (the hub refused, or could not be
//! reached), 2 for invalid usage.

mod client;
mod hub;

use clap::Parser;

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
    command: hub::Command,
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
        let Some(cs) = cli.hub_connection_string.as_deref() else {
            anyhow::bail!(
                "no hub: pass --hub-connection-string or set SPOKE_HUB_CONNECTION_STRING"
            );
        };
        let client = client::HubClient::new(cs, cli.ca_file.as_deref())?;
        hub::run(&client, cli.command).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spoke: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
