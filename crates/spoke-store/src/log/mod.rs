//! The durable append log: the hub's built-in events (telemetry) store and the segments under
//! the edge's store-and-forward queues ([`crate::queue`]).
//!
//! A log is an ordered sequence of [`Record`]s, each with a dense, monotonically increasing
//! offset assigned by the log, a timestamp assigned by the caller (the enqueued time) and an
//! opaque payload the caller serialized. [`LogHandle::append`] resolves only once the record is
//! on stable storage (`fdatasync`); [`Reader`]s follow the log like `tail -f` and see only
//! records that are.
//!
//! # Layout on disk
//!
//! A log is one directory:
//!
//! ```text
//! LOCK                     advisory lock held by the one process that has the log open
//! 00000000000000000000.log segment: the frames of records 0, 1, 2, ...
//! 00000000000000001234.idx sidecar index of sealed segment 1234 (a cache, may be absent)
//! 00000000000000001234.log segment whose first record has offset 1234 (its *base*)
//! ```
//!
//! A segment is a plain sequence of frames, with no file header; every integer is
//! little-endian:
//!
//! ```text
//! | len: u32 | crc32: u32 | offset: u64 | timestamp_ms: i64 | payload: len bytes |
//! ```
//!
//! `crc32` is CRC-32 (IEEE, as zlib) over `len`, `offset`, `timestamp_ms` and the payload.
//! `len` is at most [`MAX_PAYLOAD_LEN`]. A sidecar is
//! `"SPKLIDX1" | base u64 | end u64 | size u64 | n u32 | n × (offset u64, pos u64, max_ts i64) |
//! crc32 u32`: the segment's offset range, byte size, and a sparse index with one entry every
//! [`LogConfig::index_interval_bytes`] giving a record's byte position and the largest
//! timestamp up to the next entry.
//!
//! # Invariants
//!
//! 1. Offsets are dense: segment `b` holds records `b, b+1, ...` in order, and the next segment
//!    starts one past its last record. Every frame carries its offset, which is checked on read.
//! 2. Only the last segment (the *active* one) is written, by one writer thread; a segment is
//!    *sealed* when the writer rolls to a new one (when the next append would take it past
//!    [`LogConfig::segment_max_bytes`], or on [`LogHandle::roll`]; a single append's records
//!    always share a segment), and a sealed segment is never modified, only deleted whole.
//! 3. An append is acknowledged only after its frames were written and `fdatasync`ed, and the
//!    directory entry of a new segment is fsynced before anything in it is acknowledged. The
//!    committed end offset that readers follow moves only after that, so readers never see a
//!    record that could be lost.
//! 4. Deletion — retention ([`LogConfig::retention`], [`LogConfig::max_total_bytes`]) and
//!    [`LogHandle::truncate_before`] — removes whole sealed segments from the front only, so the
//!    retained offsets are always one range `start_offset()..end_offset()`.
//!
//! # Recovery and damage policy
//!
//! On open, the active segment is scanned frame by frame; at the first frame that is short,
//! fails its checksum, is longer than allowed or has an unexpected offset, the file is
//! truncated there and appending continues. Only records that were never acknowledged can be
//! in such a torn tail, because a crash can tear only the write in flight. (Bit rot inside the
//! acknowledged part of the active segment is indistinguishable from a torn tail and loses the
//! records after it; this is logged at `error` with the file and position.)
//!
//! A sealed segment is never modified. Its sidecar is used when intact and of the right size;
//! otherwise the segment is scanned and the sidecar rewritten. Damage found in a sealed
//! segment — at open or later by a reader — is reported with the file and byte position
//! ([`LogError::Corrupt`] to the reader that met it, a warning at open) and the rest of that
//! segment is skipped: readers get a [`ReadEvent::Skipped`] for the offsets they cannot read
//! and continue with the next segment. Corrupt data never causes a panic.
//!
//! # Time
//!
//! Timestamps are expected to be non-decreasing but this is not relied on.
//! [`LogHandle::offset_for_time`] uses the per-chunk maximum timestamps of the sparse index to
//! skip chunks and scans the first chunk that may qualify, so it returns exactly the first
//! offset whose timestamp is at least the target. Retention deletes a sealed segment when its
//! newest record is older than the retention period, stopping at the first segment that is
//! not (invariant 4).
//!
//! # Concurrency
//!
//! [`LogHandle`] is a cheap clone of a bounded mailbox sender. The writer thread drains its
//! mailbox (up to [`LogConfig::max_batch_records`] / [`LogConfig::max_batch_bytes`]), writes the
//! whole batch with one `write` and one `fdatasync` (group commit), publishes the new end and
//! then resolves every waiter. Readers open the segment files themselves, read on tokio's
//! blocking pool and only take a short lock on the in-memory segment list to find a position,
//! so they never hold up the writer.
//!
//! # Errors
//!
//! A failed write is rolled back (the file is truncated to its committed length) and fails the
//! appends of that batch only. A failed `fdatasync` leaves the file in an unknown state, so
//! the writer then fails every further append with [`LogError::Poisoned`] until the log is
//! reopened. An append that returned an error, or whose future was dropped, may or may not be
//! in the log after a restart.

