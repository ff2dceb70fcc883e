//! Durable store-and-forward queues: the edge hub's `$upstream` queue and module-input queues.
//!
//! A [`QueueStore`] is a directory of named endpoint queues sharing one disk budget. An
//! [`EndpointQueue`] has eleven priorities: 0 (highest) to 9, as Azure IoT Edge's route
//! priorities, and 10 ([`LOWEST_PRIORITY`]) for routes that set none; each priority that was
//! ever used is one [`crate::log`] plus a cursor file.
//! Messages are delivered highest priority first, then in enqueue order, at least once, until
//! acknowledged or expired.
//!
//! # Layout on disk
//!
//! ```text
//! DIR/.lock                        advisory lock held by the one process that has the store open
//! DIR/<name>/                      one endpoint; <name> is the endpoint name with every byte
//!                                  other than [A-Za-z0-9_-] written %XX (so "$upstream" is
//!                                  "%24upstream", "module/f/in" is "module%2Ff%2Fin")
//! DIR/<name>/p<P>/                 the log of priority P (0..=10), see crate::log
//! DIR/<name>/p<P>.cursor           the delivery cursor of priority P
//! DIR/.removing-<name>/            an endpoint being deleted; deleted again on open
//! ```
//!
//! A log record's timestamp is the message's enqueued time; its payload is a small header and
//! the message (integers little-endian; any other first byte is not a queue record):
//!
//! ```text
//! | kind = 1 | message |                          no expiry
//! | kind = 2 | expires_at_ms: i64 | message |     expires at that time (ms since the Unix epoch)
//! ```
//!
//! A cursor file is
//! `"SPKQCUR1" | acked: u64 | n: u32 | n × done: u64 | crc32: u32` (CRC-32 IEEE over the rest):
//! every offset below `acked` is done, and so is each listed offset (strictly increasing, above
//! `acked`; these are acknowledgements received out of order). *Done* means acknowledged,
//! expired or unreadable. It is replaced atomically: written to `p<P>.cursor.tmp`, synced,
//! renamed over the old file, and the directory synced.
//!
//! # Invariants
//!
//! 1. [`EndpointQueue::enqueue`] resolves only after the record is durable in its log
//!    (group commit: one `fdatasync` for all the records that arrived meanwhile, see
//!    [`crate::log`]). Nothing whose enqueue resolved is deleted before it is done, except by
//!    [`QueueStore::remove_endpoint`].
//! 2. Within a priority, entries are handed out in log order; across priorities, a batch takes
//!    every available entry of a higher priority before any of a lower one. After
//!    [`EndpointQueue::rewind`], handing out starts again at the first entry not done.
//! 3. A log's records are deleted only below its persisted cursor, and only in whole
//!    segments ([`crate::log::LogHandle::truncate_before`]). So after any crash, every record
//!    not done according to the cursor file is still there: delivery is at least once.
//! 4. Acknowledgements change memory first; the cursor file follows within about
//!    [`QueueConfig::cursor_flush_interval`] (on the next [`EndpointQueue::ack`] after it
//!    elapsed, or the store's periodic flush), on close, and whenever space is reclaimed. A
//!    crash (kill -9, power loss) can therefore deliver again entries acknowledged within that
//!    interval — never lose them. After a clean [`QueueStore::close`], no acknowledged entry is
//!    delivered again, including entries acknowledged out of order.
//! 5. Expiry is judged when an entry is about to be handed out and when space is reclaimed:
//!    an entry whose `expires_at_ms <= now` is never handed out; it becomes done and is counted
//!    in `expired_total` (since open). The expiry clock is [`QueueConfig::clock`].
//! 6. Disk budget: the bytes of all logs (record frames, see
//!    [`crate::log::LogHandle::total_bytes`]) plus those reserved by enqueues in progress never
//!    exceed [`QueueConfig::max_total_bytes`]. An enqueue that would exceed it first reclaims
//!    space (persists every cursor, marks the expired entries at the head of every priority
//!    done, seals fully acknowledged active segments, deletes every segment below its cursor)
//!    and, if that is not enough, fails with [`QueueError::Full`]: the message is not stored,
//!    so the sender gets no acknowledgement and retries. Stored data is never dropped to make
//!    room. [`QueueStore::reclaim`] does the same on demand.
//!
//! Space held by a partly acknowledged active segment is reclaimed only once the segment is
//! sealed, so keep [`QueueConfig::segment_max_bytes`] well below `max_total_bytes` divided by
//! the number of endpoint priorities in use (the defaults allow 64 of them). Expired entries
//! behind an unexpired one are reclaimed once the consumer reaches them.
//!
//! # Recovery
//!
//! On open, every endpoint directory is reopened with its logs (the log recovers torn tails
//! itself) and `.removing-*` leftovers are deleted. A priority without a cursor file has
//! nothing done yet; a damaged cursor file makes every retained record of that priority
//! pending again (logged as a warning): a redelivery, never a loss. A cursor is clamped to the
//! log's retained range. Records the log cannot read (damage in a sealed segment, reported by
//! the log) and records that are not queue records (logged at `error`) are skipped and count
//! as done.
//!
//! # Concurrency and resources
//!
//! Any number of tasks may enqueue; their appends to one log are committed together. One
//! consumer per endpoint is the intended use (several are safe but share the in-flight
//! position). The synchronous bookkeeping (the `core` module, unit-tested alone) is behind a
//! short mutex never held across I/O; log reading is serialized per endpoint by an async
//! mutex. Each priority log in use has its writer thread. In memory, a priority keeps its
//! out-of-order acknowledgements and the metadata (times, no messages) of at most 4096
//! records from its head.

