//! The writer: the one owner of the active segment file.
//!
//! Owns: crash recovery on open, the group commit (one `write` and one `fdatasync` per drained
//! batch of appends), rolling to a new segment, deleting segments (retention and
//! [`super::LogHandle::truncate_before`]) and publishing the committed end to readers.
//!
//! It runs on its own thread so `fdatasync` never stalls the async runtime; its mailbox is a
//! bounded tokio channel drained with `blocking_recv`/`try_recv`. [`Writer::append_groups`] and
//! the other methods are synchronous and tested without the thread.
//!
//! Invariant: `self.active` describes the active file including unflushed frames in
//! `self.buf`; `self.published` is the checkpoint of what is durable and visible to readers.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::frame::{self, frame_len};
use super::segment::{self, Checkpoint, FileKind, SegmentMeta, Segments};
use super::{LogConfig, LogError, Shared, now_ms};

/// A message to the writer thread.
#[derive(Debug)]
pub(crate) enum Command {
    Append {
        record: (Bytes, i64),
        reply: oneshot::Sender<Result<u64, LogError>>,
    },
    AppendBatch {
        records: Vec<(Bytes, i64)>,
        reply: oneshot::Sender<Result<Range<u64>, LogError>>,
    },
    Control(Control),
}

/// A command other than an append; it runs after the appends queued before it.
#[derive(Debug)]
pub(crate) enum Control {
    EnforceRetention {
        now_ms: i64,
        reply: Option<oneshot::Sender<u64>>,
    },
    TruncateBefore {
        offset: u64,
        reply: oneshot::Sender<u64>,
    },
    Roll {
        reply: oneshot::Sender<Result<u64, LogError>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// An append waiting for the next commit.
#[derive(Debug)]
enum Waiter {
    One {
        record: (Bytes, i64),
        reply: oneshot::Sender<Result<u64, LogError>>,
    },
    Many {
        records: Vec<(Bytes, i64)>,
        reply: oneshot::Sender<Result<Range<u64>, LogError>>,
    },
}

impl Waiter {
    fn records(&self) -> &[(Bytes, i64)] {
        match self {
            Self::One { record, .. } => std::slice::from_ref(record),
            Self::Many { records, .. } => records,
        }
    }

    fn resolve(self, result: Result<Range<u64>, LogError>) {
        // A waiter that stopped waiting is not an error: its records are durable regardless.
        match self {
            Self::One { reply, .. } => {
                let _ = reply.send(result.map(|r| r.start));
            }
            Self::Many { reply, .. } => {
                let _ = reply.send(result);
            }
        }
    }
}

/// The writer's state. See the module doc.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
    config: LogConfig,
    committed: watch::Sender<u64>,
    file: File,
    active: SegmentMeta,
    published: Checkpoint,
    buf: Vec<u8>,
    poisoned: bool,
    /// Holds the advisory lock on `LOCK` while the writer lives.
    _lock: File,
}

impl Writer {
    /// Opens (or creates) the log in `dir` and recovers it; see "Recovery" in the module doc.
    pub fn open(
        dir: &Path,
        config: LogConfig,
    ) -> Result<(Self, Arc<Shared>, watch::Receiver<u64>), LogError> {
        fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let lock = lock_dir(dir)?;
        let (mut bases, indexes) = list_dir(dir)?;
        for orphan in indexes.iter().filter(|b| bases.binary_search(b).is_err()) {
            remove_file(&segment::index_path(dir, *orphan));
        }
        if bases.is_empty() {
            File::create(segment::log_path(dir, 0)).map_err(|e| LogError::io(dir, e))?;
            sync_dir(dir)?;
            bases.push(0);
        }
        let last = bases.pop().unwrap_or_default();
        let interval = config.index_interval_bytes;
        let sealed = bases
            .iter()
            .map(|&base| load_sealed(dir, base, interval))
            .collect::<Result<Vec<_>, _>>()?;
        let (file, active) = recover_active(dir, last, interval)?;
        let mut segments = Segments::new(sealed, active.clone());
        for base in segments.clamp_overlaps() {
            tracing::warn!(segment = %segment::log_path(dir, base).display(), "segment overlaps the next one; its extra records are ignored");
        }
        let (committed, rx) = watch::channel(active.end);
        let shared = Arc::new(Shared::new(dir.to_owned(), segments));
        let published = active.checkpoint();
        let writer = Self {
            shared: Arc::clone(&shared),
            config,
            committed,
            file,
            active,
            published,
            buf: Vec::new(),
            poisoned: false,
            _lock: lock,
        };
        Ok((writer, shared, rx))
    }

