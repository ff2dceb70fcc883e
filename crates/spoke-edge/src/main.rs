//! `spoke-edge --config FILE`: the Spoke Edge daemon.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM, Ctrl-C); 1 when start-up fails (invalid
//! configuration, unusable data directory, no container engine with `[runtime] kind =
//! "docker"`), with a message naming the cause; 2 for invalid command-line usage.

use std::path::PathBuf;

use clap::Parser;

/// Spoke Edge: runs and supervises modules from a deployment manifest.
#[derive(Debug, Parser)]
#[command(name = "spoke-edge", version)]
struct Args {
    /// Configuration file (TOML; Azure IoT Edge's config.toml keys work).
    #[arg(long, default_value = "/etc/spoke/config.toml")]
    config: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = (|| -> anyhow::Result<()> {
        let config = spoke_edge::config::EdgeConfig::load(&args.config)?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(spoke_edge::daemon::run(config, shutdown_signal()))?;
        Ok(())
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spoke-edge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown requested");
}
