//! Behaviour of the store-and-forward queues through their public API: ordering, waiting,
//! expiry, rewind, restart persistence, the disk budget, endpoint names and removal.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::{ManualClock, copy_dir};
use spoke_store::queue::{Entry, EntryId, QueueConfig, QueueError, QueueStore};

const T0: i64 = 1_700_000_000_000;

fn config(clock: &ManualClock) -> QueueConfig {
    QueueConfig {
        segment_max_bytes: 1024,
        max_total_bytes: 1 << 20,
        cursor_flush_interval: Duration::from_hours(1),
        clock: clock.clock(),
    }
}

fn text(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
        .collect()
}

fn ids(entries: &[Entry]) -> Vec<EntryId> {
    entries.iter().map(|e| e.id).collect()
}

fn msg(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn open(dir: &Path, config: QueueConfig) -> QueueStore {
    QueueStore::open(dir, config).await.unwrap()
}

#[tokio::test]
async fn delivers_highest_priority_first_then_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("$upstream").await.unwrap();
    for (priority, m) in [(5, "a5"), (0, "b0"), (5, "c5"), (9, "d9"), (0, "e0")] {
        q.enqueue(priority, msg(m), T0, None).await.unwrap();
    }
    let first = q.next_batch(3).await.unwrap();
    assert_eq!(text(&first), ["b0", "e0", "a5"]);
    assert_eq!(first[0].enqueued_ms, T0);
    q.enqueue(0, msg("f0"), T0, None).await.unwrap();
    let second = q.next_batch(10).await.unwrap();
    assert_eq!(
        text(&second),
        ["f0", "c5", "d9"],
        "a new higher priority goes first"
    );
    assert!(q.try_next_batch(10).await.unwrap().is_empty());
    assert!(matches!(
        q.enqueue(11, msg("x"), T0, None).await,
        Err(QueueError::InvalidPriority(11))
    ));
}

#[tokio::test]
async fn next_batch_waits_for_an_enqueue() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("module/filter/input1").await.unwrap();
    let consumer = tokio::spawn({
        let q = q.clone();
        async move { q.next_batch(10).await }
    });
    tokio::task::yield_now().await;
    q.enqueue(3, msg("hello"), T0, None).await.unwrap();
    let batch = consumer.await.unwrap().unwrap();
    assert_eq!(text(&batch), ["hello"]);
}

#[tokio::test]
async fn close_wakes_a_waiting_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    let consumer = tokio::spawn({
        let q = q.clone();
        async move { q.next_batch(10).await }
    });
    tokio::task::yield_now().await;
    store.close().await.unwrap();
    assert!(matches!(consumer.await.unwrap(), Err(QueueError::Closed)));
    assert!(matches!(
        q.enqueue(0, msg("late"), T0, None).await,
        Err(QueueError::Closed)
    ));
}

#[tokio::test]
async fn expired_entries_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    q.enqueue(0, msg("short"), T0, Some(T0 + 10)).await.unwrap();
    q.enqueue(0, msg("long"), T0, Some(T0 + 1000))
        .await
        .unwrap();
    q.enqueue(1, msg("never"), T0, None).await.unwrap();
    clock.advance(10);
    let batch = q.next_batch(10).await.unwrap();
    assert_eq!(text(&batch), ["long", "never"]);
    assert_eq!(batch[0].expires_at_ms, Some(T0 + 1000));
    let stats = q.stats();
    assert_eq!((stats.expired_total, stats.depth), (1, 2));
    assert_eq!(stats.priorities.len(), 2);
    assert_eq!(stats.oldest_enqueued_ms, Some(T0));
}

#[tokio::test]
async fn rewind_redelivers_unacknowledged_entries_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    for m in ["a", "b", "c", "d"] {
        q.enqueue(2, msg(m), T0, None).await.unwrap();
    }
    let batch = q.next_batch(3).await.unwrap();
    q.ack(&[batch[1].id]).await.unwrap();
    q.rewind();
    assert_eq!(text(&q.next_batch(10).await.unwrap()), ["a", "c", "d"]);
    assert_eq!(q.stats().depth, 3);
}

