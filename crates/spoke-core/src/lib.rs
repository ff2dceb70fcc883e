//! I/O-free domain of Spoke: identifiers, connection strings, SAS tokens, messages and the
//! MQTT property bag, the hub's MQTT topic grammar, twins, queries, edge routes and
//! certificates. Pure functions, no sockets or files.

pub mod connstr;
pub mod fuzzing;
pub mod ids;
mod literal;
pub mod manifest;
pub mod message;
mod percent;
pub mod pki;
pub mod query;
pub mod route;
pub mod sas;
pub mod topic;
pub mod twin;
