//! Segment files and what the log knows about them in memory.
//!
//! Owns: segment and sidecar file names, [`SegmentMeta`] (a segment's offset range, size and
//! sparse offset/time index), the scan that rebuilds a `SegmentMeta` from a file, the `.idx`
//! sidecar that caches it for sealed segments, and [`Segments`], the ordered list shared by
//! the writer and the readers.
//!
//! Invariants kept here:
//! - `SegmentMeta::end - base` valid frames occupy bytes `0..size` of the file, with dense
//!   offsets from `base`.
//! - Index entries are in increasing offset and position order; the first is at position 0;
//!   an entry's `max_ts` is the largest timestamp of the records from it up to the next entry.
//! - In [`Segments`] the last segment is the active one; bases strictly increase.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::frame::{self, CorruptReason, Decoded};

const LOG_SUFFIX: &str = ".log";
const INDEX_SUFFIX: &str = ".idx";
const INDEX_MAGIC: &[u8; 8] = b"SPKLIDX1";
/// Magic, base, end, size, entry count.
const INDEX_HEADER_LEN: usize = 8 + 8 + 8 + 8 + 4;
const INDEX_ENTRY_LEN: usize = 24;
/// Read size of a recovery scan.
const SCAN_CHUNK: usize = 1 << 20;

/// The path of the segment file whose first offset is `base`.
pub(crate) fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{LOG_SUFFIX}"))
}

/// The path of the sidecar index of the segment whose first offset is `base`.
pub(crate) fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{INDEX_SUFFIX}"))
}

/// What a file in the log directory is, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Log(u64),
    Index(u64),
}

/// Parses `{base:020}.log` and `{base:020}.idx`; any other name is not the log's.
pub(crate) fn parse_file_name(name: &str) -> Option<FileKind> {
    let (digits, kind): (&str, fn(u64) -> FileKind) = if let Some(d) = name.strip_suffix(LOG_SUFFIX)
    {
        (d, FileKind::Log)
    } else {
        (name.strip_suffix(INDEX_SUFFIX)?, FileKind::Index)
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(kind)
}

/// One sparse index entry: the record at `offset` starts at byte `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub pos: u64,
    /// The largest timestamp from this entry's record up to the next entry.
    pub max_ts: i64,
}

/// A segment's offset range, byte size and sparse index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub base: u64,
    /// One past the last valid record.
    pub end: u64,
    /// Bytes of valid records.
    pub size: u64,
    pub entries: Vec<IndexEntry>,
    /// The largest timestamp in the segment, `None` when it is empty.
    pub max_ts: Option<i64>,
}

/// Enough of a [`SegmentMeta`] to undo appends that did not become durable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checkpoint {
    end: u64,
    /// Bytes of the segment at the checkpoint.
    pub size: u64,
    entries: usize,
    last_entry_max_ts: Option<i64>,
    max_ts: Option<i64>,
}

impl SegmentMeta {
    pub fn new(base: u64) -> Self {
        Self {
            base,
            end: base,
            size: 0,
            entries: Vec::new(),
            max_ts: None,
        }
    }

    /// Accounts for the next record (offset `end`, at byte `size`) of `frame_len` bytes; starts
    /// a new index entry when the last one is at least `interval` bytes back.
    pub fn push(&mut self, timestamp_ms: i64, frame_len: u64, interval: u64) {
        match self.entries.last_mut() {
            Some(last) if self.size - last.pos < interval => {
                last.max_ts = last.max_ts.max(timestamp_ms);
            }
            _ => self.entries.push(IndexEntry {
                offset: self.end,
                pos: self.size,
                max_ts: timestamp_ms,
            }),
        }
        self.max_ts = Some(self.max_ts.map_or(timestamp_ms, |m| m.max(timestamp_ms)));
        self.end += 1;
        self.size += frame_len;
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            end: self.end,
            size: self.size,
            entries: self.entries.len(),
            last_entry_max_ts: self.entries.last().map(|e| e.max_ts),
            max_ts: self.max_ts,
        }
    }

    /// Forgets every record pushed since `cp`.
    pub fn rollback(&mut self, cp: Checkpoint) {
        self.end = cp.end;
        self.size = cp.size;
        self.max_ts = cp.max_ts;
        self.entries.truncate(cp.entries);
        if let (Some(last), Some(ts)) = (self.entries.last_mut(), cp.last_entry_max_ts) {
            last.max_ts = ts;
        }
    }

    /// Makes `target` (a copy of `self` as of `cp`) equal to `self`, copying only what changed.
    pub fn publish_into(&self, target: &mut Self, cp: Checkpoint) {
        let keep = cp.entries.saturating_sub(1).min(target.entries.len());
        target.entries.truncate(keep);
        target.entries.extend_from_slice(&self.entries[keep..]);
        target.end = self.end;
        target.size = self.size;
        target.max_ts = self.max_ts;
    }

    /// The index entry to start reading from to reach `offset` (which is in `base..end`).
    pub fn seek(&self, offset: u64) -> IndexEntry {
        let i = self.entries.partition_point(|e| e.offset <= offset);
        i.checked_sub(1).map_or(
            IndexEntry {
                offset: self.base,
                pos: 0,
                max_ts: i64::MIN,
            },
            |i| self.entries[i],
        )
    }
}

