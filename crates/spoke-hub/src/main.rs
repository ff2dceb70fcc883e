//! `spoke-hub`: a self-hosted IoT hub that Azure IoT SDK devices and back-ends use unchanged.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM or Ctrl-C), 1 when start-up fails (bad flags,
//! unusable data directory, a port that cannot be bound), 2 for invalid command-line usage.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use spoke_hub::HubConfig;

/// Spoke Hub: device registry, twins, methods, C2D and telemetry over the Azure IoT Hub protocols.
#[derive(Debug, Parser)]
#[command(name = "spoke-hub", version)]
struct Args {
    /// Data directory (created and initialized on first start).
    #[arg(long)]
    data_dir: PathBuf,
    /// Host name devices use to reach the hub; covered by the server certificate.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// MQTT over TLS port.
    #[arg(long, default_value_t = 8883)]
    mqtt_port: u16,
    /// HTTPS port (REST API and MQTT over WebSocket at /$iothub/websocket).
    #[arg(long, default_value_t = 443)]
    https_port: u16,
    /// How long telemetry is kept in the built-in events log, e.g. "7d", "12h".
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    events_retention: Duration,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = HubConfig {
        data_dir: args.data_dir,
        hostname: args.hostname,
        bind: args.bind,
        mqtt_port: args.mqtt_port,
        https_port: args.https_port,
        events_retention: args.events_retention,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spoke-hub: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(spoke_hub::run(config, shutdown_signal())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spoke-hub: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested");
}
