//! Spoke Edge: the device-side runtime (ARCHITECTURE.md). It runs modules as Docker containers
//! or plain processes ([`runtime`]) and gives them identities through the workload API
//! ([`workload`]); [`config`] is its configuration file.

pub mod config;
pub mod runtime;
pub mod workload;
