//! Model-based test of the store-and-forward queue: random sequences of enqueues (random
//! priority and TTL), batches, acknowledgements (any order), rewinds, clock advances, clean
//! reopens and crashes against an in-memory model.
//!
//! The model is, per priority, the list of enqueued entries with two flags: *done* (acknowledged
//! or skipped as expired) and *persisted done* (what the cursor file says), plus the in-flight
//! position and the highest position ever handed out. With the cursor persisted on every
//! acknowledgement (flush interval zero) or only on close (an interval longer than the test),
//! what a crash keeps is exact, so every batch is predicted exactly: priority order, order
//! within a priority, expiry skipping and counting, redelivery after rewind and after a crash,
//! and never an acknowledged entry after a clean reopen. A crash copies the store directory
//! at that instant and reopens the copy (see `common::copy_dir`).
//!
//! After the run the store is closed, reopened and drained: it must hold exactly the model's
//! entries that are neither done nor expired — no acknowledged-enqueue message is ever lost.

mod common;

use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::{ManualClock, copy_dir};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use spoke_store::queue::{
    EndpointQueue, Entry, EntryId, PRIORITIES, QueueConfig, QueueStats, QueueStore,
};

const T0: i64 = 1_000_000;
const NAME: &str = "$upstream";

#[derive(Debug, Clone)]
enum Op {
    /// Priority, TTL in ms (`None`: never expires), payload length.
    Enqueue(u8, Option<i64>, usize),
    Batch(usize),
    /// Acknowledges the handed-out ids picked by these numbers.
    Ack(Vec<u16>),
    Rewind,
    Advance(i64),
    Reopen,
    Crash,
    /// `QueueStore::reclaim`: expires heads, persists every cursor, deletes done segments.
    Reclaim,
}

fn op() -> impl Strategy<Value = Op> {
    let priority = prop_oneof![3 => Just(0u8), 2 => Just(4u8), 1 => 0u8..10];
    let ttl = prop_oneof![2 => Just(None), 1 => (0i64..60).prop_map(Some)];
    prop_oneof![
        8 => (priority, ttl, 0usize..40).prop_map(|(p, t, l)| Op::Enqueue(p, t, l)),
        4 => (1usize..8).prop_map(Op::Batch),
        4 => prop::collection::vec(any::<u16>(), 0..6).prop_map(Op::Ack),
        1 => Just(Op::Rewind),
        2 => (0i64..30).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => Just(Op::Reclaim),
    ]
}

