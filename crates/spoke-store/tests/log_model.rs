//! Model-based test of the durable log: random sequences of appends, batches, reads, time
//! lookups, retention, truncation and crashes (with torn tails) against an in-memory model.
//!
//! The model is the list of acknowledged records and the oldest retained offset. Checked after
//! every step: offsets are dense and as the model predicts; reads return exactly the model's
//! records (or a skip to the oldest retained offset); a follower reader that tails the log
//! sees every record once, in order; deletions only remove records they were allowed to.
//!
//! A crash appends an *in-flight* batch, stops the log, then damages the bytes of that batch
//! only (a cut at a random point, garbage, or the start of another frame) and reopens. The
//! model then requires every earlier record to be intact and a prefix of the in-flight batch —
//! exactly the frames that remain whole — to survive.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use spoke_store::log::{LogConfig, LogHandle, ReadEvent, Reader};

/// Retention of the log under test. Records are stamped within seconds of the test's start,
/// so the wall-clock retention applied when a segment rolls never deletes anything; the
/// model's `Retention` step picks a "now" instead.
const RETENTION_MS: i64 = 86_400_000;
/// Frame header bytes (see the module doc of `spoke_store::log`).
const HEADER: u64 = 24;

#[derive(Debug, Clone)]
enum Tear {
    /// Cut this many thousandths of the in-flight bytes off the end.
    Cut(u16),
    /// Garbage after the last frame.
    Garbage(Vec<u8>),
    /// The first bytes of a plausible next frame header.
    PartialHeader(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>, i64),
    AppendBatch(Vec<(Vec<u8>, i64)>),
    Read(u16),
    OffsetForTime(i64),
    Crash(Vec<(Vec<u8>, i64)>, Tear),
    Retention(i64),
    Truncate(u16),
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..80)
}

/// Milliseconds after the test's start; deliberately not ordered.
fn stamp() -> impl Strategy<Value = i64> {
    0i64..2000
}

