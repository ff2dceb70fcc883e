//! Test support shared by the server tests: recording hooks, a raw-packet client over any
//! stream, and a TCP listener for rumqttc. Each test binary uses a subset of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use spoke_mqtt::codec::{
    Connack, Connect, ConnectReturnCode, Packet, PacketId, Publish, QoS, QosPid, Subscribe, decode,
};
use spoke_mqtt::{
    Authenticated, ConnectInfo, DisconnectReason, Hooks, MemorySessionStore, PeerInfo,
    PublishError, Server, ServerConfig, serve_connection,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

/// How long any wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Something the hooks observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connected(String, bool),
    Disconnected(String, DisconnectReason),
    Subscribed(String, String),
}

/// Everything the hooks recorded.
#[derive(Debug, Default)]
pub struct Record {
    pub events: Vec<Event>,
    pub published: Vec<(String, Publish)>,
}

/// Hooks for tests: client ids `refuse-N` are refused with code N, filters starting with
/// `forbidden` are refused, topics starting with `reject/` are rejected, and publishes wait
/// for a permit of `gate` when one is set.
#[derive(Default)]
pub struct TestHooks {
    pub store: MemorySessionStore,
    pub gate: Option<Arc<Semaphore>>,
    pub expires_in: Option<Duration>,
    pub publishes_started: AtomicUsize,
    pub log: Mutex<Record>,
    pub changed: Notify,
}

impl TestHooks {
    pub fn with_store(store: MemorySessionStore) -> Self {
        Self {
            store,
            ..Self::default()
        }
    }

    pub fn record(&self) -> MutexGuard<'_, Record> {
        self.log.lock().unwrap()
    }

    fn push(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.record());
        self.changed.notify_waiters();
    }

    /// Waits until `f` returns `Some` for the record.
    pub async fn wait_for<T>(&self, mut f: impl FnMut(&Record) -> Option<T>) -> T {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(value) = f(&self.record()) {
                    return value;
                }
                notified.await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("condition not reached in time")
    }

    /// Waits for the `Disconnected` event of `client_id` and returns its reason.
    pub async fn disconnected(&self, client_id: &str) -> DisconnectReason {
        self.wait_for(|r| {
            r.events.iter().find_map(|e| match e {
                Event::Disconnected(id, reason) if id == client_id => Some(*reason),
                _ => None,
            })
        })
        .await
    }
}

impl Hooks for TestHooks {
    type Client = String;
    type Store = MemorySessionStore;

    fn session_store(&self) -> &MemorySessionStore {
        &self.store
    }

    async fn authenticate(
        &self,
        connect: &ConnectInfo,
        _peer: &PeerInfo,
    ) -> Result<Authenticated<String>, ConnectReturnCode> {
        if let Some(code) = connect.client_id.strip_prefix("refuse-") {
            return Err(ConnectReturnCode::from_u8(code.parse().unwrap()).unwrap());
        }
        Ok(Authenticated {
            client: connect.client_id.clone(),
            client_id: connect.client_id.clone(),
            expires_at: self.expires_in.map(|d| SystemTime::now() + d),
        })
    }

    fn authorize_subscribe(&self, _client: &String, filter: &str, qos: QoS) -> Option<QoS> {
        (!filter.starts_with("forbidden")).then_some(qos)
    }

    fn subscribed(&self, client: &String, filter: &str) {
        self.push(|r| {
            r.events
                .push(Event::Subscribed(client.clone(), filter.to_owned()));
        });
    }

    async fn publish(&self, client: &String, publish: Publish) -> Result<(), PublishError> {
        self.publishes_started.fetch_add(1, Ordering::SeqCst);
        if publish.topic.starts_with("reject/") {
            return Err(PublishError::Forbidden(publish.topic));
        }
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.push(|r| r.published.push((client.clone(), publish)));
        Ok(())
    }

    fn connected(&self, client: &String, session_present: bool) {
        self.push(|r| {
            r.events
                .push(Event::Connected(client.clone(), session_present));
        });
    }

    fn disconnected(&self, client: &String, reason: DisconnectReason) {
        self.push(|r| r.events.push(Event::Disconnected(client.clone(), reason)));
    }
}

pub fn server(hooks: TestHooks) -> Server<TestHooks> {
    Server::new(hooks, ServerConfig::default())
}

pub fn pid(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

pub fn connect_packet(client_id: &str, clean_session: bool, keep_alive: u16) -> Packet {
    Packet::Connect(Connect {
        clean_session,
        keep_alive,
        client_id: client_id.to_owned(),
        will: None,
        username: Some(format!("localhost/{client_id}/?api-version=2019-10-01")),
        password: Some(Bytes::from_static(b"SharedAccessSignature sr=x&sig=y&se=1")),
    })
}

pub fn publish_packet(topic: &str, id: Option<u16>, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos_pid: id.map_or(QosPid::AtMostOnce, |id| QosPid::AtLeastOnce(pid(id))),
        retain: false,
        topic: topic.to_owned(),
        payload: Bytes::from_static(payload),
    })
}

pub fn subscribe_packet(id: u16, filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(id),
        filters: filters.iter().map(|(f, q)| ((*f).to_owned(), *q)).collect(),
    })
}

/// A client speaking raw packets.
pub struct Raw<S> {
    io: S,
    buf: BytesMut,
    wait: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    pub fn new(io: S) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            wait: WAIT,
        }
    }

    /// Waits up to a day for packets: for tests with paused time that wait for server timers.
    pub fn patient(mut self) -> Self {
        self.wait = Duration::from_hours(24);
        self
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        packet.encode(&mut out);
        self.send_bytes(&out).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next packet, or `None` once the server closed the stream.
    pub async fn recv(&mut self) -> Option<Packet> {
        let read = async {
            loop {
                if let Some(packet) = decode(&mut self.buf, 1 << 20).unwrap() {
                    return Some(packet);
                }
                match self.io.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(self.wait, read)
            .await
            .expect("no packet and no close in time")
    }

    pub async fn expect(&mut self) -> Packet {
        self.recv().await.expect("connection closed")
    }

    /// Asserts the server closes the stream without sending anything more.
    pub async fn expect_closed(&mut self) {
        assert_eq!(self.recv().await, None);
    }
}

/// Starts serving one in-memory connection.
pub fn start(server: &Server<TestHooks>) -> (Raw<DuplexStream>, JoinHandle<DisconnectReason>) {
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let server = server.clone();
    let task =
        tokio::spawn(
            async move { serve_connection(&server, server_side, PeerInfo::default()).await },
        );
    (Raw::new(client), task)
}

/// Starts a connection and completes CONNECT; returns the Session Present flag too.
pub async fn connect(
    server: &Server<TestHooks>,
    client_id: &str,
    clean_session: bool,
) -> (Raw<DuplexStream>, JoinHandle<DisconnectReason>, bool) {
    let (mut raw, task) = start(server);
    raw.send(&connect_packet(client_id, clean_session, 60))
        .await;
    let Packet::Connack(Connack {
        session_present,
        code: ConnectReturnCode::Accepted,
    }) = raw.expect().await
    else {
        panic!("connection refused");
    };
    (raw, task, session_present)
}

/// Serves TCP connections on 127.0.0.1 on an ephemeral port, forever.
pub async fn listen(server: &Server<TestHooks>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = server.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                let peer = PeerInfo {
                    addr: Some(peer),
                    ..PeerInfo::default()
                };
                serve_connection(&server, stream, peer).await
            });
        }
    });
    addr
}
