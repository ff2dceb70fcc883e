//! Readers: following the log from an offset, and finding the offset for a time.
//!
//! Owns: [`Reader`] (its position, a buffer of records read ahead, and an open segment file)
//! and the lookup behind [`super::LogHandle::offset_for_time`].
//!
//! A reader reads segment files through its own file handle on tokio's blocking pool and
//! takes the shared segment-list lock only to find where an offset is. It never returns a
//! record at or past the committed end it loaded *before* reading, and every record below
//! that end was completely written and synced before the end was published, so readers see
//! neither torn nor unacknowledged records and never wait for the writer.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::frame::{self, CorruptReason, Decoded, HEADER_LEN};
use super::segment::{self, IndexEntry, Location};
use super::{LogError, Record, Shared};

/// Bytes of records a reader reads ahead in one blocking call.
const READ_AHEAD: usize = 256 << 10;

/// What a [`Reader`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEvent {
    /// The next record.
    Record(Record),
    /// Records `from..to` cannot be read and were skipped: deleted by retention or
    /// truncation before the reader got to them, or unreadable because of damage (which was
    /// reported as [`LogError::Corrupt`] just before). The reader continues at `to`.
    Skipped {
        /// The first skipped offset.
        from: u64,
        /// The offset the reader continues at.
        to: u64,
    },
}

/// Follows the log from an offset, like `tail -f`. Created by
/// [`super::LogHandle::read_from`]. Both `next` methods are cancel-safe: a dropped call loses
/// no record.
#[derive(Debug)]
pub struct Reader {
    shared: Arc<Shared>,
    committed: watch::Receiver<u64>,
    /// The offset of the next record to hand out.
    position: u64,
    /// Records read ahead, from `position` on.
    buffered: VecDeque<Record>,
    /// The segment being read, positioned after the last buffered record.
    cursor: Option<Cursor>,
    /// A read error to report once the records read before it are handed out, and where
    /// to continue after it.
    failed: Option<(LogError, u64)>,
    /// Where to continue after a reported error.
    skip_to: Option<u64>,
}