fn tear() -> impl Strategy<Value = Tear> {
    prop_oneof![
        3 => (0u16..=1000).prop_map(Tear::Cut),
        1 => prop::collection::vec(any::<u8>(), 1..40).prop_map(Tear::Garbage),
        1 => (1u8..24).prop_map(Tear::PartialHeader),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let batch = |max| prop::collection::vec((payload(), stamp()), 0..max);
    prop_oneof![
        6 => (payload(), stamp()).prop_map(|(p, t)| Op::Append(p, t)),
        3 => batch(12).prop_map(Op::AppendBatch),
        2 => any::<u16>().prop_map(Op::Read),
        1 => (-10i64..2100).prop_map(Op::OffsetForTime),
        2 => (batch(8), tear()).prop_map(|(b, t)| Op::Crash(b, t)),
        1 => (0i64..2200).prop_map(Op::Retention),
        1 => any::<u16>().prop_map(Op::Truncate),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        prop_oneof![Just(128u64), Just(512), Just(2048)],
        prop_oneof![Just(1u64), Just(100), Just(4096)],
    )
        .prop_map(|(segment_max_bytes, index_interval_bytes)| LogConfig {
            segment_max_bytes,
            index_interval_bytes,
            retention: Some(std::time::Duration::from_millis(RETENTION_MS as u64)),
            ..LogConfig::default()
        })
}

fn fail(e: impl Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// The acknowledged records, by offset, and the oldest retained offset.
#[derive(Debug, Default)]
struct Model {
    records: Vec<(i64, Vec<u8>)>,
    start: u64,
}

impl Model {
    fn end(&self) -> u64 {
        self.records.len() as u64
    }

    /// An offset around the retained range, from a random number.
    fn pick(&self, n: u16) -> u64 {
        let lo = self.start.saturating_sub(2);
        lo + u64::from(n) % (self.end() + 3 - lo)
    }

    fn check_record(&self, event: &ReadEvent, offset: u64) -> Result<(), TestCaseError> {
        let ReadEvent::Record(r) = event else {
            return Err(fail(format!("expected record {offset}, got {event:?}")));
        };
        let (ts, payload) = &self.records[offset as usize];
        prop_assert_eq!(r.offset, offset);
        prop_assert_eq!(r.timestamp_ms, *ts);
        prop_assert_eq!(&r.payload[..], &payload[..]);
        Ok(())
    }
}

/// A reader that tails the log through every step, and the next offset it should see.
struct Follower {
    reader: Reader,
    next: u64,
}

impl Follower {
    async fn catch_up(&mut self, model: &Model) -> Result<(), TestCaseError> {
        while let Some(event) = self.reader.try_next().await.map_err(fail)? {
            match event {
                ReadEvent::Skipped { from, to } => {
                    prop_assert_eq!(from, self.next);
                    prop_assert!(
                        to <= model.start,
                        "skipped {from}..{to} past start {}",
                        model.start
                    );
                    self.next = to;
                }
                record @ ReadEvent::Record(_) => {
                    model.check_record(&record, self.next)?;
                    self.next += 1;
                }
            }
        }
        prop_assert_eq!(self.next, model.end());
        Ok(())
    }
}

async fn check_read(log: &LogHandle, model: &Model, from: u64) -> Result<(), TestCaseError> {
    let mut reader = log.read_from(from);
    let mut events = Vec::new();
    while let Some(event) = reader.try_next().await.map_err(fail)? {
        events.push(event);
    }
    let mut expected_skip = None;
    if from < model.start {
        expected_skip = Some(ReadEvent::Skipped {
            from,
            to: model.start,
        });
    }
    let first = from.max(model.start);
    let skips = usize::from(expected_skip.is_some());
    prop_assert_eq!(
        events.len() as u64,
        skips as u64 + model.end().saturating_sub(first)
    );
    if let Some(skip) = expected_skip {
        prop_assert_eq!(&events[0], &skip);
    }
    for (event, offset) in events[skips..].iter().zip(first..) {
        model.check_record(event, offset)?;
    }
    Ok(())
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files.pop().expect("a log always has a segment")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Damages the in-flight bytes (`region_start..` of the last segment) and returns how many
/// in-flight records remain whole.
fn tear_tail(
    segment: &Path,
    region_start: u64,
    inflight: &[(Vec<u8>, i64)],
    tear: &Tear,
    next_offset: u64,
) -> usize {
    let len = file_len(segment);
    let frames: Vec<u64> = inflight
        .iter()
        .map(|(p, _)| HEADER + p.len() as u64)
        .collect();
    assert_eq!(
        len - region_start,
        frames.iter().sum::<u64>(),
        "in-flight bytes are at the end"
    );
    let mut bytes = std::fs::read(segment).unwrap();
    match tear {
        Tear::Cut(permille) => {
            let cut = (len - region_start) * u64::from(*permille) / 1000;
            bytes.truncate((len - cut) as usize);
            std::fs::write(segment, &bytes).unwrap();
            let kept = len - cut - region_start;
            frames
                .iter()
                .scan(0, |sum, f| {
                    *sum += f;
                    Some(*sum)
                })
                .take_while(|&end| end <= kept)
                .count()
        }
        Tear::Garbage(garbage) => {
            bytes.extend_from_slice(garbage);
            std::fs::write(segment, &bytes).unwrap();
            inflight.len()
        }
        Tear::PartialHeader(n) => {
            let mut header = 10u32.to_le_bytes().to_vec();
            header.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
            header.extend_from_slice(&next_offset.to_le_bytes());
            header.extend_from_slice(&0i64.to_le_bytes());
            bytes.extend_from_slice(&header[..usize::from(*n)]);
            std::fs::write(segment, &bytes).unwrap();
            inflight.len()
        }
    }
}

fn bytes_of(batch: &[(Vec<u8>, i64)], t0: i64) -> Vec<(Bytes, i64)> {
    batch
        .iter()
        .map(|(p, t)| (Bytes::from(p.clone()), t0 + t))
        .collect()
}

async fn run(config: LogConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogHandle::open(dir.path(), config.clone())
        .await
        .map_err(fail)?;
    let mut model = Model::default();
    let mut follower = Follower {
        reader: log.read_from(0),
        next: 0,
    };
    for op in ops {
        match op {
            Op::Append(payload, t) => {
                let offset = log
                    .append(Bytes::from(payload.clone()), t0 + t)
                    .await
                    .map_err(fail)?;
                prop_assert_eq!(offset, model.end());
                model.records.push((t0 + t, payload));
            }
            Op::AppendBatch(batch) => {
                let range = log.append_batch(bytes_of(&batch, t0)).await.map_err(fail)?;
                prop_assert_eq!(range, model.end()..model.end() + batch.len() as u64);
                model
                    .records
                    .extend(batch.into_iter().map(|(p, t)| (t0 + t, p)));
            }
            Op::Read(n) => check_read(&log, &model, model.pick(n)).await?,
            Op::OffsetForTime(t) => {
                let first = model.records[model.start as usize..]
                    .iter()
                    .position(|(ts, _)| *ts >= t0 + t)
                    .map_or(model.end(), |i| model.start + i as u64);
                prop_assert_eq!(log.offset_for_time(t0 + t).await.map_err(fail)?, first);
            }
            Op::Crash(inflight, tear) => {
                let before = last_segment(dir.path());
                let before_len = file_len(&before);
                let range = log
                    .append_batch(bytes_of(&inflight, t0))
                    .await
                    .map_err(fail)?;
                prop_assert_eq!(range.start, model.end());
                log.close().await.map_err(fail)?;
                let after = last_segment(dir.path());
                let region_start = if after == before { before_len } else { 0 };
                let kept = tear_tail(&after, region_start, &inflight, &tear, range.end);
                log = LogHandle::open(dir.path(), config.clone())
                    .await
                    .map_err(fail)?;
                model
                    .records
                    .extend(inflight.into_iter().take(kept).map(|(p, t)| (t0 + t, p)));
                prop_assert_eq!(log.end_offset(), model.end(), "{:?} kept {}", tear, kept);
                check_read(&log, &model, model.start).await?;
                follower = Follower {
                    reader: log.read_from(follower.next),
                    next: follower.next,
                };
            }
            Op::Retention(now) => {
                let start = log
                    .enforce_retention(t0 + RETENTION_MS + now)
                    .await
                    .map_err(fail)?;
                prop_assert!(start >= model.start && start <= model.end());
                for (ts, _) in &model.records[model.start as usize..start as usize] {
                    prop_assert!(
                        *ts < t0 + now,
                        "deleted a record of {ts}, cutoff {}",
                        t0 + now
                    );
                }
                model.start = start;
            }
            Op::Truncate(n) => {
                let target = model.pick(n);
                let start = log.truncate_before(target).await.map_err(fail)?;
                prop_assert!(start >= model.start && start <= target.max(model.start));
                model.start = start;
            }
        }
        prop_assert_eq!(log.end_offset(), model.end());
        prop_assert_eq!(log.start_offset(), model.start);
        follower.catch_up(&model).await?;
    }
    log.close().await.map_err(fail)?;
    let log = LogHandle::open(dir.path(), config).await.map_err(fail)?;
    prop_assert_eq!(log.start_offset(), model.start);
    prop_assert_eq!(log.end_offset(), model.end());
    check_read(&log, &model, 0).await
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(config in config(), ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(config, ops))?;
    }
}
