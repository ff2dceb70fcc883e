//! The edge agent's synchronous core (ARCHITECTURE.md "Deployments"; edge contracts spec §3,
//! §5.1, §5.3): reconcile the `$edgeAgent` desired properties against the modules the runtime
//! has, apply the restart policies with their back-off, and build the `$edgeAgent` reported
//! properties. Sans-I/O (STYLE.md §2-3): [`Agent`] takes desired properties, observations
//! ([`ObservedModule`]) and the time, and returns [`Action`]s and JSON; a driver talks to the
//! runtime ([`crate::runtime`]) and the hub, and sleeps until [`Agent::next_wakeup`].
//!
//! Layout: [`plan`] decides what to do per module, [`restart`] is the per-module restart
//! state machine, [`report`] builds the reported properties, [`state`] is what the driver
//! persists ([`AgentState`]: the last good deployment and per-module records), [`status`] is
//! `lastDesiredStatus`, [`reconciler`] ties them together.
//!
//! The system modules `edgeAgent` and `edgeHub` are built into spoke-edge: their desired
//! entries are accepted and reported, never run, and runtime modules of those names are never
//! removed.

mod config;
pub mod fuzzing;
pub mod observed;
pub mod plan;
pub mod reconciler;
pub mod report;
pub mod restart;
pub mod state;
pub mod status;

pub use config::{AgentConfig, AgentVersion, Platform};
pub use observed::{Health, ObservedModule};
pub use plan::Action;
pub use reconciler::Agent;
pub use report::reported_patch;
pub use restart::{MAX_COOL_OFF, RestartConfig, RestartRecord};
pub use state::{AgentState, ModuleRecord, StateError};
pub use status::{DeploymentStatus, StatusCode};