fn fail(e: impl Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

#[derive(Debug, Clone)]
struct Item {
    payload: Vec<u8>,
    enqueued_ms: i64,
    expires_at_ms: Option<i64>,
    done: bool,
    persisted: bool,
}

#[derive(Debug, Default)]
struct Lane {
    items: Vec<Item>,
    next: usize,
    high: usize,
}

impl Lane {
    fn acked(&self) -> usize {
        self.items
            .iter()
            .position(|i| !i.done)
            .unwrap_or(self.items.len())
    }
}

#[derive(Debug)]
struct Model {
    lanes: Vec<Lane>,
    expired: u64,
    flush_on_ack: bool,
}

impl Model {
    fn batch(&mut self, max: usize, now: i64) -> Vec<EntryId> {
        let mut out = Vec::new();
        for (p, lane) in self.lanes.iter_mut().enumerate() {
            while out.len() < max && lane.next < lane.items.len() {
                let offset = lane.next;
                lane.next += 1;
                lane.high = lane.high.max(lane.next);
                let item = &mut lane.items[offset];
                if item.done {
                    continue;
                }
                if item.expires_at_ms.is_some_and(|at| at <= now) {
                    item.done = true;
                    self.expired += 1;
                    continue;
                }
                out.push(EntryId {
                    priority: p as u8,
                    offset: offset as u64,
                });
            }
        }
        out
    }

    fn ack(&mut self, ids: &[EntryId]) {
        for id in ids {
            let lane = &mut self.lanes[usize::from(id.priority)];
            if (id.offset as usize) < lane.high {
                lane.items[id.offset as usize].done = true;
            }
        }
        if self.flush_on_ack {
            self.persist();
        }
    }

    fn rewind(&mut self) {
        for lane in &mut self.lanes {
            lane.next = lane.acked();
        }
    }

    /// Marks done the expired entries at the head of every priority (counted unless they
    /// were handed out), then persists.
    fn reclaim(&mut self, now: i64) {
        for lane in &mut self.lanes {
            loop {
                let head = lane.acked();
                let Some(item) = lane.items.get_mut(head) else {
                    break;
                };
                if item.expires_at_ms.is_none_or(|at| at > now) {
                    break;
                }
                item.done = true;
                if head >= lane.next {
                    self.expired += 1;
                }
            }
            lane.next = lane.next.max(lane.acked());
            lane.high = lane.high.max(lane.next);
        }
        self.persist();
    }

    fn persist(&mut self) {
        for item in self.lanes.iter_mut().flat_map(|l| l.items.iter_mut()) {
            item.persisted = item.done;
        }
    }

    /// A reopen: what is on disk is what is known.
    fn reopen(&mut self) {
        for lane in &mut self.lanes {
            for item in &mut lane.items {
                item.done = item.persisted;
            }
            lane.next = lane.acked();
            lane.high = lane.next;
        }
        self.expired = 0;
    }

    fn check_entry(&self, entry: &Entry, id: EntryId) -> Result<(), TestCaseError> {
        prop_assert_eq!(entry.id, id);
        let item = &self.lanes[usize::from(id.priority)].items[id.offset as usize];
        prop_assert_eq!(&entry.payload[..], &item.payload[..]);
        prop_assert_eq!(entry.enqueued_ms, item.enqueued_ms);
        prop_assert_eq!(entry.expires_at_ms, item.expires_at_ms);
        Ok(())
    }

    fn check_stats(&self, stats: &QueueStats) -> Result<(), TestCaseError> {
        prop_assert_eq!(stats.expired_total, self.expired);
        for s in &stats.priorities {
            let lane = &self.lanes[usize::from(s.priority)];
            let pending: Vec<_> = lane.items.iter().filter(|i| !i.done).collect();
            prop_assert_eq!(s.depth, pending.len() as u64, "priority {}", s.priority);
            if let Some(oldest) = s.oldest_enqueued_ms {
                prop_assert_eq!(Some(oldest), pending.first().map(|i| i.enqueued_ms));
            }
        }
        let depth: usize = self
            .lanes
            .iter()
            .map(|l| l.items.iter().filter(|i| !i.done).count())
            .sum();
        prop_assert_eq!(stats.depth, depth as u64);
        Ok(())
    }
}

struct Harness {
    config: QueueConfig,
    clock: ManualClock,
    dirs: Vec<tempfile::TempDir>,
    store: QueueStore,
    queue: EndpointQueue,
}

impl Harness {
    fn dir(&self) -> PathBuf {
        self.dirs.last().expect("a directory").path().to_owned()
    }

    async fn open(&mut self, dir: PathBuf) -> Result<(), TestCaseError> {
        self.store = QueueStore::open(dir, self.config.clone())
            .await
            .map_err(fail)?;
        self.queue = self.store.endpoint(NAME).await.map_err(fail)?;
        Ok(())
    }
}

async fn run(
    flush_on_ack: bool,
    segment_max_bytes: u64,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::at(T0);
    let config = QueueConfig {
        max_total_bytes: 1 << 24,
        segment_max_bytes,
        cursor_flush_interval: if flush_on_ack {
            Duration::ZERO
        } else {
            Duration::from_hours(24)
        },
        clock: clock.clock(),
    };
    let dir = tempfile::tempdir().map_err(fail)?;
    let store = QueueStore::open(dir.path(), config.clone())
        .await
        .map_err(fail)?;
    let queue = store.endpoint(NAME).await.map_err(fail)?;
    let mut h = Harness {
        config,
        clock,
        dirs: vec![dir],
        store,
        queue,
    };
    let mut model = Model {
        lanes: (0..PRIORITIES).map(|_| Lane::default()).collect(),
        expired: 0,
        flush_on_ack,
    };
    let mut handed_out: Vec<EntryId> = Vec::new();
    let mut serial = 0u32;
    for op in ops {
        let now = h.clock.now();
        match op {
            Op::Enqueue(priority, ttl, len) => {
                serial += 1;
                let mut payload = serial.to_le_bytes().to_vec();
                payload.resize(4 + len, priority);
                let expires_at_ms = ttl.map(|t| now + t);
                h.queue
                    .enqueue(priority, Bytes::from(payload.clone()), now, expires_at_ms)
                    .await
                    .map_err(fail)?;
                model.lanes[usize::from(priority)].items.push(Item {
                    payload,
                    enqueued_ms: now,
                    expires_at_ms,
                    done: false,
                    persisted: false,
                });
            }
            Op::Batch(max) => {
                let batch = h.queue.try_next_batch(max).await.map_err(fail)?;
                let expected = model.batch(max, now);
                prop_assert_eq!(
                    batch.iter().map(|e| e.id).collect::<Vec<_>>(),
                    expected.clone()
                );
                for (entry, id) in batch.iter().zip(expected) {
                    model.check_entry(entry, id)?;
                }
                handed_out.extend(batch.iter().map(|e| e.id));
            }
            Op::Ack(picks) => {
                let ids: Vec<EntryId> = picks
                    .iter()
                    .filter(|_| !handed_out.is_empty())
                    .map(|&n| handed_out[usize::from(n) % handed_out.len()])
                    .collect();
                h.queue.ack(&ids).await.map_err(fail)?;
                model.ack(&ids);
            }
            Op::Rewind => {
                h.queue.rewind();
                model.rewind();
            }
            Op::Advance(ms) => h.clock.advance(ms),
            Op::Reopen => {
                h.store.close().await.map_err(fail)?;
                model.persist();
                model.reopen();
                h.open(h.dir()).await?;
            }
            Op::Reclaim => {
                h.store.reclaim().await.map_err(fail)?;
                model.reclaim(now);
            }
            Op::Crash => {
                let copy = tempfile::tempdir().map_err(fail)?;
                copy_dir(&h.dir(), copy.path());
                h.dirs.push(copy);
                model.reopen();
                h.open(h.dir()).await?;
            }
        }
        model.check_stats(&h.queue.stats())?;
        prop_assert!(h.store.total_bytes() <= h.config.max_total_bytes);
    }

    // Everything neither done nor expired is still there after a clean reopen.
    h.store.close().await.map_err(fail)?;
    model.persist();
    model.reopen();
    h.open(h.dir()).await?;
    let now = h.clock.now();
    let batch = h.queue.try_next_batch(usize::MAX).await.map_err(fail)?;
    let expected = model.batch(usize::MAX, now);
    prop_assert_eq!(batch.len(), expected.len());
    for (entry, id) in batch.iter().zip(expected) {
        model.check_entry(entry, id)?;
    }
    h.store.close().await.map_err(fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_model(
        flush_on_ack in any::<bool>(),
        segment_max_bytes in prop_oneof![Just(96u64), Just(400), Just(1 << 20)],
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(flush_on_ack, segment_max_bytes, ops))?;
    }
}
