//! One endpoint queue: the logs of its priorities, opened lazily, and the async I/O around
//! [`super::core`] (reading, waiting, persisting cursors, reclaiming).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;

use super::codec;
use super::core::{Core, Lane, Meta, Offer};
use super::files::{self, blocking};
use super::store::StoreInner;
use super::{Entry, EntryId, PRIORITIES, QueueConfig, QueueError, QueueStats};
use crate::log::{
    FRAME_OVERHEAD, LogConfig, LogError, LogHandle, MAX_PAYLOAD_LEN, ReadEvent, Reader, Record,
};

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const REMOVED: u8 = 2;

/// One endpoint's queue: ten priorities of durable entries. Cheap to clone; all clones share
/// the same queue. Obtained from [`super::QueueStore::endpoint`]; works while its store is
/// open. See the module doc of [`super`] for the guarantees.
#[derive(Clone)]
pub struct EndpointQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EndpointQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointQueue")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

struct Inner {
    name: String,
    dir: PathBuf,
    config: QueueConfig,
    /// The disk budget; weak because the store owns its endpoints.
    store: Weak<StoreInner>,
    logs: [OnceCell<LogHandle>; PRIORITIES],
    /// Serializes opening a priority's log with closing or removing the endpoint.
    opening: tokio::sync::Mutex<()>,
    core: Mutex<Core>,
    /// The consumer's readers, one per priority; held while reading.
    readers: tokio::sync::Mutex<[Option<Reader>; PRIORITIES]>,
    /// Serializes cursor flushes.
    flushing: tokio::sync::Mutex<()>,
    flushed_at: Mutex<Instant>,
    /// Woken when entries arrive, on rewind and on close.
    arrived: Notify,
    state: AtomicU8,
}

