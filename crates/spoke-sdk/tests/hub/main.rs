//! The client against a real Spoke Hub started in-process: every feature end to end, module
//! identities (by connection string and by the edge environment), reconnection after a hub
//! restart and SAS token renewal.

mod device;
mod edge_link;
mod module;
mod resilience;
mod support;
