//! `spoke-edge --config FILE`: the Spoke Edge daemon.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM, Ctrl-C); 1 when start-up fails (invalid
//! configuration, unusable data directory, no container engine with `[runtime] kind =
//! "docker"`), with a message naming the cause; 2 for invalid command-line usage.

use std::path::PathBuf;

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

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
    init_logging();
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

/// Logs to stderr at the levels `RUST_LOG` names (`info` by default). The daemon takes
/// `target=level` directives (`info,spoke_edge::agent=debug`), not the span and field filters
/// of a regex-based filter, which would add a regex engine to a binary kept small for devices.
fn init_logging() {
    let default = Targets::new().with_default(LevelFilter::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => spec.parse().unwrap_or_else(|error| {
            eprintln!("RUST_LOG={spec:?} ignored, logging at info: {error}");
            default
        }),
        Err(_) => default,
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}
