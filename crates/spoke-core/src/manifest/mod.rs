//! The Azure IoT Edge deployment manifest, typed: the `$edgeAgent` desired properties (which
//! modules to run and how), the `$edgeHub` desired properties (routes, store-and-forward, the
//! MQTT broker authorization policy), and whole manifests split per module twin (edge
//! contracts spec §3, status codes §5.1).
//!
//! I/O-free: [`serde_json::Value`] in, typed model or [`ManifestError`] out. The parsers read
//! what Azure's edgeAgent and edgeHub read, with their defaults (see [`module`], [`agent`],
//! [`hub`], [`broker`], [`create_options`]); real manifests from Azure's docs and repository
//! are test fixtures (`tests/fixtures/manifests/`) and must keep parsing unchanged.
//!
//! Spoke's one extension is the module type `process` (ARCHITECTURE.md, "Module types in a
//! manifest"): `settings.command` (program and arguments) and optional `settings.workingDir`
//! instead of `image` and `createOptions`; every other module field means the same.
//!
//! Invariants of a parsed model:
//! - docker images carry a tag ([`normalize_image`]), create options are a JSON object;
//! - process commands are non-empty with a non-blank program;
//! - module names are valid [`crate::ids::ModuleId`]s without `$`, and not `edgeAgent` or
//!   `edgeHub`;
//! - route priorities are 0..=9 and route TTLs non-zero when present;
//! - broker policy statements have identities and rules, with known variables and valid
//!   topic filters ([`broker`]).
//!
//! Where Spoke differs from edgeAgent, it refuses input edgeAgent would take but could not
//! act on sensibly (enum values such as `status: "backoff"`, a blank process command) and
//! parses strict JSON where Newtonsoft is lenient; each case is listed in the submodule docs.

pub mod agent;
pub mod broker;
pub mod create_options;
pub mod deployment;
mod error;
pub mod fuzzing;
pub mod hub;
mod image;
mod json;
pub mod module;
mod schema;

pub use agent::{AgentDesired, RegistryCredential, SYSTEM_MODULE_NAMES, SystemModules};
pub use broker::{BrokerPolicy, Client, Operation};
pub use deployment::{Deployment, EDGE_AGENT, EDGE_HUB};
pub use error::{
    ManifestError, STATUS_CONFIG_EMPTY, STATUS_CONFIG_FORMAT, STATUS_INVALID_SCHEMA_VERSION,
};
pub use hub::{HubDesired, MAX_ROUTE_PRIORITY, RouteSpec, StoreAndForward};
pub use image::{DEFAULT_TAG, normalize_image};
pub use module::{ImagePullPolicy, ModuleKind, ModuleSpec, ModuleStatus, RestartPolicy};
