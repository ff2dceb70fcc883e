//! Behaviour of the durable log through its public API: concurrency, tailing, time lookup,
//! retention, truncation, damage and recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use spoke_store::log::{LogConfig, LogError, LogHandle, ReadEvent, Record};

fn small() -> LogConfig {
    LogConfig {
        segment_max_bytes: 1024,
        index_interval_bytes: 128,
        retention: None,
        ..LogConfig::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn payload(text: String) -> Bytes {
    Bytes::from(text)
}

/// Every event a reader yields without waiting.
async fn drain(log: &LogHandle, from: u64) -> Vec<ReadEvent> {
    let mut reader = log.read_from(from);
    let mut events = Vec::new();
    while let Some(event) = reader.try_next().await.unwrap() {
        events.push(event);
    }
    events
}

fn records(events: &[ReadEvent]) -> Vec<Record> {
    events
        .iter()
        .filter_map(|e| match e {
            ReadEvent::Record(r) => Some(r.clone()),
            ReadEvent::Skipped { .. } => None,
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

fn base_of(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

async fn fill(log: &LogHandle, n: usize, ts: impl Fn(usize) -> i64) {
    for i in 0..n {
        log.append(payload(format!("record {i:04}")), ts(i))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_dense_offsets() {
    const TASKS: usize = 48;
    const PER_TASK: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    let total = (TASKS * PER_TASK) as u64;

    let mut tail = log.read_from(0);
    let tailer = tokio::spawn(async move {
        let mut seen = Vec::new();
        while (seen.len() as u64) < total {
            match tail.next().await.unwrap() {
                Some(ReadEvent::Record(r)) => seen.push(r),
                other => panic!("unexpected {other:?}"),
            }
        }
        seen
    });

    let appenders: Vec<_> = (0..TASKS)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                let mut i = 0;
                while i < PER_TASK {
                    if t % 4 == 0 {
                        let batch: Vec<_> = (i..i + 5)
                            .map(|j| (payload(format!("t{t}-{j}")), j as i64))
                            .collect();
                        let range = log.append_batch(batch.clone()).await.unwrap();
                        assert_eq!(range.end - range.start, 5);
                        written.extend(range.zip(batch.into_iter().map(|(p, _)| p)));
                        i += 5;
                    } else {
                        let p = payload(format!("t{t}-{i}"));
                        written.push((log.append(p.clone(), i as i64).await.unwrap(), p));
                        i += 1;
                    }
                }
                assert!(
                    written.windows(2).all(|w| w[0].0 < w[1].0),
                    "a task's offsets increase"
                );
                written
            })
        })
        .collect();
    let mut by_offset = BTreeMap::new();
    for task in appenders {
        for (offset, p) in task.await.unwrap() {
            assert!(
                by_offset.insert(offset, p).is_none(),
                "offset {offset} given twice"
            );
        }
    }
    assert_eq!(
        by_offset.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>()
    );
    assert_eq!(log.end_offset(), total);

    let seen = tailer.await.unwrap();
    for (i, record) in seen.iter().enumerate() {
        assert_eq!(record.offset, i as u64);
        assert_eq!(record.payload, by_offset[&record.offset]);
    }
    assert!(
        segment_files(dir.path()).len() > 10,
        "the test spans many segments"
    );
}

#[tokio::test]
async fn a_tailing_reader_waits_for_records_and_ends_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    fill(&log, 3, |_| 7).await;
    let mut reader = log.read_from(log.end_offset());
    let waiting = tokio::time::timeout(Duration::from_millis(30), reader.next()).await;
    assert!(waiting.is_err(), "no record yet");
    let offset = log.append(Bytes::from_static(b"new"), 8).await.unwrap();
    let expected = Record {
        offset,
        timestamp_ms: 8,
        payload: Bytes::from_static(b"new"),
    };
    assert_eq!(
        reader.next().await.unwrap(),
        Some(ReadEvent::Record(expected))
    );
    let other = log.clone();
    log.close().await.unwrap();
    assert_eq!(reader.next().await.unwrap(), None);
    let closed = other.append(Bytes::from_static(b"late"), 9).await;
    assert!(matches!(closed, Err(LogError::Closed)), "{closed:?}");
}

#[tokio::test]
async fn offset_for_time_is_exact_with_unordered_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    // A saw-tooth: rising within teeth of 7, each tooth starting lower than the last ended.
    let ts = |i: usize| (i / 7 * 5 + i % 7 * 3) as i64;
    fill(&log, 150, ts).await;
    assert!(segment_files(dir.path()).len() > 3);
    for target in -1..=(ts(149) + 2) {
        let expected = (0..150)
            .find(|&i| ts(i) >= target)
            .map_or(150, |i| i as u64);
        assert_eq!(
            log.offset_for_time(target).await.unwrap(),
            expected,
            "target {target}"
        );
    }
}

#[tokio::test]
async fn retention_moves_readers_past_deleted_segments() {
    let dir = tempfile::tempdir().unwrap();
    let hour = Duration::from_hours(1);
    let config = LogConfig {
        retention: Some(hour),
        ..small()
    };
    let log = LogHandle::open(dir.path(), config).await.unwrap();
    let t0 = now_ms();
    fill(&log, 100, |i| t0 + i as i64).await;
    let mut reader = log.read_from(0);
    for _ in 0..3 {
        assert!(matches!(
            reader.next().await.unwrap(),
            Some(ReadEvent::Record(_))
        ));
    }
    let start = log.enforce_retention(t0 + 3_600_000 + 50).await.unwrap();
    assert!(start > 3 && start <= 51, "start {start}");
    assert_eq!(log.start_offset(), start);
    assert_eq!(base_of(&segment_files(dir.path())[0]), start);
    assert_eq!(
        reader.next().await.unwrap(),
        Some(ReadEvent::Skipped { from: 3, to: start })
    );
    let next = reader.next().await.unwrap();
    assert!(matches!(next, Some(ReadEvent::Record(r)) if r.offset == start));
    let fresh = drain(&log, 0).await;
    assert_eq!(fresh[0], ReadEvent::Skipped { from: 0, to: start });
    assert_eq!(records(&fresh).len() as u64, 100 - start);
    assert_eq!(
        log.offset_for_time(t0).await.unwrap(),
        start,
        "deleted records are not found"
    );
}

#[tokio::test]
async fn size_retention_keeps_the_log_under_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_total_bytes: Some(3000),
        ..small()
    };
    let log = LogHandle::open(dir.path(), config).await.unwrap();
    fill(&log, 300, |i| i as i64).await;
    let total: u64 = segment_files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(total <= 3000 + 1024, "total {total}");
    assert!(log.start_offset() > 0);
    assert_eq!(
        records(&drain(&log, log.start_offset()).await).len() as u64,
        300 - log.start_offset()
    );
}

