//! `simulated-temperature-sensor`: the sample module's binary (see the library docs).
//! Exit codes: 0 after a shutdown signal, 1 on an error (invalid options, no connection).

use clap::Parser;
use simulated_temperature_sensor::{MessageCount, Options, SimulatorParameters};
use spoke_module_util::ConnectArgs;

/// Sends simulated machine temperature readings on output `temperatureOutput`.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Number of messages to send; negative for unlimited.
    #[arg(long, env = "MessageCount", default_value_t = -1, allow_negative_numbers = true)]
    message_count: i64,
    /// Machine temperature at the start and after a reset, °C.
    #[arg(long, env = "machineTempMin", default_value_t = 21.0)]
    machine_temp_min: f64,
    /// Machine temperature past which it stops climbing, °C.
    #[arg(long, env = "machineTempMax", default_value_t = 100.0)]
    machine_temp_max: f64,
    /// Pressure at the minimum temperature, psi.
    #[arg(long, env = "machinePressureMin", default_value_t = 1.0)]
    machine_pressure_min: f64,
    /// Pressure at the maximum temperature, psi.
    #[arg(long, env = "machinePressureMax", default_value_t = 10.0)]
    machine_pressure_max: f64,
    /// Mean ambient temperature, °C.
    #[arg(
        long,
        env = "ambientTemp",
        default_value_t = 21.0,
        allow_negative_numbers = true
    )]
    ambient_temp: f64,
    /// Mean ambient humidity, %.
    #[arg(long, env = "ambientHumidity", default_value_t = 25)]
    ambient_humidity: i32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    spoke_module_util::init_tracing();
    let options = Options {
        message_count: MessageCount::from_signed(cli.message_count),
        parameters: SimulatorParameters {
            machine_temp_min: cli.machine_temp_min,
            machine_temp_max: cli.machine_temp_max,
            machine_pressure_min: cli.machine_pressure_min,
            machine_pressure_max: cli.machine_pressure_max,
            ambient_temp: cli.ambient_temp,
            ambient_humidity: cli.ambient_humidity,
        },
    };
    options.parameters.validate()?;
    let shutdown = spoke_module_util::shutdown_signal()?;
    let config = cli.connect.client_config().await?;
    let sent = simulated_temperature_sensor::run(config, options, shutdown).await?;
    tracing::info!(sent, "stopped");
    Ok(())
}