    /// The writer thread: group-commits appends and runs control commands until the mailbox
    /// closes or a `Close` arrives.
    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut waiters = Vec::new();
        let close = loop {
            let Some(first) = rx.blocking_recv() else {
                break None;
            };
            let control = self.gather(first, &mut rx, &mut waiters);
            self.commit(&mut waiters);
            if let Some(close) = control.and_then(|c| self.control(c)) {
                break Some(close);
            }
        };
        drop(rx);
        drop(self);
        if let Some(reply) = close {
            let _ = reply.send(());
        }
    }

    /// Moves appends from the mailbox into `waiters`, starting with `first`, until the mailbox
    /// is empty or the batch is full; returns the first non-append command met.
    fn gather(
        &self,
        first: Command,
        rx: &mut mpsc::Receiver<Command>,
        waiters: &mut Vec<Waiter>,
    ) -> Option<Control> {
        let (mut records, mut bytes) = (0, 0);
        let mut next = first;
        loop {
            let waiter = match next {
                Command::Append { record, reply } => Waiter::One { record, reply },
                Command::AppendBatch { records, reply } => Waiter::Many { records, reply },
                Command::Control(control) => return Some(control),
            };
            records += waiter.records().len();
            bytes += waiter.records().iter().map(|(p, _)| p.len()).sum::<usize>();
            waiters.push(waiter);
            if records >= self.config.max_batch_records || bytes >= self.config.max_batch_bytes {
                return None;
            }
            next = rx.try_recv().ok()?;
        }
    }

    /// Commits the waiting appends and resolves them.
    fn commit(&mut self, waiters: &mut Vec<Waiter>) {
        if waiters.is_empty() {
            return;
        }
        let groups: Vec<&[(Bytes, i64)]> = waiters.iter().map(Waiter::records).collect();
        let results = self.append_groups(&groups);
        for (waiter, result) in waiters.drain(..).zip(results) {
            waiter.resolve(result);
        }
    }

    /// Runs a control command; returns the reply of a `Close`, which is sent once the writer
    /// has stopped.
    fn control(&mut self, control: Control) -> Option<oneshot::Sender<()>> {
        match control {
            Control::EnforceRetention { now_ms, reply } => {
                let start = self.enforce_retention(now_ms);
                if let Some(reply) = reply {
                    let _ = reply.send(start);
                }
                None
            }
            Control::TruncateBefore { offset, reply } => {
                let _ = reply.send(self.truncate_before(offset));
                None
            }
            Control::Roll { reply } => {
                let _ = reply.send(self.roll_if_written());
                None
            }
            Control::Close { reply } => Some(reply),
        }
    }

    /// Appends each group (one caller's records) durably, each group within one segment, and
    /// returns one result per group: its offsets, or why it was not committed.
    pub fn append_groups(
        &mut self,
        groups: &[&[(Bytes, i64)]],
    ) -> Vec<Result<Range<u64>, LogError>> {
        let mut ranges = Vec::with_capacity(groups.len());
        let mut results = Vec::with_capacity(groups.len());
        let mut failure = None;
        for group in groups {
            if self.poisoned {
                failure = Some(LogError::Poisoned);
                break;
            }
            let bytes: u64 = group.iter().map(|(p, _)| frame_len(p.len()) as u64).sum();
            if self.active.size > 0 && self.active.size + bytes > self.config.segment_max_bytes {
                let flushed = self.flush();
                settle(&mut results, &ranges, flushed.as_ref().err());
                if let Err(e) = flushed.and_then(|()| self.roll()) {
                    failure = Some(e);
                    break;
                }
            }
            let first = self.active.end;
            for (payload, timestamp_ms) in *group {
                frame::encode(&mut self.buf, self.active.end, *timestamp_ms, payload);
                let len = frame_len(payload.len()) as u64;
                self.active
                    .push(*timestamp_ms, len, self.config.index_interval_bytes);
            }
            ranges.push(first..self.active.end);
        }
        let flushed = match failure {
            Some(e) => Err(e),
            None => self.flush(),
        };
        settle(&mut results, &ranges, flushed.as_ref().err());
        let rest = flushed.err().unwrap_or(LogError::Poisoned);
        results.resize(groups.len(), Err(rest));
        results
    }