enum Step {
    Event(ReadEvent),
    CaughtUp,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, committed: watch::Receiver<u64>, offset: u64) -> Self {
        Self {
            shared,
            committed,
            position: offset,
            buffered: VecDeque::new(),
            cursor: None,
            failed: None,
            skip_to: None,
        }
    }

    /// The offset of the next record this reader will return (if it is not skipped).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next record or skip, waiting for new records at the end of the log. Returns
    /// `Ok(None)` once the log is closed and every committed record was returned.
    pub async fn next(&mut self) -> Result<Option<ReadEvent>, LogError> {
        loop {
            if let Step::Event(event) = self.step().await? {
                return Ok(Some(event));
            }
            let position = self.position;
            if self
                .committed
                .wait_for(|&end| end > position)
                .await
                .is_err()
            {
                return Ok(None);
            }
        }
    }

    /// The next record or skip if one is committed, else `Ok(None)` without waiting.
    pub async fn try_next(&mut self) -> Result<Option<ReadEvent>, LogError> {
        match self.step().await? {
            Step::Event(event) => Ok(Some(event)),
            Step::CaughtUp => Ok(None),
        }
    }

    async fn step(&mut self) -> Result<Step, LogError> {
        loop {
            let start = self.shared.start();
            if self.buffered.front().is_some_and(|r| r.offset < start) {
                // Read ahead from a segment deleted since: jump like an unbuffered reader.
                self.buffered.clear();
                if let Some(skipped) = self.skip(start) {
                    return Ok(Step::Event(skipped));
                }
            }
            if let Some(record) = self.buffered.pop_front() {
                self.position = record.offset + 1;
                return Ok(Step::Event(ReadEvent::Record(record)));
            }
            if let Some((error, to)) = self.failed.take() {
                self.skip_to = Some(to);
                return Err(error);
            }
            if let Some(to) = self.skip_to.take()
                && let Some(skipped) = self.skip(to)
            {
                return Ok(Step::Event(skipped));
            }
            // Load the end before reading: everything below it is complete on disk.
            let limit = *self.committed.borrow_and_update();
            if self.position >= limit {
                return Ok(Step::CaughtUp);
            }
            let cursor = match self.cursor.take() {
                Some(c) if c.base >= start => c,
                _ => match self.locate() {
                    Location::Deleted { start: to } | Location::Hole { to } => {
                        if let Some(skipped) = self.skip(to) {
                            return Ok(Step::Event(skipped));
                        }
                        continue;
                    }
                    // Unreachable while the segment list is updated before the end is
                    // published; waiting is the safe answer regardless.
                    Location::Pending => return Ok(Step::CaughtUp),
                    Location::Segment { base, entry, end } => {
                        match Cursor::open(&self.shared.dir, base, entry, end) {
                            Ok(cursor) => cursor,
                            // Deleted since the lookup: the next lookup says so.
                            Err(_) if self.shared.start() > base => continue,
                            Err(e) => {
                                self.skip_to = Some(self.after(base, limit));
                                return Err(e);
                            }
                        }
                    }
                },
            };
            self.read_ahead(cursor, limit).await?;
        }
    }

    fn locate(&self) -> Location {
        self.shared.segments().locate(self.position)
    }

    /// Moves the position forward to `to`, returning the skip to report if it moved.
    fn skip(&mut self, to: u64) -> Option<ReadEvent> {
        self.cursor = None;
        let from = self.position;
        (to > from).then(|| {
            self.position = to;
            ReadEvent::Skipped { from, to }
        })
    }

    /// Where a reader continues after damage in segment `base`.
    fn after(&self, base: u64, limit: u64) -> u64 {
        self.shared.segments().next_base(base).unwrap_or(limit)
    }

    async fn read_ahead(&mut self, cursor: Cursor, limit: u64) -> Result<(), LogError> {
        let from = self.position;
        let (cursor, chunk) = tokio::task::spawn_blocking(move || {
            let mut cursor = cursor;
            let chunk = cursor.read(from, limit, READ_AHEAD);
            (cursor, chunk)
        })
        .await
        .map_err(|_| LogError::Closed)?;
        self.buffered.extend(chunk.records);
        match chunk.end {
            ChunkEnd::More => self.cursor = Some(cursor),
            ChunkEnd::SegmentDone => {}
            // Sealed since the lookup: the rest is in the next segment.
            ChunkEnd::FileEnd if self.shared.segments().next_base(cursor.base).is_some() => {}
            // Still active, yet committed records are missing: damage, not a race.
            ChunkEnd::FileEnd => {
                self.failed = Some((cursor.corrupt(CorruptReason::Truncated), limit));
            }
            ChunkEnd::Failed(error) => self.failed = Some((error, self.after(cursor.base, limit))),
        }
        Ok(())
    }
}

/// Finds the first retained offset whose timestamp is at least `timestamp_ms`; see the
/// module doc of [`super`] ("Time").
pub(crate) async fn offset_for_time(
    shared: &Arc<Shared>,
    committed: &watch::Receiver<u64>,
    timestamp_ms: i64,
) -> Result<u64, LogError> {
    let mut from = 0;
    loop {
        let found = {
            let segments = shared.segments();
            segments
                .time_chunk(timestamp_ms, from)
                .ok_or_else(|| segments.end())
        };
        let chunk = match found {
            Ok(chunk) => chunk,
            Err(end) => return Ok(end.max(*committed.borrow())),
        };
        let dir = shared.dir.clone();
        let scan = tokio::task::spawn_blocking(move || {
            let mut cursor = Cursor::open(&dir, chunk.base, chunk.entry, Some(chunk.end))?;
            let read = cursor.read(chunk.entry.offset, chunk.end, usize::MAX);
            let hit = read.records.iter().find(|r| r.timestamp_ms >= timestamp_ms);
            match (hit, read.end) {
                (Some(record), _) => Ok(Some(record.offset)),
                (None, ChunkEnd::Failed(e)) => Err(e),
                (None, _) => Ok(None),
            }
        })
        .await
        .map_err(|_| LogError::Closed)?;
        match scan {
            Ok(Some(offset)) => return Ok(offset),
            Ok(None) => {}
            Err(e @ LogError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "skipping a damaged chunk in a time lookup");
            }
            // Deleted since the lookup.
            Err(_) if shared.start() > chunk.base => {}
            Err(e) => return Err(e),
        }
        from = chunk.end;
    }
}