#[tokio::test]
async fn truncate_before_deletes_only_whole_sealed_segments_below() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    fill(&log, 100, |i| i as i64).await;
    let bases: Vec<u64> = segment_files(dir.path())
        .iter()
        .map(|f| base_of(f))
        .collect();
    let start = log.truncate_before(50).await.unwrap();
    assert_eq!(start, *bases.iter().filter(|&&b| b <= 50).max().unwrap());
    assert_eq!(records(&drain(&log, start).await)[0].offset, start);
    let start = log.truncate_before(1000).await.unwrap();
    assert_eq!(start, *bases.last().unwrap(), "the active segment stays");
    assert_eq!(
        log.append(Bytes::from_static(b"more"), 0).await.unwrap(),
        100
    );
}

/// Appends records across at least three segments, closes the log and flips one byte in the
/// middle record of the first segment. Returns the directory and that record's offset.
async fn damaged_first_segment() -> (tempfile::TempDir, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    fill(&log, 100, |i| i as i64).await;
    log.close().await.unwrap();
    let files = segment_files(dir.path());
    let second = base_of(&files[1]);
    let bad = second / 2;
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let frame = bytes.len() / second as usize; // all records are the same size
    bytes[bad as usize * frame + frame - 1] ^= 0x20;
    std::fs::write(&files[0], bytes).unwrap();
    (dir, bad, second)
}