/// The outcome of scanning a segment file.
#[derive(Debug)]
pub(crate) struct Scan {
    pub meta: SegmentMeta,
    /// Where the valid frames stop before the end of the file, and why.
    pub damage: Option<CorruptReason>,
}

/// Reads a segment file from the start, validating every frame, and summarizes the valid prefix.
pub(crate) fn scan(path: &Path, base: u64, interval: u64) -> io::Result<Scan> {
    let mut file = File::open(path)?;
    let mut meta = SegmentMeta::new(base);
    let mut buf = Vec::with_capacity(SCAN_CHUNK);
    let mut start = 0;
    let mut eof = false;
    let damage = loop {
        match frame::decode(&buf[start..]) {
            Decoded::Frame(h) => {
                if h.offset != meta.end {
                    break Some(CorruptReason::OffsetMismatch {
                        expected: meta.end,
                        found: h.offset,
                    });
                }
                meta.push(h.timestamp_ms, h.frame_len as u64, interval);
                start += h.frame_len;
            }
            Decoded::Incomplete(_) if eof => {
                break (start < buf.len()).then_some(CorruptReason::Truncated);
            }
            Decoded::Incomplete(needed) => {
                buf.drain(..start);
                start = 0;
                let want = needed.max(SCAN_CHUNK);
                let have = buf.len();
                (&mut file)
                    .take((want - have) as u64)
                    .read_to_end(&mut buf)?;
                eof = buf.len() < want;
            }
            Decoded::Corrupt(reason) => break Some(reason),
        }
    };
    Ok(Scan { meta, damage })
}

/// Writes the sidecar index of a sealed segment. It is a cache: a missing or invalid sidecar
/// is rebuilt by a scan, so it is not fsynced.
pub(crate) fn write_index(dir: &Path, meta: &SegmentMeta) -> io::Result<()> {
    let mut buf = Vec::with_capacity(INDEX_HEADER_LEN + meta.entries.len() * INDEX_ENTRY_LEN + 4);
    buf.extend_from_slice(INDEX_MAGIC);
    buf.extend_from_slice(&meta.base.to_le_bytes());
    buf.extend_from_slice(&meta.end.to_le_bytes());
    buf.extend_from_slice(&meta.size.to_le_bytes());
    buf.extend_from_slice(&(meta.entries.len() as u32).to_le_bytes());
    for e in &meta.entries {
        buf.extend_from_slice(&e.offset.to_le_bytes());
        buf.extend_from_slice(&e.pos.to_le_bytes());
        buf.extend_from_slice(&e.max_ts.to_le_bytes());
    }
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(index_path(dir, meta.base), buf)
}

/// Reads the sidecar index of segment `base`, returning `None` unless it is intact and matches
/// a segment file of `log_len` bytes.
pub(crate) fn read_index(dir: &Path, base: u64, log_len: u64) -> Option<SegmentMeta> {
    let bytes = std::fs::read(index_path(dir, base)).ok()?;
    let (body, crc) = bytes.split_last_chunk::<4>()?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (header, entries) = body.split_at_checked(INDEX_HEADER_LEN)?;
    let (magic, header) = header.split_first_chunk::<8>()?;
    let mut words = header.chunks_exact(8).map(le_u64);
    let (file_base, end, size) = (words.next()?, words.next()?, words.next()?);
    let count = u32::from_le_bytes(*header.last_chunk::<4>()?) as usize;
    if magic != INDEX_MAGIC
        || file_base != base
        || size != log_len
        || end < base
        || entries.len() != count.checked_mul(INDEX_ENTRY_LEN)?
    {
        return None;
    }
    let mut meta = SegmentMeta::new(base);
    meta.end = end;
    meta.size = size;
    for e in entries.chunks_exact(INDEX_ENTRY_LEN) {
        let mut w = e.chunks_exact(8).map(le_u64);
        let entry = IndexEntry {
            offset: w.next()?,
            pos: w.next()?,
            max_ts: w.next()? as i64,
        };
        let ordered = meta
            .entries
            .last()
            .map_or(entry.offset == base && entry.pos == 0, |l| {
                entry.offset > l.offset && entry.pos > l.pos
            });
        if !ordered || entry.offset >= end || entry.pos >= size {
            return None;
        }
        meta.max_ts = Some(meta.max_ts.map_or(entry.max_ts, |m| m.max(entry.max_ts)));
        meta.entries.push(entry);
    }
    (meta.entries.is_empty() == (end == base)).then_some(meta)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// Where a reader finds the record at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    /// The offset was deleted; the oldest retained record is at `start`.
    Deleted { start: u64 },
    /// Records from the offset up to `to` are unreadable (a damaged or missing tail of a
    /// sealed segment).
    Hole { to: u64 },
    /// Read segment `base` from `entry` on; its valid records end at `end`, or, for the
    /// active segment (`None`), at the committed end.
    Segment {
        base: u64,
        entry: IndexEntry,
        end: Option<u64>,
    },
    /// The offset has not been written yet.
    Pending,
}