    /// Writes and syncs the buffered frames, then publishes them to readers.
    fn flush(&mut self) -> Result<(), LogError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&self.buf);
        self.buf.clear();
        if let Err(e) = written {
            self.active.rollback(self.published);
            if let Err(undo) = self.file.set_len(self.published.size) {
                tracing::error!(path = %self.path().display(), error = %undo, "cannot roll back a failed write; the log stops accepting appends");
                self.poisoned = true;
            }
            return Err(LogError::io(self.path(), e));
        }
        if let Err(e) = self.file.sync_data() {
            tracing::error!(path = %self.path().display(), error = %e, "fdatasync failed; the log stops accepting appends");
            self.active.rollback(self.published);
            self.poisoned = true;
            return Err(LogError::io(self.path(), e));
        }
        let mut segments = self.shared.segments();
        self.active
            .publish_into(segments.active_mut(), self.published);
        self.shared.publish_bounds(&segments);
        drop(segments);
        self.published = self.active.checkpoint();
        self.committed.send_replace(self.active.end);
        Ok(())
    }

    /// Seals the active segment if it holds records (on request: see
    /// [`super::LogHandle::roll`]); returns the end offset. Appends are committed before any
    /// control command runs, so the active segment is flushed here.
    pub fn roll_if_written(&mut self) -> Result<u64, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        if self.active.size > 0 {
            self.roll()?;
        }
        Ok(self.active.end)
    }

    /// Seals the active segment (which is flushed) and starts a new one, then applies
    /// retention.
    fn roll(&mut self) -> Result<(), LogError> {
        let dir = &self.shared.dir;
        let base = self.active.end;
        let path = segment::log_path(dir, base);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|f| f.set_len(0).map(|()| f))
            .map_err(|e| LogError::io(&path, e))?;
        sync_dir(dir)?;
        if let Err(e) = segment::write_index(dir, &self.active) {
            tracing::warn!(segment = %self.path().display(), error = %e, "cannot write the sidecar index; it will be rebuilt on open");
        }
        self.shared.segments().roll(base);
        self.file = file;
        self.active = SegmentMeta::new(base);
        self.published = self.active.checkpoint();
        self.enforce_retention(now_ms());
        Ok(())
    }

    /// Deletes the sealed segments that retention expires as of `now_ms`; returns the new start.
    pub fn enforce_retention(&mut self, now_ms: i64) -> u64 {
        let retention = self
            .config
            .retention
            .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX));
        let cutoff = retention.map(|r| now_ms.saturating_sub(r));
        let max_bytes = self.config.max_total_bytes;
        self.delete_front(|segs| segs.expired(cutoff, max_bytes), "retention")
    }

    /// Deletes the sealed segments below `offset`; returns the new start.
    pub fn truncate_before(&mut self, offset: u64) -> u64 {
        self.delete_front(|segs| segs.below(offset), "truncate")
    }

    fn delete_front(&mut self, count: impl FnOnce(&Segments) -> usize, why: &str) -> u64 {
        let (bases, start) = {
            let mut segs = self.shared.segments();
            let n = count(&segs);
            let bases = segs.remove_front(n);
            self.shared.publish_bounds(&segs);
            (bases, segs.start())
        };
        for base in &bases {
            remove_file(&segment::log_path(&self.shared.dir, *base));
            remove_file(&segment::index_path(&self.shared.dir, *base));
        }
        if !bases.is_empty() {
            tracing::info!(dir = %self.shared.dir.display(), deleted = bases.len(), start, why, "deleted log segments");
        }
        start
    }

    fn path(&self) -> PathBuf {
        segment::log_path(&self.shared.dir, self.active.base)
    }
}

/// Resolves the groups of `ranges` that have no result yet: all succeeded, or all failed.
fn settle(
    results: &mut Vec<Result<Range<u64>, LogError>>,
    ranges: &[Range<u64>],
    error: Option<&LogError>,
) {
    for range in &ranges[results.len()..] {
        results.push(error.map_or_else(|| Ok(range.clone()), |e| Err(e.clone())));
    }
}

fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io(&path, e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(LogError::Locked {
            path: dir.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(LogError::io(&path, e)),
    }
}

/// The bases of the segment files and of the sidecars in `dir`, each sorted.
fn list_dir(dir: &Path) -> Result<(Vec<u64>, Vec<u64>), LogError> {
    let (mut logs, mut indexes) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        match entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        {
            Some(FileKind::Log(base)) => logs.push(base),
            Some(FileKind::Index(base)) => indexes.push(base),
            None => {}
        }
    }
    logs.sort_unstable();
    indexes.sort_unstable();
    Ok((logs, indexes))
}

/// Loads a sealed segment's summary from its sidecar, or scans it (and rewrites the sidecar).
fn load_sealed(dir: &Path, base: u64, interval: u64) -> Result<SegmentMeta, LogError> {
    let path = segment::log_path(dir, base);
    let len = fs::metadata(&path)
        .map_err(|e| LogError::io(&path, e))?
        .len();
    if let Some(meta) = segment::read_index(dir, base, len) {
        return Ok(meta);
    }
    let scan = segment::scan(&path, base, interval).map_err(|e| LogError::io(&path, e))?;
    if let Some(reason) = scan.damage {
        tracing::warn!(segment = %path.display(), position = scan.meta.size, %reason, "sealed segment is damaged; the records from there on are skipped");
    }
    if let Err(e) = segment::write_index(dir, &scan.meta) {
        tracing::warn!(segment = %path.display(), error = %e, "cannot write the sidecar index");
    }
    Ok(scan.meta)
}

