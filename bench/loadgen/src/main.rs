//! `spoke-loadgen`: the load tool of `bench/run.sh`, which drives Spoke Hub and a reference
//! broker (mosquitto) with the same traffic in the same run.
//!
//! Modes: `provision` (create devices on the hub over REST), `ingest` (QoS 1 telemetry from
//! many connections: throughput and latency), `idle` (many idle TLS connections: the server's
//! memory per connection), `relay` (QoS 1 publish → subscribe through the server: delivered
//! messages per second and latency). Each prints one JSON report on stdout and progress on stderr, and
//! ends by itself (durations and timeouts bound every phase). Only loopback addresses are
//! accepted as targets.
//!
//! Exit codes: 0 when the run completed (its errors are counted in the report), 1 when it could
//! not run (bad options, unreadable files, devices not provisioned).

// Protocol prose says QoS, PUBACK, VmRSS, which doc_markdown takes for code.
#![allow(clippy::doc_markdown)]

mod client;
mod fleet;
mod http;
mod identity;
mod idle;
mod ingest;
mod proc;
mod provision;
mod relay;
mod stats;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MQTT/TLS load generator for Spoke Hub benchmarks.
#[derive(Debug, Parser)]
#[command(name = "spoke-loadgen", version)]
struct Cli {
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Create devices on Spoke Hub over REST with keys derived from a seed.
    Provision(provision::ProvisionArgs),
    /// Publish QoS 1 telemetry from many connections; report msgs/s and PUBACK latency.
    Ingest(ingest::IngestArgs),
    /// Hold many idle connections; report how many are up and the server's KB per connection.
    Idle(idle::IdleArgs),
    /// Relay QoS 1 messages from publishers to one subscriber; report delivered msgs/s and
    /// publish→delivery latency.
    Relay(relay::RelayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.workers.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spoke-loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(async {
        match cli.mode {
            Mode::Provision(args) => provision::run(args).await,
            Mode::Ingest(args) => ingest::run(args).await,
            Mode::Idle(args) => idle::run(args).await,
            Mode::Relay(args) => relay::run(args).await,
        }
    });
    match report {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spoke-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
