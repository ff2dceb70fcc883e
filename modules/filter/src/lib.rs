//! Spoke Edge's filter module, the counterpart of the module in Azure IoT Edge's "develop a
//! module" tutorial (and of Azure's `TemperatureFilter`): it reads the simulated temperature
//! sensor's messages on input `input1` and forwards those whose `machine.temperature`
//! exceeds the threshold to output `output1`, with application property `MessageType=Alert`.
//! The threshold comes from the desired property `TemperatureThreshold` (or `threshold`),
//! else the `TemperatureThreshold` environment variable, else 25, and is reported back as
//! `TemperatureThreshold`.
//!
//! Layers: [`decision`] (the pure filter decision and the alert), [`threshold`] (what the
//! twin says), [`filter`] (the synchronous core), and [`run`], which hands the core to the
//! shared [`spoke_module_util::Driver`]; [`fuzzing`] holds the fuzz entry point.

pub mod decision;
pub mod filter;
pub mod fuzzing;
pub mod threshold;

use std::future::Future;

use spoke_sdk::ClientConfig;

pub use filter::{Filter, INPUT, OUTPUT};
pub use threshold::DEFAULT_THRESHOLD;

/// Runs the filter on a client for `config`, with `default_threshold` until the twin sets
/// one, until `shutdown` completes; returns the filter for its counters (`None` when
/// shutdown came before the start completed).
pub async fn run(
    config: ClientConfig,
    default_threshold: f64,
    shutdown: impl Future<Output = ()>,
) -> Result<Option<Filter>, spoke_sdk::Error> {
    spoke_module_util::driver::run(config, Filter::new(default_threshold), shutdown).await
}
