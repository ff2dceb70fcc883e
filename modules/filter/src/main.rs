//! `filter`: the sample module's binary (see the library docs).
//! Exit codes: 0 after a shutdown signal, 1 on an error (invalid options, no connection).

use clap::Parser;
use spoke_module_util::ConnectArgs;

/// Forwards readings from input `input1` whose machine temperature exceeds the threshold to
/// output `output1`, marked `MessageType=Alert`.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Threshold in °C until the twin's `TemperatureThreshold` (or `threshold`) sets one.
    #[arg(
        long,
        env = "TemperatureThreshold",
        default_value_t = filter::DEFAULT_THRESHOLD,
        allow_negative_numbers = true
    )]
    temperature_threshold: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    spoke_module_util::init_tracing();
    anyhow::ensure!(
        cli.temperature_threshold.is_finite(),
        "the temperature threshold must be a finite number"
    );
    let shutdown = spoke_module_util::shutdown_signal()?;
    let config = cli.connect.client_config().await?;
    if let Some(filter) = filter::run(config, cli.temperature_threshold, shutdown).await? {
        tracing::info!(
            received = filter.received(),
            forwarded = filter.forwarded(),
            "stopped"
        );
    }
    Ok(())
}