/// A chunk of the sparse index that holds a record with a timestamp at or after the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeChunk {
    pub base: u64,
    pub entry: IndexEntry,
    /// One past the chunk's last record.
    pub end: u64,
}

/// The segments of the log in offset order; the last is the active segment.
#[derive(Debug)]
pub(crate) struct Segments {
    list: VecDeque<SegmentMeta>,
}

impl Segments {
    /// Builds the list from recovered segments; `active` is the last, open one.
    pub fn new(sealed: Vec<SegmentMeta>, active: SegmentMeta) -> Self {
        let mut list = VecDeque::from(sealed);
        list.push_back(active);
        Self { list }
    }

    /// The oldest retained offset.
    pub fn start(&self) -> u64 {
        self.list.front().map_or(0, |s| s.base)
    }

    pub fn active_mut(&mut self) -> &mut SegmentMeta {
        self.list
            .back_mut()
            .expect("the active segment is always present")
    }

    /// Seals the active segment and starts a new, empty active segment at `base`.
    pub fn roll(&mut self, base: u64) {
        self.list.push_back(SegmentMeta::new(base));
    }

    /// One past the last committed record.
    pub fn end(&self) -> u64 {
        self.list.back().map_or(0, |s| s.end)
    }

    /// Total bytes of valid records in all segments.
    pub fn total_bytes(&self) -> u64 {
        self.list.iter().map(|s| s.size).sum()
    }

    /// Where the record at `offset` is.
    pub fn locate(&self, offset: u64) -> Location {
        let i = self.list.partition_point(|s| s.base <= offset);
        let Some(seg) = i.checked_sub(1).map(|i| &self.list[i]) else {
            return Location::Deleted {
                start: self.start(),
            };
        };
        let active = i == self.list.len();
        if offset < seg.end {
            let end = (!active).then_some(seg.end);
            return Location::Segment {
                base: seg.base,
                entry: seg.seek(offset),
                end,
            };
        }
        match self.list.get(i) {
            Some(next) => Location::Hole { to: next.base },
            None => Location::Pending,
        }
    }

    /// The first index chunk at or after offset `from` that holds a timestamp `>= ts`.
    pub fn time_chunk(&self, ts: i64, from: u64) -> Option<TimeChunk> {
        let mut candidates = self
            .list
            .iter()
            .filter(|s| s.end > from && s.max_ts >= Some(ts));
        candidates.find_map(|seg| {
            let ends = seg
                .entries
                .iter()
                .skip(1)
                .map(|e| e.offset)
                .chain([seg.end]);
            seg.entries.iter().zip(ends).find_map(|(entry, end)| {
                (end > from && entry.max_ts >= ts).then_some(TimeChunk {
                    base: seg.base,
                    entry: *entry,
                    end,
                })
            })
        })
    }

    /// How many segments at the front are sealed and expired: the newest record is older than
    /// `cutoff_ms`, or the log is over `max_bytes` without them. Stops at the first segment
    /// that stays, so the retained offsets remain one range.
    pub fn expired(&self, cutoff_ms: Option<i64>, max_bytes: Option<u64>) -> usize {
        let mut total = self.total_bytes();
        let sealed = self.list.len() - 1;
        let mut n = 0;
        for seg in self.list.iter().take(sealed) {
            let too_old = cutoff_ms.is_some_and(|c| seg.max_ts.is_none_or(|m| m < c));
            let too_big = max_bytes.is_some_and(|m| total > m);
            if !(too_old || too_big) {
                break;
            }
            total -= seg.size;
            n += 1;
        }
        n
    }

    /// The base of the segment after segment `base`, `None` when `base` is the active one.
    pub fn next_base(&self, base: u64) -> Option<u64> {
        let i = self.list.partition_point(|s| s.base <= base);
        self.list.get(i).map(|s| s.base)
    }

    /// Makes every sealed segment end no later than the next segment's base, so that no two
    /// segments claim an offset; returns the bases of the segments that had to be cut.
    pub fn clamp_overlaps(&mut self) -> Vec<u64> {
        let mut cut = Vec::new();
        for i in 1..self.list.len() {
            let next = self.list[i].base;
            let seg = &mut self.list[i - 1];
            if seg.end > next {
                seg.end = next;
                seg.entries.retain(|e| e.offset < next);
                cut.push(seg.base);
            }
        }
        cut
    }

