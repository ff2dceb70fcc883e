//! Spoke Edge's simulated temperature sensor, the counterpart of Azure IoT Edge's
//! `SimulatedTemperatureSensor`: every `SendInterval` seconds (desired property, default 5)
//! while `SendData` (desired property, default true) it sends on output `temperatureOutput`
//!
//! ```json
//! {"machine":{"temperature":..,"pressure":..},"ambient":{"temperature":..,"humidity":..},"timeCreated":"<RFC 3339 UTC>"}
//! ```
//!
//! with application properties `sequenceNumber` and `batchId`, stops sending after
//! `MessageCount` messages (unlimited by default or when negative), reports `SendData` and
//! `SendInterval` back, and resets the machine temperature on the `reset` direct method or a
//! `{"command":"reset"}` message on input `control`.
//!
//! Layers: [`simulation`] (the machine), [`settings`] and [`control`] (what the twin and the
//! control input say), [`sensor`] (the synchronous core), and [`run`], which hands the core
//! to the shared [`spoke_module_util::Driver`]; [`fuzzing`] holds the fuzz entry point.

pub mod control;
pub mod fuzzing;
pub mod sensor;
pub mod settings;
pub mod simulation;

use std::future::Future;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use spoke_sdk::ClientConfig;

pub use sensor::{OUTPUT, Options, Sensor};
pub use settings::MessageCount;
pub use simulation::{ParameterError, SimulatorParameters};

/// Why the module stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The simulator parameters are unusable.
    #[error("invalid simulator parameters")]
    Parameters(#[from] ParameterError),
    /// The client could not connect, or was closed under the module.
    #[error("module client failed")]
    Client(#[from] spoke_sdk::Error),
}

/// Runs the sensor on a client for `config` until `shutdown` completes; returns the number
/// of readings it sent (0 when shutdown came before the start completed).
pub async fn run(
    config: ClientConfig,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<u64, Error> {
    let sensor = Sensor::new(options, StdRng::from_os_rng(), uuid::Uuid::new_v4())?;
    let sensor = spoke_module_util::driver::run(config, sensor, shutdown).await?;
    Ok(sensor.map_or(0, |s| s.sent()))
}