mod frame;
pub mod fuzzing;
mod reader;
mod segment;
mod writer;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

/// Bytes a frame adds to its payload on disk (what [`LogHandle::total_bytes`] counts).
pub(crate) use frame::HEADER_LEN as FRAME_OVERHEAD;
pub use frame::{CorruptReason, MAX_PAYLOAD_LEN};
pub use reader::{ReadEvent, Reader};

use segment::Segments;
use writer::{Command, Control, Writer};

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the log, assigned on append; dense and increasing.
    pub offset: u64,
    /// Milliseconds since the Unix epoch, given by the appender (the enqueued time).
    pub timestamp_ms: i64,
    /// The bytes the appender serialized.
    pub payload: Bytes,
}

/// Tuning and retention of a log. `Default` gives the production settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment is sealed and a new one started when the next append would take it past this
    /// many bytes. Default 64 MiB.
    pub segment_max_bytes: u64,
    /// Sealed segments whose newest record is older than this are deleted. `None` keeps
    /// records regardless of age. Default 7 days.
    pub retention: Option<Duration>,
    /// The oldest sealed segments are deleted while the log is larger than this. Default none.
    pub max_total_bytes: Option<u64>,
    /// How often retention runs (it also runs when a segment is sealed). Default 1 minute.
    pub retention_check_interval: Duration,
    /// Capacity of the writer's mailbox; appenders wait when it is full. Default 4096.
    pub mailbox_capacity: usize,
    /// The writer commits at most about this many records with one `fdatasync`. Default 4096.
    pub max_batch_records: usize,
    /// The writer commits at most about this many payload bytes with one `fdatasync`.
    /// Default 4 MiB.
    pub max_batch_bytes: usize,
    /// Distance in bytes between sparse index entries. Default 64 KiB.
    pub index_interval_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_max_bytes: 64 << 20,
            retention: Some(Duration::from_hours(7 * 24)),
            max_total_bytes: None,
            retention_check_interval: Duration::from_mins(1),
            mailbox_capacity: 4096,
            max_batch_records: 4096,
            max_batch_bytes: 4 << 20,
            index_interval_bytes: 64 << 10,
        }
    }
}

/// Errors of the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A segment holds bytes that are not a valid record where one must be.
    #[error("corrupt log segment {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the bad frame in the file.
        position: u64,
        /// What is wrong with it.
        reason: CorruptReason,
    },
    /// A payload is longer than [`MAX_PAYLOAD_LEN`].
    #[error("record payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD_LEN}")]
    RecordTooLarge {
        /// The payload's length.
        len: usize,
    },
    /// Another process (or another open in this one) has the log directory open.
    #[error("log directory {} is in use by another writer", path.display())]
    Locked {
        /// The log directory.
        path: PathBuf,
    },
    /// A configuration value is out of range.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(&'static str),
    /// The writer has stopped (the log was closed).
    #[error("the log is closed")]
    Closed,
    /// An earlier `fdatasync` failed; the log must be reopened before appending again.
    #[error("the log writer failed to sync earlier and accepts no more appends until reopened")]
    Poisoned,
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// State shared by the writer and the readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    segments: Mutex<Segments>,
    /// `segments.start()`, readable without the lock; updated under it.
    start: AtomicU64,
    /// `segments.total_bytes()`, readable without the lock; updated under it.
    bytes: AtomicU64,
}