#[tokio::test]
async fn damage_found_by_a_reader_is_reported_then_skipped() {
    let (dir, bad, second) = damaged_first_segment().await;
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    let mut reader = log.read_from(0);
    for offset in 0..bad {
        let event = reader.next().await.unwrap();
        assert!(matches!(event, Some(ReadEvent::Record(r)) if r.offset == offset));
    }
    match reader.next().await {
        Err(LogError::Corrupt { path, position, .. }) => {
            assert_eq!(base_of(&path), 0);
            assert!(position > 0);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    assert_eq!(
        reader.next().await.unwrap(),
        Some(ReadEvent::Skipped {
            from: bad,
            to: second
        })
    );
    let next = reader.next().await.unwrap();
    assert!(matches!(next, Some(ReadEvent::Record(r)) if r.offset == second));
    assert_eq!(
        log.end_offset(),
        100,
        "a damaged sealed segment is not truncated"
    );
}

#[tokio::test]
async fn damage_found_at_open_is_skipped() {
    let (dir, bad, second) = damaged_first_segment().await;
    for idx in segment_files(dir.path()) {
        let _ = std::fs::remove_file(idx.with_extension("idx"));
    }
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    let events = drain(&log, 0).await;
    assert_eq!(
        events[bad as usize],
        ReadEvent::Skipped {
            from: bad,
            to: second
        }
    );
    assert_eq!(records(&events).len() as u64, 100 - (second - bad));
    assert!(
        dir.path().join(format!("{:020}.idx", 0)).exists(),
        "the sidecar is rebuilt"
    );
}

#[tokio::test]
async fn recovery_truncates_a_torn_tail_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    fill(&log, 30, |i| i as i64).await;
    log.close().await.unwrap();
    let last = segment_files(dir.path()).pop().unwrap();
    let good = std::fs::metadata(&last).unwrap().len();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 30, 0, 0]);
    std::fs::write(&last, bytes).unwrap();

    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    assert_eq!(log.end_offset(), 30);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), good);
    assert_eq!(
        log.append(Bytes::from_static(b"after"), 1).await.unwrap(),
        30
    );
    let all = records(&drain(&log, 0).await);
    assert_eq!(all.len(), 31);
    assert_eq!(all[30].payload, Bytes::from_static(b"after"));
}

#[tokio::test]
async fn errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogHandle::open(dir.path(), small()).await.unwrap();
    let big = Bytes::from(vec![0; spoke_store::log::MAX_PAYLOAD_LEN + 1]);
    assert!(matches!(
        log.append(big.clone(), 0).await,
        Err(LogError::RecordTooLarge { .. })
    ));
    assert!(matches!(
        log.append_batch(vec![(Bytes::new(), 0), (big, 0)]).await,
        Err(LogError::RecordTooLarge { .. })
    ));
    assert_eq!(log.append_batch(Vec::new()).await.unwrap(), 0..0);
    let second = LogHandle::open(dir.path(), small()).await;
    assert!(matches!(second, Err(LogError::Locked { .. })), "{second:?}");
    let bad = LogConfig {
        segment_max_bytes: 0,
        ..small()
    };
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        LogHandle::open(other.path(), bad).await,
        Err(LogError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn the_retention_timer_deletes_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention: Some(Duration::from_secs(3)),
        retention_check_interval: Duration::from_millis(20),
        ..small()
    };
    let log = LogHandle::open(dir.path(), config).await.unwrap();
    // Expire 500 ms from now: after the rolls, so only the timer can delete them.
    let ts = now_ms() - 2_500;
    for _ in 0..8 {
        let batch = (0..10)
            .map(|i| (payload(format!("record {i:04}")), ts))
            .collect();
        log.append_batch(batch).await.unwrap();
    }
    assert!(segment_files(dir.path()).len() > 2);
    assert_eq!(log.start_offset(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while log.start_offset() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.start_offset(), base_of(&segment_files(dir.path())[0]));
}
