//! kill -9: a child process (this test binary, running the ignored `kill9_child` test) enqueues
//! from many tasks and consumes with acknowledgements, printing each enqueue once it has
//! resolved, each entry it was handed, and each acknowledgement once it has resolved. The
//! parent SIGKILLs it mid-stream, reopens the store and checks that every confirmed enqueue
//! was either handed to the child's consumer or is delivered now, that no confirmed
//! acknowledgement is delivered again (the cursor is persisted on every ack here), and that
//! each sender's messages come back in order.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use spoke_store::queue::{QueueConfig, QueueStore};

const DIR_VAR: &str = "SPOKE_QUEUE_KILL_DIR";
const SENDERS: usize = 16;

fn config() -> QueueConfig {
    QueueConfig {
        segment_max_bytes: 64 << 10,
        cursor_flush_interval: Duration::ZERO,
        ..QueueConfig::default()
    }
}

/// (sender, sequence number) from a payload or a printed line's tail.
fn parse(text: &str) -> (usize, u64) {
    let (s, i) = text.split_once(':').expect("sender:seq");
    (s.parse().expect("sender"), i.parse().expect("seq"))
}

/// What the child confirmed: enqueues that resolved, entries handed out, acknowledgements
/// that resolved.
#[derive(Debug, Default)]
struct Confirmed {
    enqueued: BTreeSet<(usize, u64)>,
    handed_out: BTreeSet<(usize, u64)>,
    acked: BTreeSet<(usize, u64)>,
}

impl Confirmed {
    fn record(&mut self, line: &str) {
        let Some((kind, text)) = line.split_once(' ') else {
            return;
        };
        let set = match kind {
            "enq" => &mut self.enqueued,
            "got" => &mut self.handed_out,
            "ack" => &mut self.acked,
            _ => return,
        };
        set.insert(parse(text));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child half of kill_minus_nine_loses_nothing_confirmed"]
async fn kill9_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let store = QueueStore::open(dir, config()).await.unwrap();
    let queue = store.endpoint("$upstream").await.unwrap();
    for sender in 0..SENDERS {
        let queue = queue.clone();
        tokio::spawn(async move {
            for seq in 0u64.. {
                let text = format!("{sender}:{seq}");
                let priority = (sender % 3) as u8;
                queue
                    .enqueue(priority, Bytes::from(text.clone()), 0, None)
                    .await
                    .unwrap();
                println!("enq {text}");
            }
        });
    }
    loop {
        let batch = queue.next_batch(32).await.unwrap();
        for entry in &batch {
            println!("got {}", String::from_utf8_lossy(&entry.payload));
        }
        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
        queue.ack(&ids).await.unwrap();
        for entry in &batch {
            println!("ack {}", String::from_utf8_lossy(&entry.payload));
        }
    }
}

#[tokio::test]
async fn kill_minus_nine_loses_nothing_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["kill9_child", "--exact", "--ignored", "--nocapture"])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Confirmed::default();
    for line in lines.by_ref() {
        seen.record(&line.unwrap());
        if seen.enqueued.len() >= 4000 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What the child printed before it died happened too.
    for line in lines {
        seen.record(&line.unwrap());
    }
    let Confirmed {
        enqueued,
        handed_out,
        acked,
    } = seen;
    assert!(enqueued.len() >= 4000, "the child stopped early");

    let store = QueueStore::open(dir.path(), config()).await.unwrap();
    let queue = store.endpoint("$upstream").await.unwrap();
    let mut delivered = BTreeSet::new();
    let mut latest: BTreeMap<usize, u64> = BTreeMap::new();
    loop {
        let batch = queue.try_next_batch(1000).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for entry in batch {
            let (sender, seq) = parse(&String::from_utf8_lossy(&entry.payload));
            if let Some(previous) = latest.insert(sender, seq) {
                assert!(previous < seq, "sender {sender}: {seq} after {previous}");
            }
            delivered.insert((sender, seq));
        }
    }
    let lost: Vec<_> = enqueued
        .iter()
        .filter(|m| !handed_out.contains(m) && !delivered.contains(m))
        .collect();
    assert!(lost.is_empty(), "confirmed enqueues lost: {lost:?}");
    let again: Vec<_> = acked.intersection(&delivered).collect();
    assert!(
        again.is_empty(),
        "confirmed acks delivered again: {again:?}"
    );
    assert!(!acked.is_empty(), "the consumer ran");
    store.close().await.unwrap();
}