impl Shared {
    pub fn new(dir: PathBuf, segments: Segments) -> Self {
        let start = AtomicU64::new(segments.start());
        let bytes = AtomicU64::new(segments.total_bytes());
        Self {
            dir,
            segments: Mutex::new(segments),
            start,
            bytes,
        }
    }

    /// The oldest retained offset.
    pub fn start(&self) -> u64 {
        self.start.load(Ordering::Acquire)
    }

    /// Copies the start and size of `segments` (the locked segment list) to the fields that
    /// are read without the lock.
    pub fn publish_bounds(&self, segments: &Segments) {
        self.start.store(segments.start(), Ordering::Release);
        self.bytes.store(segments.total_bytes(), Ordering::Release);
    }

    /// Bytes of committed frames in all segments.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// The segment list. Held only for lookups and updates, never across I/O.
    pub fn segments(&self) -> MutexGuard<'_, Segments> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle to an open log. Clones share the same writer; the writer stops when the last
/// handle is dropped or [`LogHandle::close`] is called.
#[derive(Debug, Clone)]
pub struct LogHandle {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    committed: watch::Receiver<u64>,
}

impl LogHandle {
    /// Opens the log in `dir` (created if missing), recovering from a crash if needed, and
    /// starts its writer thread and retention timer. Must be called within a tokio runtime.
    pub async fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<Self, LogError> {
        validate(&config)?;
        let dir = dir.into();
        let (capacity, timer) = (config.mailbox_capacity, retention_timer(&config));
        let opened = tokio::task::spawn_blocking(move || Writer::open(&dir, config))
            .await
            .map_err(|_| LogError::Closed)??;
        let (writer, shared, committed) = opened;
        let (tx, rx) = mpsc::channel(capacity);
        std::thread::Builder::new()
            .name("spoke-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::io(&shared.dir, e))?;
        if let Some(period) = timer {
            tokio::spawn(run_retention_timer(tx.downgrade(), period));
        }
        Ok(Self {
            tx,
            shared,
            committed,
        })
    }

    /// Appends one record and returns its offset once it is durable.
    ///
    /// If the future is dropped before it resolves, the record may or may not be appended.
    pub async fn append(&self, payload: Bytes, timestamp_ms: i64) -> Result<u64, LogError> {
        self.submit(payload, timestamp_ms).await?.await
    }

    /// [`LogHandle::append`] in two steps: resolves once the record has its place in the log
    /// (after every record submitted before, before every one submitted after), with a future
    /// of its offset once it is durable.
    pub async fn submit(
        &self,
        payload: Bytes,
        timestamp_ms: i64,
    ) -> Result<impl Future<Output = Result<u64, LogError>> + Send + 'static, LogError> {
        check_len(&payload)?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::Append {
            record: (payload, timestamp_ms),
            reply,
        })
        .await?;
        Ok(async move { rx.await.map_err(|_| LogError::Closed)? })
    }

    /// Appends records (payload, timestamp) with consecutive offsets, all in one segment, and
    /// returns their offsets once they are durable.
    pub async fn append_batch(&self, records: Vec<(Bytes, i64)>) -> Result<Range<u64>, LogError> {
        records
            .iter()
            .try_for_each(|(payload, _)| check_len(payload))?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::AppendBatch { records, reply }).await?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// One past the last durable record: the offset the next append will get.
    pub fn end_offset(&self) -> u64 {
        *self.committed.borrow()
    }

    /// The oldest retained offset (equal to `end_offset()` when the log is empty).
    pub fn start_offset(&self) -> u64 {
        self.shared.start()
    }