/// An open segment file and the position of the next record to read in it.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    file: File,
    base: u64,
    /// Byte position and offset of the next frame.
    pos: u64,
    offset: u64,
    /// One past the segment's last valid record, `None` for the active segment.
    end: Option<u64>,
}

/// Records read in one call, and why the call stopped.
#[derive(Debug)]
struct Chunk {
    records: Vec<Record>,
    end: ChunkEnd,
}

#[derive(Debug)]
enum ChunkEnd {
    /// Stopped at the read-ahead budget or the committed end.
    More,
    /// The segment has no more records.
    SegmentDone,
    /// The active segment's file ended before the committed end: it was sealed meanwhile
    /// (or is damaged).
    FileEnd,
    /// The segment is damaged or unreadable here.
    Failed(LogError),
}

impl Cursor {
    fn open(dir: &Path, base: u64, entry: IndexEntry, end: Option<u64>) -> Result<Self, LogError> {
        let path = segment::log_path(dir, base);
        let file = File::open(&path).map_err(|e| LogError::io(&path, e))?;
        Ok(Self {
            path,
            file,
            base,
            pos: entry.pos,
            offset: entry.offset,
            end,
        })
    }

    /// Reads records below `limit` (and the segment end), returning those at or after `from`,
    /// until about `budget` bytes are read.
    fn read(&mut self, from: u64, limit: u64, budget: usize) -> Chunk {
        let stop = self.end.map_or(limit, |end| end.min(limit));
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let (mut block, mut block_pos, mut block_short) = (Bytes::new(), self.pos, false);
        let end = loop {
            if self.offset >= stop {
                break if self.end == Some(self.offset) {
                    ChunkEnd::SegmentDone
                } else {
                    ChunkEnd::More
                };
            }
            if bytes >= budget {
                break ChunkEnd::More;
            }
            let at = (self.pos - block_pos) as usize;
            match frame::decode(&block[at..]) {
                Decoded::Frame(h) if h.offset != self.offset => {
                    let found = h.offset;
                    break self.damaged(CorruptReason::OffsetMismatch {
                        expected: self.offset,
                        found,
                    });
                }
                Decoded::Frame(h) => {
                    if h.offset >= from {
                        let payload = block.slice(at + HEADER_LEN..at + h.frame_len);
                        records.push(Record {
                            offset: h.offset,
                            timestamp_ms: h.timestamp_ms,
                            payload,
                        });
                        bytes += h.frame_len;
                    }
                    self.pos += h.frame_len as u64;
                    self.offset += 1;
                }
                // The file ends here: the active segment was sealed, or a sealed one is short.
                Decoded::Incomplete(_) if block_short => {
                    break match self.end {
                        None => ChunkEnd::FileEnd,
                        Some(_) => self.damaged(CorruptReason::Truncated),
                    };
                }
                Decoded::Incomplete(needed) => match read_block(&self.file, self.pos, needed) {
                    Ok((fresh, short)) => {
                        (block, block_pos, block_short) = (fresh, self.pos, short);
                    }
                    Err(e) => break ChunkEnd::Failed(LogError::io(&self.path, e)),
                },
                Decoded::Corrupt(reason) => break self.damaged(reason),
            }
        };
        Chunk { records, end }
    }

    fn damaged(&self, reason: CorruptReason) -> ChunkEnd {
        ChunkEnd::Failed(self.corrupt(reason))
    }

    fn corrupt(&self, reason: CorruptReason) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            position: self.pos,
            reason,
        }
    }
}

/// Reads at least `needed` bytes at `pos`, and ahead up to [`READ_AHEAD`] bytes that the file
/// has (the buffer is zeroed first: reading ahead past the end of a file that a writer is
/// appending to would cost a 256 KiB memset per read); the flag tells whether the file ended
/// before `needed` bytes, or before the bytes it held when the read began.
fn read_block(file: &File, pos: u64, needed: usize) -> io::Result<(Bytes, bool)> {
    let available =
        usize::try_from(file.metadata()?.len().saturating_sub(pos)).unwrap_or(usize::MAX);
    let len = needed.max(available.min(READ_AHEAD));
    let mut buf = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], pos + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok((Bytes::from(buf), filled < len))
}