/// Scans the active segment, truncates a torn tail and opens it for appending.
fn recover_active(dir: &Path, base: u64, interval: u64) -> Result<(File, SegmentMeta), LogError> {
    let path = segment::log_path(dir, base);
    remove_file(&segment::index_path(dir, base));
    let scan = segment::scan(&path, base, interval).map_err(|e| LogError::io(&path, e))?;
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| LogError::io(&path, e))?;
    if let Some(reason) = scan.damage {
        let len = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        tracing::error!(segment = %path.display(), position = scan.meta.size, dropped_bytes = len - scan.meta.size, %reason, "truncating the torn tail of the active segment");
        file.set_len(scan.meta.size)
            .map_err(|e| LogError::io(&path, e))?;
        file.sync_data().map_err(|e| LogError::io(&path, e))?;
    }
    Ok((file, scan.meta))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Removes a file the log no longer needs; one that is already gone is fine.
fn remove_file(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot delete a log file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LogConfig {
        LogConfig {
            segment_max_bytes: 200,
            index_interval_bytes: 64,
            retention: None,
            ..LogConfig::default()
        }
    }

    fn records(n: usize, ts: i64) -> Vec<(Bytes, i64)> {
        (0..n)
            .map(|i| (Bytes::from(format!("record {i}")), ts))
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<u64> {
        list_dir(dir).unwrap().0
    }

    #[test]
    fn groups_get_consecutive_ranges_and_stay_in_one_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, shared, rx) = Writer::open(dir.path(), config()).unwrap();
        let (a, b, c) = (records(3, 1), records(4, 2), records(3, 3));
        let results = w.append_groups(&[&a, &b, &c]);
        let ranges: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(ranges, [0..3, 3..7, 7..10]);
        assert_eq!(*rx.borrow(), 10);
        // 32-byte frames, 200-byte segments: a group never straddles a roll.
        assert_eq!(segment_files(dir.path()), [0, 3, 7]);
        assert_eq!(shared.segments().start(), 0);
    }

    #[test]
    fn reopen_recovers_end_and_truncates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _, _) = Writer::open(dir.path(), config()).unwrap();
        assert!(w.append_groups(&[&records(2, 5)]).iter().all(Result::is_ok));
        drop(w);
        let path = segment::log_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&[1, 2, 3]);
        fs::write(&path, bytes).unwrap();
        let (mut w, _, rx) = Writer::open(dir.path(), config()).unwrap();
        assert_eq!(*rx.borrow(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        assert_eq!(w.append_groups(&[&records(1, 6)])[0].clone().unwrap(), 2..3);
    }

    #[test]
    fn a_second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _w = Writer::open(dir.path(), config()).unwrap();
        assert!(matches!(
            Writer::open(dir.path(), config()),
            Err(LogError::Locked { .. })
        ));
    }

    #[test]
    fn retention_and_truncation_delete_sealed_prefixes_only() {
        let dir = tempfile::tempdir().unwrap();
        let hour = std::time::Duration::from_hours(1);
        let (mut w, shared, _) = Writer::open(
            dir.path(),
            LogConfig {
                retention: Some(hour),
                ..config()
            },
        )
        .unwrap();
        for ts in [now_ms() - 7_200_000, now_ms(), now_ms()] {
            w.append_groups(&[&records(5, ts)]);
        }
        // The roll to segment 5 expired segment 0 by the wall clock.
        assert_eq!(segment_files(dir.path()), [5, 10]);
        assert_eq!(shared.segments().start(), 5);
        assert_eq!(w.truncate_before(9), 5);
        assert_eq!(w.truncate_before(10), 10);
        assert_eq!(
            w.enforce_retention(i64::MAX),
            10,
            "the active segment stays"
        );
        assert_eq!(segment_files(dir.path()), [10]);
    }

    #[test]
    fn roll_seals_a_written_active_segment_so_truncation_can_empty_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, shared, _) = Writer::open(dir.path(), config()).unwrap();
        assert_eq!(
            w.roll_if_written().unwrap(),
            0,
            "an empty segment is not sealed"
        );
        assert_eq!(segment_files(dir.path()), [0]);
        w.append_groups(&[&records(2, 1)]);
        assert!(shared.total_bytes() > 0);
        assert_eq!(w.roll_if_written().unwrap(), 2);
        assert_eq!(segment_files(dir.path()), [0, 2]);
        assert_eq!(w.truncate_before(2), 2);
        assert_eq!(segment_files(dir.path()), [2]);
        assert_eq!(shared.total_bytes(), 0);
    }

    #[test]
    fn a_poisoned_writer_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _, _) = Writer::open(dir.path(), config()).unwrap();
        w.poisoned = true;
        let results = w.append_groups(&[&records(1, 0), &records(1, 0)]);
        assert!(results.iter().all(|r| matches!(r, Err(LogError::Poisoned))));
    }
}