    /// A reader positioned at `offset`. Offsets already deleted are reported as skipped by its
    /// first [`Reader::next`]; an offset at or past the end waits for new records.
    pub fn read_from(&self, offset: u64) -> Reader {
        Reader::new(Arc::clone(&self.shared), self.committed.clone(), offset)
    }

    /// The offset of the first retained record whose timestamp is at least `timestamp_ms`, or
    /// `end_offset()` when there is none yet.
    pub async fn offset_for_time(&self, timestamp_ms: i64) -> Result<u64, LogError> {
        reader::offset_for_time(&self.shared, &self.committed, timestamp_ms).await
    }

    /// Bytes of durable records (frames, headers included) in all retained segments; the
    /// sidecar indexes are not counted.
    pub fn total_bytes(&self) -> u64 {
        self.shared.total_bytes()
    }

    /// Seals the active segment if it holds any record and starts a new one, so that a
    /// following [`LogHandle::truncate_before`]`(end_offset())` can delete every record.
    /// Returns the end offset (the new active segment's base).
    pub async fn roll(&self) -> Result<u64, LogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Control(Control::Roll { reply })).await?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Deletes the sealed segments that hold only offsets below `offset` (records a consumer
    /// has finished with) and returns the new `start_offset()`. The active segment stays.
    pub async fn truncate_before(&self, offset: u64) -> Result<u64, LogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Control(Control::TruncateBefore { offset, reply }))
            .await?;
        rx.await.map_err(|_| LogError::Closed)
    }

    /// Applies retention as of `now_ms` (milliseconds since the Unix epoch) and returns the new
    /// `start_offset()`. The timer does this with the wall clock; this is for callers that keep
    /// their own clock.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Control(Control::EnforceRetention {
            now_ms,
            reply: Some(reply),
        }))
        .await?;
        rx.await.map_err(|_| LogError::Closed)
    }

    /// Stops the writer after the appends already queued, and waits until its files are
    /// closed and the directory lock released. Other handles' later appends fail with
    /// [`LogError::Closed`]; readers end after the last committed record.
    pub async fn close(self) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Control(Control::Close { reply }))
            .await?;
        rx.await.map_err(|_| LogError::Closed)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    async fn send(&self, command: Command) -> Result<(), LogError> {
        self.tx.send(command).await.map_err(|_| LogError::Closed)
    }
}

fn check_len(payload: &Bytes) -> Result<(), LogError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(LogError::RecordTooLarge { len: payload.len() });
    }
    Ok(())
}

fn validate(config: &LogConfig) -> Result<(), LogError> {
    let checks = [
        (
            config.segment_max_bytes == 0,
            "segment_max_bytes must be positive",
        ),
        (
            config.mailbox_capacity == 0,
            "mailbox_capacity must be positive",
        ),
        (
            config.max_batch_records == 0,
            "max_batch_records must be positive",
        ),
        (
            config.max_batch_bytes == 0,
            "max_batch_bytes must be positive",
        ),
        (
            config.index_interval_bytes == 0,
            "index_interval_bytes must be positive",
        ),
        (
            config.retention_check_interval.is_zero() && retention_timer(config).is_some(),
            "retention_check_interval must be positive",
        ),
    ];
    checks
        .into_iter()
        .find(|(bad, _)| *bad)
        .map_or(Ok(()), |(_, why)| Err(LogError::InvalidConfig(why)))
}

/// The retention timer's period, when there is any retention to enforce.
fn retention_timer(config: &LogConfig) -> Option<Duration> {
    (config.retention.is_some() || config.max_total_bytes.is_some())
        .then_some(config.retention_check_interval)
}

async fn run_retention_timer(tx: mpsc::WeakSender<Command>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(tx) = tx.upgrade() else { return };
        let command = Command::Control(Control::EnforceRetention {
            now_ms: now_ms(),
            reply: None,
        });
        if tx.send(command).await.is_err() {
            return;
        }
    }
}

/// The wall clock in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
