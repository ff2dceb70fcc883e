//! Fuzz entry points for the log's on-disk parsing: arbitrary bytes as a segment file.
//!
//! Each function must never panic, whatever its input; they assert the recovery invariants
//! instead. Driven by the fuzz targets and by `tests/fuzz_smoke.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{LogConfig, LogHandle, ReadEvent, frame, segment};

/// Writes `data` as the only segment of a fresh log, opens the log and reads it back.
///
/// Asserts that recovery keeps exactly the longest prefix of `data` made of valid frames with
/// offsets 0, 1, 2, ... (re-encoding the records read gives that prefix byte for byte, and
/// the file is truncated to it), that the end offset is the number of records, and that
/// appending afterwards continues at that offset.
pub fn fuzz_segment_recovery(data: &[u8]) {
    thread_local! {
        // One runtime per fuzzing thread: building one per input would dominate the run time.
        static RUNTIME: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().enable_all().build().ok();
    }
    let dir = ScratchDir::new();
    if std::fs::write(segment::log_path(dir.path(), 0), data).is_err() {
        return;
    }
    RUNTIME.with(|runtime| {
        if let Some(runtime) = runtime {
            runtime.block_on(recover_and_check(dir.path(), data));
        }
    });
}

async fn recover_and_check(dir: &Path, data: &[u8]) {
    let config = LogConfig {
        retention: None,
        ..LogConfig::default()
    };
    let log = LogHandle::open(dir, config)
        .await
        .expect("recovery never fails on content");
    let end = log.end_offset();
    let mut reader = log.read_from(0);
    let mut rebuilt = Vec::new();
    let mut count = 0;
    while let Some(event) = reader
        .try_next()
        .await
        .expect("recovered records are readable")
    {
        let ReadEvent::Record(record) = event else {
            panic!("unexpected {event:?}")
        };
        assert_eq!(record.offset, count, "offsets are dense from 0");
        frame::encode(
            &mut rebuilt,
            record.offset,
            record.timestamp_ms,
            &record.payload,
        );
        count += 1;
    }
    assert_eq!(count, end, "the end offset counts the recovered records");
    assert!(
        data.starts_with(&rebuilt),
        "recovered records are a prefix of the input"
    );
    let on_disk = std::fs::read(segment::log_path(dir, 0)).expect("the segment is still there");
    assert_eq!(on_disk, rebuilt, "the torn tail was truncated");
    let next = log.append(Bytes::from_static(b"after recovery"), 0).await;
    assert_eq!(next.expect("append after recovery"), end);
    log.close().await.expect("close");
}

/// A scratch directory, removed on drop. It is on `/dev/shm` where that exists: `fdatasync` is
/// free on tmpfs, and durability is not what fuzzing checks.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("spoke-log-fuzz-{}-{n}", std::process::id());
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        };
        let path = parent.join(name);
        // A leftover of an earlier process with the same id is stale.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
