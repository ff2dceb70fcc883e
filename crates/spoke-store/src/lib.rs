//! Spoke storage.
//!
//! - [`log`]: the durable append log behind the hub's built-in events endpoint and the
//!   edge's store-and-forward queues.
//! - [`sql`]: the hub's transactional state behind the [`sql::HubStore`] trait, with the
//!   embedded SQLite backend.

pub mod log;
pub mod sql;
