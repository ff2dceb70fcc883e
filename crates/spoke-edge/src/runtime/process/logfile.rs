//! Captured output of a process module: size-rotated files plus a live feed for followers.
//!
//! On-disk format (`<module dir>/logs/`): `current.log` is being written; `current.log.1` is
//! the previous file, up to `current.log.<max_files>` (the oldest); older files are deleted.
//! Each line of a file is one record:
//!
//! ```text
//! <RFC 3339 UTC timestamp> <O|E> <line bytes>\n
//! ```
//!
//! `O` is stdout, `E` stderr; the line bytes never contain `\n` (output is split at newlines,
//! and at [`MAX_LINE`] bytes for very long lines). Records that do not parse are skipped on read.
//!
//! Invariants: records are appended and broadcast under one lock, so a follower that reads the
//! history and subscribes under that lock sees every record exactly once; a file is rotated
//! only between records, before it would exceed `max_bytes` (a single record longer than that
//! gets a file of its own).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast;

use crate::runtime::types::{LogEntry, LogOptions, LogSource};

/// Output lines longer than this are split into several records.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// How many live records a follower may fall behind before it misses some.
const LIVE_CAPACITY: usize = 1024;

/// Name of the file being written.
const CURRENT: &str = "current.log";

/// Size-based rotation of a process module's log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// Rotate `current.log` before it would grow past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files to keep besides `current.log`.
    pub max_files: usize,
}

impl Default for LogRotation {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_files: 3,
        }
    }
}

/// Formats one record, newline included.
pub(crate) fn format_record(entry: &LogEntry) -> Vec<u8> {
    let stamp = entry
        .timestamp
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(stamp.len() + entry.line.len() + 4);
    out.extend_from_slice(stamp.as_bytes());
    out.extend_from_slice(match entry.source {
        LogSource::Stdout => b" O ",
        LogSource::Stderr => b" E ",
    });
    out.extend_from_slice(&entry.line);
    out.push(b'\n');
    out
}

/// Parses one record without its newline.
pub(crate) fn parse_record(record: &[u8]) -> Option<LogEntry> {
    let space = record.iter().position(|&b| b == b' ')?;
    let stamp = std::str::from_utf8(&record[..space]).ok()?;
    // Kept in UTC, as written; an instant whose UTC year has no RFC 3339 form is rejected.
    let timestamp = OffsetDateTime::parse(stamp, &Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&timestamp.year()) {
        return None;
    }
    let rest = &record[space + 1..];
    let source = match rest.get(..2)? {
        b"O " => LogSource::Stdout,
        b"E " => LogSource::Stderr,
        _ => return None,
    };
    let line = &rest[2..];
    if line.contains(&b'\n') {
        return None;
    }
    Some(LogEntry {
        source,
        timestamp,
        line: Bytes::copy_from_slice(line),
    })
}

/// The log files and live feed of one module.
pub(crate) struct LogSink {
    state: Mutex<SinkState>,
}

struct SinkState {
    dir: PathBuf,
    rotation: LogRotation,
    /// Open `current.log` and its size; opened lazily.
    file: Option<(File, u64)>,
    /// The live feed while a run is capturing output.
    live: Option<broadcast::Sender<LogEntry>>,
}

/// The history a reader asked for, and the live feed to follow after it.
pub(crate) struct LogSnapshot {
    /// Records from the files, oldest first, filtered by the options.
    pub history: Vec<LogEntry>,
    /// New records, when following a module that is running.
    pub live: Option<broadcast::Receiver<LogEntry>>,
}

impl LogSink {
    /// A sink writing into `dir`, which must exist.
    pub(crate) fn new(dir: PathBuf, rotation: LogRotation) -> Self {
        Self {
            state: Mutex::new(SinkState {
                dir,
                rotation,
                file: None,
                live: None,
            }),
        }
    }

    /// Opens the live feed for a new run.
    pub(crate) fn begin_run(&self) {
        self.lock().live = Some(broadcast::channel(LIVE_CAPACITY).0);
    }

    /// Closes the live feed: followers' streams end after what they have received.
    pub(crate) fn end_run(&self) {
        let mut state = self.lock();
        state.live = None;
        state.file = None;
    }

    /// Appends one record and sends it to followers. A write failure is logged and the
    /// record still goes to followers: losing log lines must never stop a module.
    pub(crate) fn append(&self, entry: LogEntry) {
        let mut state = self.lock();
        if let Err(error) = state.write(&format_record(&entry)) {
            tracing::warn!(%error, dir = %state.dir.display(), "writing module log failed");
            state.file = None;
        }
        if let Some(live) = &state.live {
            // No receivers is fine.
            let _ = live.send(entry);
        }
    }

    /// Reads the history and, if `options.follow`, subscribes to the live feed, atomically
    /// with respect to [`LogSink::append`]. Blocking (reads files).
    pub(crate) fn snapshot(&self, options: &LogOptions) -> io::Result<LogSnapshot> {
        let state = self.lock();
        let history = read_history(&state.dir, state.rotation.max_files, options)?;
        let live = if options.follow {
            state.live.as_ref().map(broadcast::Sender::subscribe)
        } else {
            None
        };
        Ok(LogSnapshot { history, live })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SinkState {
    fn write(&mut self, record: &[u8]) -> io::Result<()> {
        let len = record.len() as u64;
        let size = if let Some((_, size)) = &self.file {
            *size
        } else {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(CURRENT))?;
            let size = file.metadata()?.len();
            self.file = Some((file, size));
            size
        };
        if size > 0 && size + len > self.rotation.max_bytes {
            self.file = None;
            rotate(&self.dir, self.rotation.max_files)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(CURRENT))?;
            self.file = Some((file, 0));
        }
        if let Some((file, size)) = &mut self.file {
            file.write_all(record)?;
            *size += len;
        }
        Ok(())
    }
}