#[tokio::test]
async fn acknowledgements_survive_a_clean_restart_even_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("$upstream").await.unwrap();
    for i in 0..40 {
        q.enqueue(i % 2, msg(&format!("m{i}")), T0 + i64::from(i), None)
            .await
            .unwrap();
    }
    let batch = q.next_batch(40).await.unwrap();
    let acked: Vec<EntryId> = batch.iter().step_by(3).map(|e| e.id).collect();
    q.ack(&acked).await.unwrap();
    let expected: Vec<String> = batch
        .iter()
        .filter(|e| !acked.contains(&e.id))
        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
        .collect();
    store.close().await.unwrap();

    let store = open(dir.path(), config(&clock)).await;
    assert_eq!(store.endpoints(), ["$upstream"]);
    let q = store.endpoint("$upstream").await.unwrap();
    assert_eq!(q.stats().depth, expected.len() as u64);
    // p0's head m0 was acknowledged, p1's head m1 was not.
    assert_eq!(q.stats().oldest_enqueued_ms, Some(T0 + 1));
    assert_eq!(text(&q.next_batch(100).await.unwrap()), expected);
}

#[tokio::test]
async fn a_crash_redelivers_unpersisted_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    for m in ["a", "b", "c"] {
        q.enqueue(0, msg(m), T0, None).await.unwrap();
    }
    let batch = q.next_batch(10).await.unwrap();
    q.ack(&ids(&batch[..2])).await.unwrap();
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    store.reclaim().await.unwrap(); // persists the cursor
    let persisted = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), persisted.path());
    drop((q, store));

    let store = open(crashed.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    assert_eq!(text(&q.next_batch(10).await.unwrap()), ["a", "b", "c"]);
    let store = open(persisted.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    assert_eq!(text(&q.next_batch(10).await.unwrap()), ["c"]);
}

#[tokio::test]
async fn a_damaged_cursor_file_means_redelivery_not_loss() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    q.enqueue(0, msg("a"), T0, None).await.unwrap();
    q.enqueue(0, msg("b"), T0, None).await.unwrap();
    let batch = q.next_batch(1).await.unwrap();
    q.ack(&ids(&batch)).await.unwrap();
    store.close().await.unwrap();
    std::fs::write(dir.path().join("e/p0.cursor"), b"SPKQCUR1 torn").unwrap();
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("e").await.unwrap();
    assert_eq!(text(&q.next_batch(10).await.unwrap()), ["a", "b"]);
}

#[tokio::test]
async fn the_budget_refuses_new_entries_until_acknowledged_space_is_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let config = QueueConfig {
        max_total_bytes: 4096,
        segment_max_bytes: 512,
        ..config(&clock)
    };
    let store = open(dir.path(), config.clone()).await;
    let a = store.endpoint("a").await.unwrap();
    let b = store.endpoint("b").await.unwrap();
    let payload = Bytes::from(vec![7u8; 100]);
    let mut stored = 0;
    let full = loop {
        let q = if stored % 2 == 0 { &a } else { &b };
        match q.enqueue(0, payload.clone(), T0, None).await {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
    };
    let QueueError::Full {
        needed,
        used,
        limit,
    } = full
    else {
        panic!("expected Full, got {full:?}")
    };
    assert_eq!((needed, limit), (24 + 1 + 100, 4096));
    assert!(used + needed > limit && used <= limit);
    assert_eq!(store.total_bytes(), used);
    assert_eq!(stored, 4096 / 125);

    // Nothing acknowledged is dropped to make room: everything is still there.
    let from_a = a.next_batch(1000).await.unwrap();
    let from_b = b.next_batch(1000).await.unwrap();
    assert_eq!(from_a.len() + from_b.len(), stored);
    assert!(matches!(
        a.enqueue(0, payload.clone(), T0, None).await,
        Err(QueueError::Full { .. })
    ));

    // Acknowledging b makes room, reclaimed when the next enqueue needs it.
    b.ack(&ids(&from_b)).await.unwrap();
    a.enqueue(0, payload.clone(), T0, None).await.unwrap();
    assert!(store.total_bytes() <= 4096);
    assert_eq!(b.stats().bytes, 0, "b's segments were sealed and deleted");
    assert_eq!(a.stats().depth, from_a.len() as u64 + 1);
}

