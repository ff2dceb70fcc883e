//! Spoke Edge: the device-side runtime (ARCHITECTURE.md). It runs modules as Docker containers
//! or plain processes ([`runtime`]), decides what to run from the deployment ([`agent`]), gives
//! modules identities in the hub ([`identity`]) and through the workload API ([`workload`]),
//! with certificates from the edge CA ([`edge_ca`]), and connects and routes their messages
//! locally and upstream ([`edgehub`]); [`config`] is its configuration file.

pub mod agent;
pub mod config;
pub mod daemon;
pub mod edge_ca;
pub mod edgehub;
pub mod identity;
pub mod management;
pub mod runtime;
mod state_file;
pub mod workload;