/// Path of rotated file `n` (0 is `current.log`).
fn file_path(dir: &Path, n: usize) -> PathBuf {
    if n == 0 {
        dir.join(CURRENT)
    } else {
        dir.join(format!("{CURRENT}.{n}"))
    }
}

/// Shifts `current.log.k` to `.k+1` (dropping the oldest) and `current.log` to `.1`.
fn rotate(dir: &Path, max_files: usize) -> io::Result<()> {
    if max_files == 0 {
        return remove_if_exists(&file_path(dir, 0));
    }
    remove_if_exists(&file_path(dir, max_files))?;
    for n in (0..max_files).rev() {
        match fs::rename(file_path(dir, n), file_path(dir, n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The records of all files, oldest first, after `since`, and only the last `tail`.
fn read_history(dir: &Path, max_files: usize, options: &LogOptions) -> io::Result<Vec<LogEntry>> {
    let limit = options.tail.unwrap_or(usize::MAX);
    let mut kept = VecDeque::new();
    if limit == 0 {
        return Ok(Vec::new());
    }
    for n in (0..=max_files).rev() {
        let data = match fs::read(file_path(dir, n)) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in data.split(|&b| b == b'\n').filter_map(parse_record) {
            if options.since.is_some_and(|since| entry.timestamp < since) {
                continue;
            }
            if kept.len() == limit {
                kept.pop_front();
            }
            kept.push_back(entry);
        }
    }
    Ok(kept.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str, source: LogSource, secs: i64) -> LogEntry {
        LogEntry {
            source,
            timestamp: OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + time::Duration::nanoseconds(123_456_789),
            line: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    fn lines(entries: &[LogEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect()
    }

    #[test]
    fn records_round_trip() {
        for e in [
            entry("hello world", LogSource::Stdout, 1_700_000_000),
            entry("", LogSource::Stderr, 0),
            entry("a\r b \u{7f}", LogSource::Stderr, 2_000_000_000),
        ] {
            let record = format_record(&e);
            assert_eq!(record.last(), Some(&b'\n'));
            assert_eq!(parse_record(&record[..record.len() - 1]), Some(e));
        }
        assert_eq!(parse_record(b"not a record"), None);
        assert_eq!(parse_record(b"2024-01-01T00:00:00Z X hi"), None);
    }

    #[test]
    fn rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink::new(
            dir.path().to_owned(),
            LogRotation {
                max_bytes: 200,
                max_files: 2,
            },
        );
        for i in 0..40 {
            sink.append(entry(
                &format!("line {i:02}"),
                LogSource::Stdout,
                1_700_000_000,
            ));
        }
        // Each record is ~48 bytes, so 4 fit per file: 10 files written, 3 kept.
        assert!(dir.path().join("current.log.2").exists());
        assert!(!dir.path().join("current.log.3").exists());
        for n in 0..=2 {
            let len = fs::metadata(file_path(dir.path(), n)).unwrap().len();
            assert!(len <= 200, "file {n} has {len} bytes");
        }
        let all = sink.snapshot(&LogOptions::default()).unwrap().history;
        let got = lines(&all);
        assert_eq!(got.last().map(String::as_str), Some("line 39"));
        let first: usize = got[0][5..].parse().unwrap();
        let expected: Vec<String> = (first..40).map(|i| format!("line {i:02}")).collect();
        assert_eq!(got, expected, "history is contiguous and ordered");
    }

    #[test]
    fn tail_and_since_filter_history() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink::new(dir.path().to_owned(), LogRotation::default());
        for i in 0..5 {
            sink.append(entry(&format!("{i}"), LogSource::Stderr, 100 + i));
        }
        let tail = LogOptions {
            tail: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(lines(&sink.snapshot(&tail).unwrap().history), ["3", "4"]);
        let since = LogOptions {
            since: Some(OffsetDateTime::from_unix_timestamp(102).unwrap()),
            ..LogOptions::default()
        };
        assert_eq!(
            lines(&sink.snapshot(&since).unwrap().history),
            ["2", "3", "4"]
        );
        let none = LogOptions {
            tail: Some(0),
            ..LogOptions::default()
        };
        assert!(sink.snapshot(&none).unwrap().history.is_empty());
    }

    #[test]
    fn followers_get_live_records_until_the_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink::new(dir.path().to_owned(), LogRotation::default());
        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        assert!(
            sink.snapshot(&follow).unwrap().live.is_none(),
            "not running"
        );
        sink.begin_run();
        sink.append(entry("before", LogSource::Stdout, 1));
        let mut snap = sink.snapshot(&follow).unwrap();
        sink.append(entry("after", LogSource::Stdout, 2));
        sink.end_run();
        assert_eq!(lines(&snap.history), ["before"]);
        let live = snap.live.as_mut().unwrap();
        assert_eq!(&live.try_recv().unwrap().line[..], b"after");
        assert!(matches!(
            live.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
    }
}
