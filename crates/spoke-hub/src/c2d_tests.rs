//! C2D actor tests against the real SQLite store and a transport the test drives: each send
//! is reported on a channel with a switch that acknowledges (or fails) it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use spoke_store::sql::SqliteStore;
use tokio::sync::{mpsc, oneshot};

use super::*;

/// One message handed to the transport, with the switch that settles it.
struct Sent {
    topic: String,
    body: Bytes,
    settle: oneshot::Sender<bool>,
}

struct TestTransport {
    online: AtomicBool,
    sent: Mutex<Option<mpsc::UnboundedSender<Sent>>>,
}

impl Transport for TestTransport {
    fn send(&self, _device: &DeviceId, topic: String, body: Bytes) -> Option<Ack> {
        if !self.online.load(Ordering::SeqCst) {
            return None;
        }
        let (settle, settled) = oneshot::channel();
        let tx = self.sent.lock().unwrap().clone()?;
        tx.send(Sent {
            topic,
            body,
            settle,
        })
        .ok()?;
        Some(Box::pin(async move { settled.await.unwrap_or(false) }))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn HubStore>,
    transport: Arc<TestTransport>,
    sent: mpsc::UnboundedReceiver<Sent>,
    c2d: C2d,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn HubStore> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    let (tx, sent) = mpsc::unbounded_channel();
    let transport = Arc::new(TestTransport {
        online: AtomicBool::new(false),
        sent: Mutex::new(Some(tx)),
    });
    let c2d = C2d::start(store.clone(), transport.clone(), Feedback::default())
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        transport,
        sent,
        c2d,
    }
}

fn device() -> DeviceId {
    DeviceId::parse("d1").unwrap()
}

fn message(body: &str, id: &str) -> Message {
    let mut m = Message::new(body.as_bytes().to_vec());
    m.system.message_id = Some(id.into());
    m.app.push(("k".into(), Some("v w".into())));
    m
}

#[tokio::test]
async fn queued_while_offline_then_completed_by_the_ack() {
    let mut f = fixture().await;
    f.c2d
        .send(device(), message("hello", "m1"), None)
        .await
        .unwrap();
    assert_eq!(f.c2d.count(device()).await, 1);
    f.transport.online.store(true, Ordering::SeqCst);
    f.c2d.deliver(device());
    let sent = f.sent.recv().await.unwrap();
    assert!(sent.topic.starts_with("devices/d1/messages/devicebound/"));
    assert!(sent.topic.contains("%24.mid=m1"), "{}", sent.topic);
    assert!(sent.topic.contains("k=v%20w"), "{}", sent.topic);
    assert_eq!(sent.body, Bytes::from_static(b"hello"));
    sent.settle.send(true).unwrap();
    // The count is answered by the actor after it handled the settlement it was sent first.
    while f.c2d.count(device()).await != 0 {
        tokio::task::yield_now().await;
    }
    assert!(f.store.c2d_load().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unacknowledged_message_goes_out_again() {
    let mut f = fixture().await;
    f.transport.online.store(true, Ordering::SeqCst);
    f.c2d
        .send(device(), message("again", "m2"), None)
        .await
        .unwrap();
    let first = f.sent.recv().await.unwrap();
    first.settle.send(false).unwrap();
    let rows = loop {
        let rows = f.store.c2d_load().await.unwrap();
        if rows.first().is_some_and(|r| r.delivery_count == 1) {
            break rows;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(rows.len(), 1);
    f.c2d.deliver(device());
    let second = loop {
        f.c2d.deliver(device());
        if let Ok(s) = f.sent.try_recv() {
            break s;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(second.body, Bytes::from_static(b"again"));
}

#[tokio::test]
async fn at_most_fifty_pending() {
    let f = fixture().await;
    for i in 0..MAX_PENDING {
        f.c2d
            .send(device(), message("x", &format!("m{i}")), None)
            .await
            .unwrap();
    }
    let err = f
        .c2d
        .send(device(), message("x", "over"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, C2dError::QueueFull(_)));
    assert_eq!(f.c2d.purge(device()).await.unwrap(), 50);
    assert_eq!(f.c2d.count(device()).await, 0);
}

#[tokio::test]
async fn pending_messages_survive_a_restart() {
    let f = fixture().await;
    f.c2d
        .send(device(), message("durable", "m3"), None)
        .await
        .unwrap();
    let (tx, mut sent) = mpsc::unbounded_channel();
    let transport = Arc::new(TestTransport {
        online: AtomicBool::new(true),
        sent: Mutex::new(Some(tx)),
    });
    let restarted = C2d::start(f.store.clone(), transport, Feedback::default())
        .await
        .unwrap();
    assert_eq!(restarted.count(device()).await, 1);
    restarted.deliver(device());
    assert_eq!(
        sent.recv().await.unwrap().body,
        Bytes::from_static(b"durable")
    );
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let f = fixture().await;
    let big = Message::new(vec![0_u8; MAX_SIZE + 1]);
    assert!(matches!(
        f.c2d.send(device(), big, None).await,
        Err(C2dError::TooLarge(_))
    ));
}