impl EndpointQueue {
    /// Opens the endpoint in `dir` (which exists) with the priorities found there.
    pub(crate) async fn open(
        name: String,
        dir: PathBuf,
        config: QueueConfig,
        store: Weak<StoreInner>,
    ) -> Result<Self, QueueError> {
        let present = blocking({
            let dir = dir.clone();
            move || files::existing_lanes(&dir)
        })
        .await?;
        let logs: [OnceCell<LogHandle>; PRIORITIES] = Default::default();
        let mut core = Core::default();
        for priority in present {
            let (log, lane) = open_lane(&dir, priority, &config).await?;
            *core.lane_mut(priority) = lane;
            logs[priority].set(log).map_err(|_| QueueError::Closed)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                dir,
                config,
                store,
                logs,
                opening: tokio::sync::Mutex::new(()),
                core: Mutex::new(core),
                readers: tokio::sync::Mutex::new(Default::default()),
                flushing: tokio::sync::Mutex::new(()),
                flushed_at: Mutex::new(Instant::now()),
                arrived: Notify::new(),
                state: AtomicU8::new(OPEN),
            }),
        })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Stores a message at `priority` (0 highest, 9 lowest) and resolves once it is durable;
    /// concurrent callers share one `fdatasync`. `enqueued_ms` becomes the entry's enqueued
    /// time; `expires_at_ms` (ms since the Unix epoch, `None` for never) is when it expires.
    ///
    /// Fails with [`QueueError::Full`] when the disk budget is exhausted even after reclaiming
    /// space; the message is then not stored. If the future is dropped before it resolves,
    /// the message may or may not be stored.
    pub async fn enqueue(
        &self,
        priority: u8,
        payload: Bytes,
        enqueued_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Result<(), QueueError> {
        self.submit(priority, payload, enqueued_ms, expires_at_ms)
            .await?
            .await
    }

    /// [`EndpointQueue::enqueue`] in two steps: resolves once the message has its place in
    /// its priority's order (after every message submitted before, before every one submitted
    /// after), with a future that resolves once it is durable. Callers that must keep an order
    /// submit one message at a time and await the durability of many together.
    pub async fn submit(
        &self,
        priority: u8,
        payload: Bytes,
        enqueued_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Result<impl Future<Output = Result<(), QueueError>> + Send + 'static, QueueError> {
        let p = check_priority(priority)?;
        self.check_open()?;
        let record = codec::encode_record(expires_at_ms, &payload);
        if record.len() > MAX_PAYLOAD_LEN {
            return Err(LogError::RecordTooLarge { len: record.len() }.into());
        }
        let store = self.inner.store.upgrade().ok_or(QueueError::Closed)?;
        let reservation = store
            .reserve((FRAME_OVERHEAD + record.len()) as u64)
            .await?;
        let log = self.log(p).await?;
        let durable = log
            .submit(record, enqueued_ms)
            .await
            .map_err(|e| self.log_error(e))?;
        let queue = self.clone();
        Ok(async move {
            let offset = durable.await.map_err(|e| queue.log_error(e))?;
            drop(reservation);
            let meta = Meta {
                enqueued_ms,
                expires_at_ms,
            };
            queue.core().lane_mut(p).learn(offset, meta);
            queue.inner.arrived.notify_waiters();
            Ok(())
        })
    }

    /// Waits until at least one unexpired entry is available, then returns up to `max`
    /// entries in delivery order: highest priority first, then enqueue order. Expired entries
    /// met on the way are skipped and counted. Entries stay pending until acknowledged; the
    /// next call continues after the ones handed out, until [`EndpointQueue::rewind`].
    /// Returns `Err(Closed)` or `Err(Removed)` when the endpoint stops while waiting; a `max`
    /// of 0 returns at once.
    pub async fn next_batch(&self, max: usize) -> Result<Vec<Entry>, QueueError> {
        loop {
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let batch = self.try_next_batch(max).await?;
            if !batch.is_empty() || max == 0 {
                return Ok(batch);
            }
            arrived.await;
        }
    }

    /// [`EndpointQueue::next_batch`] without waiting: an empty batch when nothing is
    /// available now.
    pub async fn try_next_batch(&self, max: usize) -> Result<Vec<Entry>, QueueError> {
        self.check_open()?;
        let now = self.inner.config.clock.now_ms();
        let mut readers = self.inner.readers.lock().await;
        let mut batch = Vec::new();
        for (priority, slot) in readers.iter_mut().enumerate() {
            if batch.len() >= max {
                break;
            }
            if let Some(log) = self.inner.logs[priority].get() {
                self.fill(priority, log, slot, now, max, &mut batch).await?;
            }
        }
        Ok(batch)
    }

    /// Hands out again, from the first unacknowledged entry of each priority, everything
    /// not acknowledged (after a failed delivery or a reconnect).
    pub fn rewind(&self) {
        self.core().rewind();
        self.inner.arrived.notify_waiters();
    }

    /// Acknowledges delivered entries, in any order. Within a priority the persisted cursor
    /// moves over the acknowledged prefix; later acknowledgements are persisted as a list.
    /// Persists when [`QueueConfig::cursor_flush_interval`] has passed since the last time.
    /// Ids never handed out since the store was opened are ignored.
    pub async fn ack(&self, entries: &[EntryId]) -> Result<(), QueueError> {
        self.check_open()?;
        for id in entries {
            check_priority(id.priority)?;
        }
        {
            let mut core = self.core();
            for id in entries {
                core.lane_mut(usize::from(id.priority)).ack(id.offset);
            }
        }
        let interval = self.inner.config.cursor_flush_interval;
        let due = self.flushed_at().elapsed() >= interval;
        if due && self.dirty() {
            self.flush(false).await?;
        }
        Ok(())
    }

    /// Depth, age, size and expiry counters, per priority and in total.
    pub fn stats(&self) -> QueueStats {
        let core = self.core();
        let priorities: Vec<_> = (0..PRIORITIES)
            .filter_map(|p| {
                let log = self.inner.logs[p].get()?;
                Some(
                    core.lane(p)
                        .stats(p as u8, log.end_offset(), log.total_bytes()),
                )
            })
            .collect();
        QueueStats {
            depth: priorities.iter().map(|p| p.depth).sum(),
            oldest_enqueued_ms: priorities.iter().filter_map(|p| p.oldest_enqueued_ms).min(),
            bytes: priorities.iter().map(|p| p.bytes).sum(),
            expired_total: priorities.iter().map(|p| p.expired_total).sum(),
            priorities,
        }
    }

    /// Bytes of this endpoint's logs.
    pub(crate) fn log_bytes(&self) -> u64 {
        self.inner
            .logs
            .iter()
            .filter_map(OnceCell::get)
            .map(LogHandle::total_bytes)
            .sum()
    }

    /// Whether acknowledgements or expiries are not persisted yet.
    pub(crate) fn dirty(&self) -> bool {
        self.core().dirty()
    }

    /// Persists the cursors that changed, then deletes the log segments below them. With
    /// `roll_drained`, a fully acknowledged priority's active segment is sealed first so it
    /// can be deleted too (used when reclaiming space).
    pub(crate) async fn flush(&self, roll_drained: bool) -> Result<(), QueueError> {
        let _flushing = self.inner.flushing.lock().await;
        if self.inner.state.load(Ordering::Acquire) == REMOVED {
            // The directory is gone or belongs to a new endpoint of the same name by now.
            return Ok(());
        }
        *self.flushed_at() = Instant::now();
        let dirty = self.core().unpersisted();
        if !dirty.is_empty() {
            let dir = self.inner.dir.clone();
            let cursors: Vec<_> = dirty.iter().map(|(p, s, _)| (*p, s.clone())).collect();
            blocking(move || files::write_cursors(&dir, &cursors)).await?;
            let mut core = self.core();
            for (p, state, version) in dirty {
                core.lane_mut(p).persisted(version, state.acked);
            }
        }
        for (p, cell) in self.inner.logs.iter().enumerate() {
            let Some(log) = cell.get() else { continue };
            let acked = self.core().lane(p).persisted_acked();
            if roll_drained && acked >= log.end_offset() && log.total_bytes() > 0 {
                log.roll().await.map_err(|e| self.log_error(e))?;
            }
            if acked > log.start_offset() {
                log.truncate_before(acked)
                    .await
                    .map_err(|e| self.log_error(e))?;
            }
        }
        Ok(())
    }

    /// Marks done the expired entries at the head of every priority (reading the head where
    /// it is not known), stopping at the first unexpired one.
    pub(crate) async fn purge_expired(&self, now_ms: i64) -> Result<(), QueueError> {
        let _readers = self.inner.readers.lock().await;
        for (p, cell) in self.inner.logs.iter().enumerate() {
            let Some(log) = cell.get() else { continue };
            let mut reader: Option<Reader> = None;
            loop {
                let acked = {
                    let mut core = self.core();
                    let lane = core.lane_mut(p);
                    match lane.head() {
                        Some(meta) if meta.expired(now_ms) => {
                            lane.expire_head();
                            continue;
                        }
                        Some(_) => break,
                        None if lane.acked() >= log.end_offset() => break,
                        None => lane.acked(),
                    }
                };
                let reader = match reader.take() {
                    Some(r) if r.position() == acked => reader.insert(r),
                    _ => reader.insert(log.read_from(acked)),
                };
                match reader.try_next().await {
                    Ok(None) => break,
                    Ok(Some(ReadEvent::Skipped { to, .. })) => {
                        self.core().lane_mut(p).drop_below(to);
                    }
                    Ok(Some(ReadEvent::Record(record))) => {
                        let mut core = self.core();
                        let lane = core.lane_mut(p);
                        if lane.acked() != record.offset {
                            continue;
                        }
                        if let Some((meta, _)) = decode(&record) {
                            lane.learn(record.offset, meta);
                        } else {
                            self.report_foreign(p, record.offset);
                            lane.discard_head();
                        }
                    }
                    Err(e @ LogError::Corrupt { .. }) => self.report_corrupt(&e),
                    Err(e) => return Err(self.log_error(e)),
                }
            }
        }
        Ok(())
    }

    /// Stops the endpoint: no more enqueues, deliveries or acknowledgements (they fail with
    /// `Closed`, or `Removed` when `removed`), persists the cursors unless removed, closes
    /// the logs and wakes waiting consumers.
    pub(crate) async fn shut(&self, removed: bool) -> Result<(), QueueError> {
        let _opening = self.inner.opening.lock().await;
        let state = if removed { REMOVED } else { CLOSED };
        if self.inner.state.swap(state, Ordering::AcqRel) != OPEN {
            return Ok(());
        }
        self.inner.arrived.notify_waiters();
        let flushed = if removed {
            // Wait out a flush in progress; later ones see the state and write nothing.
            drop(self.inner.flushing.lock().await);
            Ok(())
        } else {
            self.flush(false).await
        };
        let mut closed = Ok(());
        for log in self.inner.logs.iter().filter_map(OnceCell::get) {
            if let Err(e) = log.clone().close().await
                && closed.is_ok()
            {
                closed = Err(QueueError::Log(e));
            }
        }
        flushed.and(closed)
    }

    async fn fill(
        &self,
        p: usize,
        log: &LogHandle,
        slot: &mut Option<Reader>,
        now_ms: i64,
        max: usize,
        batch: &mut Vec<Entry>,
    ) -> Result<(), QueueError> {
        while batch.len() < max {
            let position = self.core().lane(p).position();
            if position >= log.end_offset() {
                return Ok(());
            }
            let reader = match slot.take() {
                Some(r) if r.position() == position => slot.insert(r),
                _ => slot.insert(log.read_from(position)),
            };
            let event = match reader.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(e @ LogError::Corrupt { .. }) => {
                    self.report_corrupt(&e);
                    continue;
                }
                Err(e) => {
                    // Read again from the lane's position next time rather than skip.
                    *slot = None;
                    return Err(self.log_error(e));
                }
            };
            let record = match event {
                ReadEvent::Skipped { from, to } => {
                    self.core().lane_mut(p).skipped(from, to);
                    continue;
                }
                ReadEvent::Record(record) => record,
            };
            let decoded = decode(&record);
            let meta = decoded.as_ref().map(|(meta, _)| *meta);
            let offer = self.core().lane_mut(p).offer(record.offset, meta, now_ms);
            match (offer, decoded) {
                (Offer::Deliver, Some((meta, payload))) => batch.push(Entry {
                    id: EntryId {
                        priority: p as u8,
                        offset: record.offset,
                    },
                    payload,
                    enqueued_ms: meta.enqueued_ms,
                    expires_at_ms: meta.expires_at_ms,
                }),
                (Offer::Discarded, _) => self.report_foreign(p, record.offset),
                _ => {}
            }
        }
        Ok(())
    }

    /// The log of a priority, created on first use.
    async fn log(&self, p: usize) -> Result<&LogHandle, QueueError> {
        self.inner.logs[p]
            .get_or_try_init(|| async {
                let _opening = self.inner.opening.lock().await;
                self.check_open()?;
                let dir = files::lane_dir(&self.inner.dir, p);
                blocking({
                    let dir = dir.clone();
                    move || files::create_dir(&dir)
                })
                .await?;
                Ok(LogHandle::open(dir, log_config(&self.inner.config)).await?)
            })
            .await
    }

    fn check_open(&self) -> Result<(), QueueError> {
        match self.inner.state.load(Ordering::Acquire) {
            OPEN => Ok(()),
            REMOVED => Err(QueueError::Removed(self.inner.name.clone())),
            _ => Err(QueueError::Closed),
        }
    }

    /// A log error, or why the log was closed under the caller.
    fn log_error(&self, e: LogError) -> QueueError {
        self.check_open().err().unwrap_or(QueueError::Log(e))
    }

    fn report_corrupt(&self, e: &LogError) {
        tracing::error!(endpoint = %self.inner.name, error = %e, "unreadable queue entries are skipped");
    }

    fn report_foreign(&self, p: usize, offset: u64) {
        tracing::error!(endpoint = %self.inner.name, priority = p, offset, "skipping a log record that is not a queue entry");
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.inner
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn flushed_at(&self) -> MutexGuard<'_, Instant> {
        self.inner
            .flushed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn check_priority(priority: u8) -> Result<usize, QueueError> {
    let p = usize::from(priority);
    if p < PRIORITIES {
        Ok(p)
    } else {
        Err(QueueError::InvalidPriority(priority))
    }
}

fn log_config(config: &QueueConfig) -> LogConfig {
    LogConfig {
        segment_max_bytes: config.segment_max_bytes,
        retention: None,
        max_total_bytes: None,
        ..LogConfig::default()
    }
}

/// Opens an existing priority: its log, its cursor, and the head entry's metadata.
async fn open_lane(
    dir: &Path,
    p: usize,
    config: &QueueConfig,
) -> Result<(LogHandle, Lane), QueueError> {
    let log = LogHandle::open(files::lane_dir(dir, p), log_config(config)).await?;
    let state = blocking({
        let dir = dir.to_owned();
        move || files::read_cursor(&dir, p)
    })
    .await?;
    let mut lane = Lane::restore(state, log.start_offset(), log.end_offset());
    if lane.acked() < log.end_offset() {
        let mut reader = log.read_from(lane.acked());
        if let Ok(Some(ReadEvent::Record(record))) = reader.try_next().await
            && let Some((meta, _)) = decode(&record)
        {
            lane.learn(record.offset, meta);
        }
    }
    Ok((log, lane))
}

/// The metadata and message of a log record; `None` when it is not a queue record.
fn decode(record: &Record) -> Option<(Meta, Bytes)> {
    let (expires_at_ms, message) = codec::decode_record(&record.payload)?;
    let meta = Meta {
        enqueued_ms: record.timestamp_ms,
        expires_at_ms,
    };
    Some((meta, message))
}