    /// How many segments at the front are sealed and hold only offsets below `offset`.
    pub fn below(&self, offset: u64) -> usize {
        let sealed = self.list.len() - 1;
        (0..sealed)
            .take_while(|&i| self.list[i + 1].base <= offset)
            .count()
    }

    /// Removes the `n` oldest segments (never the active one) and returns their bases.
    pub fn remove_front(&mut self, n: usize) -> Vec<u64> {
        let n = n.min(self.list.len() - 1);
        self.list.drain(..n).map(|s| s.base).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(base: u64, timestamps: &[i64]) -> SegmentMeta {
        let mut m = SegmentMeta::new(base);
        for &ts in timestamps {
            m.push(ts, 100, 250);
        }
        m
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(
            log_path(Path::new("d"), 7),
            Path::new("d/00000000000000000007.log")
        );
        assert_eq!(
            parse_file_name("00000000000000000007.log"),
            Some(FileKind::Log(7))
        );
        assert_eq!(
            parse_file_name("18446744073709551615.idx"),
            Some(FileKind::Index(u64::MAX))
        );
        for bad in [
            "7.log",
            "0000000000000000000x.log",
            "99999999999999999999.log",
            "LOCK",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn index_entries_every_interval() {
        let m = meta(10, &[5, 3, 9, 1, 2]);
        let got: Vec<_> = m
            .entries
            .iter()
            .map(|e| (e.offset, e.pos, e.max_ts))
            .collect();
        assert_eq!(got, [(10, 0, 9), (13, 300, 2)]);
        assert_eq!((m.end, m.size, m.max_ts), (15, 500, Some(9)));
        assert_eq!(m.seek(12).offset, 10);
        assert_eq!(m.seek(14).pos, 300);
    }

    #[test]
    fn rollback_and_publish() {
        let mut m = meta(0, &[1, 2]);
        let published = m.clone();
        let cp = m.checkpoint();
        m.push(50, 100, 250);
        m.push(60, 100, 250);
        let grown = m.clone();
        m.rollback(cp);
        assert_eq!(m, published);
        let mut target = published.clone();
        grown.publish_into(&mut target, cp);
        assert_eq!(target, grown);
    }

    #[test]
    fn sidecar_round_trips_and_rejects_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let m = meta(4, &[1, 7, 3, 3, 8]);
        write_index(dir.path(), &m).unwrap();
        assert_eq!(read_index(dir.path(), 4, 500), Some(m));
        assert_eq!(read_index(dir.path(), 4, 499), None);
        let path = index_path(dir.path(), 4);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_index(dir.path(), 4, 500), None);
    }

    #[test]
    fn locate_sealed_active_holes_and_deleted() {
        let mut sealed = meta(10, &[1, 1, 1]);
        sealed.end = 12; // damaged tail: offset 12 is unreadable
        let segs = Segments::new(vec![sealed], meta(13, &[2, 2]));
        assert_eq!(segs.locate(9), Location::Deleted { start: 10 });
        assert!(matches!(
            segs.locate(11),
            Location::Segment {
                base: 10,
                end: Some(12),
                ..
            }
        ));
        assert_eq!(segs.locate(12), Location::Hole { to: 13 });
        assert!(matches!(
            segs.locate(14),
            Location::Segment {
                base: 13,
                end: None,
                ..
            }
        ));
        assert_eq!(segs.locate(15), Location::Pending);
    }

    #[test]
    fn time_chunks_handle_unordered_timestamps() {
        let segs = Segments::new(vec![meta(0, &[1, 9, 2, 3])], meta(4, &[5, 6]));
        assert_eq!(
            segs.time_chunk(8, 0).map(|c| (c.entry.offset, c.end)),
            Some((0, 3))
        );
        assert_eq!(segs.time_chunk(8, 3), None);
        assert_eq!(
            segs.time_chunk(4, 3).map(|c| (c.base, c.entry.offset)),
            Some((4, 4))
        );
        assert_eq!(segs.time_chunk(7, 0).map(|c| c.base), Some(0));
    }

    #[test]
    fn retention_is_a_prefix_of_sealed_segments() {
        let segs = Segments::new(
            vec![meta(0, &[1]), meta(1, &[50]), meta(2, &[2])],
            meta(3, &[]),
        );
        assert_eq!(segs.expired(Some(10), None), 1);
        assert_eq!(segs.expired(Some(100), None), 3);
        assert_eq!(segs.expired(None, Some(150)), 2);
        assert_eq!(segs.expired(None, None), 0);
        assert_eq!(segs.below(2), 2);
        assert_eq!(segs.below(100), 3);
    }
}
