//! The hub's transactional state: identities (with their twins), MQTT sessions, C2D queues and
//! key/value settings.
//!
//! [`HubStore`] is the narrow, object-safe trait the hub depends on; [`SqliteStore`] is the
//! embedded backend (one file in the data directory). A PostgreSQL backend implements the same
//! trait later and runs the same contract tests (`tests/sql_contract.rs`).
//!
//! Documents are stored as JSON text: the store knows nothing of their schema, the hub does.
//! Every call returns only after the change is durable (SQLite WAL, `synchronous = FULL`), so a
//! `kill -9` after a reply never loses it.

mod sqlite;

use std::future::Future;
use std::pin::Pin;

pub use sqlite::SqliteStore;

/// A boxed future returned by [`HubStore`] methods (keeps the trait object-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Errors of the SQL store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The schema could not be created or migrated.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// One stored identity: a device (`module_id` empty) or a module, with its JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    /// Device id.
    pub device_id: String,
    /// Module id, or empty for the device itself.
    pub module_id: String,
    /// The hub's JSON document for the identity (registry entry and twin).
    pub doc: String,
}

/// One pending cloud-to-device message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2dRow {
    /// Queue sequence number, increasing in enqueue order across all devices.
    pub seq: i64,
    /// Target device id.
    pub device_id: String,
    /// The serialized message.
    pub message: Vec<u8>,
    /// Expiry, milliseconds since the Unix epoch.
    pub expiry_ms: i64,
    /// How many times the message was sent to the device without being completed.
    pub delivery_count: i64,
}

/// The storage the hub needs. Every method is durable when its future resolves.
pub trait HubStore: Send + Sync + 'static {
    /// All identities, devices before their modules.
    fn load_identities(&self) -> StoreFuture<'_, Vec<IdentityRow>>;
    /// Inserts or replaces one identity document.
    fn put_identity<'a>(&'a self, row: &'a IdentityRow) -> StoreFuture<'a, ()>;
    /// Deletes one module, or a device with all its modules, sessions and C2D messages
    /// when `module_id` is empty.
    fn delete_identity<'a>(&'a self, device_id: &'a str, module_id: &'a str)
    -> StoreFuture<'a, ()>;

    /// The persisted MQTT session (subscriptions, JSON) of a client id.
    fn load_session<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Saves the MQTT session of a client id.
    fn save_session<'a>(&'a self, client_id: &'a str, doc: &'a str) -> StoreFuture<'a, ()>;
    /// Forgets the MQTT session of a client id.
    fn remove_session<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, ()>;

    /// Appends a C2D message for a device; returns its sequence number.
    fn c2d_enqueue<'a>(
        &'a self,
        device_id: &'a str,
        message: &'a [u8],
        expiry_ms: i64,
    ) -> StoreFuture<'a, i64>;
    /// All pending C2D messages, in sequence order.
    fn c2d_load(&self) -> StoreFuture<'_, Vec<C2dRow>>;
    /// Records one more delivery attempt of a message.
    fn c2d_set_delivery_count(&self, seq: i64, count: i64) -> StoreFuture<'_, ()>;
    /// Removes messages (completed, expired, purged, or dead-lettered).
    fn c2d_delete<'a>(&'a self, seqs: &'a [i64]) -> StoreFuture<'a, ()>;

    /// Reads a setting.
    fn get_setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Writes a setting.
    fn put_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, ()>;
}
