//! Spoke storage.
//!
//! - [`log`]: the durable append log behind the hub's built-in events endpoint and the
//!   edge's store-and-forward queues.
//! - [`queue`]: the edge hub's store-and-forward queues (per endpoint, ten priorities, TTL,
//!   acknowledgements, a shared disk budget) on top of [`log`].
//! - [`sql`]: the hub's transactional state behind the [`sql::HubStore`] trait, with the
//!   embedded SQLite backend.

pub mod log;
pub mod queue;
pub mod sql;