#[tokio::test]
async fn expired_entries_are_reclaimed_when_the_budget_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let config = QueueConfig {
        max_total_bytes: 2048,
        segment_max_bytes: 256,
        ..config(&clock)
    };
    let store = open(dir.path(), config).await;
    let q = store.endpoint("$upstream").await.unwrap();
    let payload = Bytes::from(vec![1u8; 60]);
    let mut stored = 0u64;
    while q
        .enqueue(4, payload.clone(), T0, Some(T0 + 100))
        .await
        .is_ok()
    {
        stored += 1;
    }
    clock.advance(100);
    q.enqueue(4, msg("fresh"), clock.now(), None).await.unwrap();
    let stats = q.stats();
    assert_eq!(
        stats.expired_total, stored,
        "no consumer needed to expire them"
    );
    assert_eq!(stats.depth, 1);
    assert_eq!(text(&q.next_batch(10).await.unwrap()), ["fresh"]);
}

#[tokio::test]
async fn endpoint_names_are_encoded_and_listed_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let names = [
        "$upstream",
        "module/filter/input1",
        "..",
        "ünï cødé",
        "a%2F",
    ];
    for name in names {
        let q = store.endpoint(name).await.unwrap();
        q.enqueue(0, msg(name), T0, None).await.unwrap();
    }
    for bad in [String::new(), "/".repeat(100)] {
        assert!(matches!(
            store.endpoint(&bad).await,
            Err(QueueError::InvalidName { .. })
        ));
    }
    assert!(dir.path().join("%24upstream").is_dir());
    assert!(dir.path().join("module%2Ffilter%2Finput1").is_dir());
    store.close().await.unwrap();

    let store = open(dir.path(), config(&clock)).await;
    let mut sorted = names.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(store.endpoints(), sorted);
    for name in names {
        let q = store.endpoint(name).await.unwrap();
        assert_eq!(text(&q.next_batch(10).await.unwrap()), [name]);
    }
}

#[tokio::test]
async fn removing_an_endpoint_deletes_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("module/gone/in").await.unwrap();
    q.enqueue(0, msg("x"), T0, None).await.unwrap();
    assert!(store.total_bytes() > 0);
    store.remove_endpoint("module/gone/in").await.unwrap();
    store.remove_endpoint("never-existed").await.unwrap();
    assert!(store.endpoints().is_empty());
    assert_eq!(store.total_bytes(), 0);
    assert!(!dir.path().join("module%2Fgone%2Fin").exists());
    assert!(matches!(
        q.enqueue(0, msg("y"), T0, None).await,
        Err(QueueError::Removed(_))
    ));
    let again = store.endpoint("module/gone/in").await.unwrap();
    assert!(again.try_next_batch(10).await.unwrap().is_empty());
    store.close().await.unwrap();
    let store = open(dir.path(), config(&clock)).await;
    assert_eq!(store.endpoints(), ["module/gone/in"]);
}

#[tokio::test]
async fn a_store_directory_is_opened_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let _store = open(dir.path(), config(&clock)).await;
    assert!(matches!(
        QueueStore::open(dir.path(), config(&clock)).await,
        Err(QueueError::Locked { .. })
    ));
    let bad = QueueConfig {
        segment_max_bytes: 0,
        ..config(&clock)
    };
    assert!(matches!(
        QueueStore::open(dir.path().join("x"), bad).await,
        Err(QueueError::InvalidConfig(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueuers_each_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let store = open(dir.path(), config(&clock)).await;
    let q = store.endpoint("$upstream").await.unwrap();
    let (senders, each) = (32u32, 25u32);
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            let q = q.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    let m = format!("{s}:{i}");
                    q.enqueue((s % 3) as u8, msg(&m), T0, None).await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = vec![0u32; senders as usize];
    let mut total = 0;
    while total < senders * each {
        let batch = q.next_batch(64).await.unwrap();
        for entry in &batch {
            let text = String::from_utf8_lossy(&entry.payload).into_owned();
            let (s, i) = text.split_once(':').unwrap();
            let (s, i): (usize, u32) = (s.parse().unwrap(), i.parse().unwrap());
            assert_eq!(seen[s], i, "sender {s} out of order");
            seen[s] += 1;
        }
        total += batch.len() as u32;
        q.ack(&ids(&batch)).await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(q.stats().depth, 0);
}