mod codec;
mod core;
mod endpoint;
mod files;
pub mod fuzzing;
mod store;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::log::LogError;

pub use endpoint::EndpointQueue;
pub use store::QueueStore;

/// The lowest priority: where an edge hub route that sets no priority sends its messages,
/// after every priority a route can set (0..=9), as edgeHub's default priority is lower than
/// all of them.
pub const LOWEST_PRIORITY: u8 = 10;

/// The number of priorities of an endpoint: 0 (highest) to [`LOWEST_PRIORITY`].
pub const PRIORITIES: usize = LOWEST_PRIORITY as usize + 1;

/// Milliseconds since the Unix epoch, as the queue's expiry clock sees them. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self::from_fn(crate::log::now_ms)
    }

    /// A clock that asks `now_ms`, for tests and simulations.
    pub fn from_fn(now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now_ms))
    }

    /// The current time.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Settings of a [`QueueStore`]. `Default` gives the production settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The disk budget shared by all endpoints, in bytes of log records. Default 1 GiB.
    pub max_total_bytes: u64,
    /// Size at which a priority's log starts a new segment; space is reclaimed in whole
    /// segments. Default 16 MiB.
    pub segment_max_bytes: u64,
    /// Acknowledgements are persisted at most this long after they were made (and on close);
    /// a crash may redeliver what was acknowledged within it. Zero persists on every
    /// [`EndpointQueue::ack`] call. Default 1 s.
    pub cursor_flush_interval: Duration,
    /// The clock that decides expiry. Default the system clock.
    pub clock: Clock,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_total_bytes: 1 << 30,
            segment_max_bytes: 16 << 20,
            cursor_flush_interval: Duration::from_secs(1),
            clock: Clock::system(),
        }
    }
}

/// Identifies a queued entry for [`EndpointQueue::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    /// The entry's priority, 0 (highest) to 10.
    pub priority: u8,
    /// Its position in that priority's log.
    pub offset: u64,
}

/// An entry handed out by [`EndpointQueue::next_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What to acknowledge.
    pub id: EntryId,
    /// The message, as enqueued.
    pub payload: Bytes,
    /// The enqueued time given to [`EndpointQueue::enqueue`].
    pub enqueued_ms: i64,
    /// The expiry given to [`EndpointQueue::enqueue`].
    pub expires_at_ms: Option<i64>,
}

/// Counters of one priority of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriorityStats {
    /// The priority, 0 (highest) to 10.
    pub priority: u8,
    /// Entries not acknowledged yet, including expired ones not yet skipped.
    pub depth: u64,
    /// The enqueued time of the oldest unacknowledged entry, when the queue has read or
    /// enqueued it since open (it is read on open).
    pub oldest_enqueued_ms: Option<i64>,
    /// Bytes of the priority's log on disk.
    pub bytes: u64,
    /// Entries skipped because they expired, since the store was opened.
    pub expired_total: u64,
}

/// Counters of an endpoint: sums over its priorities, and each priority in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Sum of the priorities' depths.
    pub depth: u64,
    /// The oldest of the priorities' oldest enqueued times.
    pub oldest_enqueued_ms: Option<i64>,
    /// Sum of the priorities' bytes.
    pub bytes: u64,
    /// Sum of the priorities' expired counts.
    pub expired_total: u64,
    /// The priorities that have a log, highest first.
    pub priorities: Vec<PriorityStats>,
}

/// Errors of the queues.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Storing the message would exceed the disk budget even after reclaiming space; it was
    /// not stored.
    #[error("the queue store is full: {used} of {limit} bytes used, {needed} more needed")]
    Full {
        /// Bytes the message needs on disk.
        needed: u64,
        /// Bytes in use (and reserved by enqueues in progress).
        used: u64,
        /// [`QueueConfig::max_total_bytes`].
        limit: u64,
    },
    /// The underlying log failed.
    #[error("queue log error")]
    Log(#[from] LogError),
    /// A file operation of the queue itself failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A priority above 10.
    #[error("priority {0} is out of range 0..=10")]
    InvalidPriority(u8),
    /// An endpoint name that cannot be stored.
    #[error("invalid endpoint name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid queue configuration: {0}")]
    InvalidConfig(&'static str),
    /// Another process (or another open in this one) has the store directory open.
    #[error("queue directory {} is in use", path.display())]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The endpoint was removed with [`QueueStore::remove_endpoint`].
    #[error("endpoint {0:?} was removed")]
    Removed(String),
    /// The store was closed (or dropped).
    #[error("the queue store is closed")]
    Closed,
}

impl QueueError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
