//! The MQTT 3.1.1 server core: the I/O driver around [`crate::codec`] and [`crate::session`].
//!
//! The application (the Spoke hub, the edge hub) accepts connections itself (TCP with
//! `TCP_NODELAY`, TLS, WebSocket adapters) and hands each stream to [`serve_connection`].
//! Everything protocol-specific to the application comes in through [`Hooks`]:
//! authentication, subscription policy, handling of inbound PUBLISH, and connect/disconnect
//! notifications. Persistent subscriptions survive restarts through a [`SessionStore`].
//!
//! [`Server`] is a cheap-to-clone handle shared by all connection tasks and the application,
//! which uses it to send messages to clients ([`Server::publish`]) and to manage connections.
//! Sessions live in a sharded registry (see `registry.rs` for why not an actor).
//!
//! Behaviour in IoT Hub's image (see the spec's §3): one connection per client id (a new
//! CONNECT takes the session over and closes the old connection), QoS granted at most 1, QoS 2
//! PUBLISH closes the connection, RETAIN is passed to the application and never stored, the
//! keep-alive timeout is 1.5 × the client's value capped at 1767 s, and an inbound PUBLISH the
//! application refuses closes the connection.
//!
//! What survives what: subscriptions of persistent (CleanSession = 0) sessions survive process
//! restarts (through the store); outbound QoS 1 messages survive reconnects in memory and are
//! re-sent with DUP = 1; nothing else survives a restart.

mod connection;
mod registry;
mod store;
mod transport;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::oneshot;

pub use connection::serve_connection;
pub use store::{MemorySessionStore, SessionStore, StoreError};

use crate::codec::{ConnectReturnCode, MAX_REMAINING_LENGTH, Publish, QoS, Will};
use crate::session::{EnqueueError, SessionLimits};
use crate::topic::{self, TopicError};
use registry::Registry;

/// Server limits and timers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Largest inbound packet, fixed header included; larger ones close the connection.
    pub max_packet_size: usize,
    /// Time allowed between accepting a stream and receiving CONNECT (MQTT 3.1.1 §3.1 says a
    /// server should close a connection that does not send CONNECT in reasonable time).
    pub connect_timeout: Duration,
    /// Inbound PUBLISH packets handed to [`Hooks::publish`] and not yet finished, per
    /// connection; at this limit the server stops reading the socket (back-pressure).
    pub max_inflight_in: usize,
    /// Outbound QoS 1 messages sent and not yet acknowledged, per session.
    pub max_inflight_out: usize,
    /// Outbound messages queued behind that window, per session (online or offline).
    pub max_queued_out: usize,
    /// Subscriptions per session; more are refused with SUBACK 0x80.
    pub max_subscriptions: usize,
    /// The connection is closed after `keepalive_factor` × the client's keep-alive without a
    /// packet (MQTT 3.1.1 §3.1.2.10 says 1.5).
    pub keepalive_factor: f64,
    /// Cap on the client's keep-alive (IoT Hub: 1767 s).
    pub max_keepalive: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            // 256 KiB messages (IoT Hub's D2C limit) plus room for the topic and header.
            max_packet_size: 256 * 1024 + 8 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_inflight_in: 64,
            max_inflight_out: 32,
            max_queued_out: 100,
            max_subscriptions: 32,
            keepalive_factor: 1.5,
            max_keepalive: Duration::from_secs(1767),
        }
    }
}

/// What the application knows about the other end of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address, if the transport has one.
    pub addr: Option<SocketAddr>,
    /// The TLS client certificate chain (DER, leaf first), empty without client auth.
    pub client_certificates: Vec<Bytes>,
}

/// The CONNECT fields the application authenticates (MQTT 3.1.1 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    /// Client identifier as sent (may be empty with CleanSession = 1, §3.1.3.1).
    pub client_id: String,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// CleanSession flag.
    pub clean_session: bool,
    /// Keep-alive in seconds as sent.
    pub keep_alive: u16,
    /// The Will message; the server never publishes it, the application may.
    pub will: Option<Will>,
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated<C> {
    /// The application's view of the client, passed back to every hook.
    pub client: C,
    /// The session key: one connection and one session per value.
    pub client_id: String,
    /// When the credentials expire; the connection is closed then.
    pub expires_at: Option<SystemTime>,
}

/// Why the application did not accept an inbound PUBLISH. Either way the connection is closed
/// without a PUBACK, as IoT Hub does for a forbidden topic; the client retries the message on
/// its next connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The client may not publish there.
    #[error("publish forbidden: {0}")]
    Forbidden(String),
    /// The application could not take the message now.
    #[error("publish not accepted: {0}")]
    Unavailable(String),
}

/// Why a connection ended (returned by [`serve_connection`], given to
/// [`Hooks::disconnected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT (MQTT 3.1.1 §3.14): a Will must not be published.
    ClientDisconnect,
    /// The stream ended or failed.
    ConnectionLost,
    /// A malformed or unexpected packet (logged).
    ProtocolError,
    /// No packet within the keep-alive timeout (MQTT 3.1.1 §3.1.2.10).
    KeepAliveTimeout,
    /// The credentials' `expires_at` passed.
    TokenExpired,
    /// The client sent a QoS 2 PUBLISH, which is refused.
    QoS2Refused,
    /// [`Hooks::publish`] returned an error.
    PublishRejected,
    /// The session store failed.
    StoreFailed,
    /// A new connection with the same client id took the session over.
    Takeover,
    /// [`Server::disconnect`] or [`Server::remove_session`] closed the connection.
    ServerDisconnect,
    /// No CONNECT arrived in time (never passed to hooks).
    ConnectTimeout,
    /// The CONNECT was refused with this CONNACK code (never passed to hooks).
    Refused(ConnectReturnCode),
}

impl DisconnectReason {
    /// Whether another connection took over the session (the application should not treat
    /// the client as offline).
    pub fn is_takeover(self) -> bool {
        self == Self::Takeover
    }
}

/// The application's side of the server. Futures must be `Send`; the synchronous hooks are
/// called on the connection task and should return quickly (spawn work if needed).
pub trait Hooks: Send + Sync + 'static {
    /// The application's view of an authenticated client.
    type Client: Send + Sync + 'static;
    /// Where persistent subscriptions are stored.
    type Store: SessionStore;

    /// The session store.
    fn session_store(&self) -> &Self::Store;

    /// Authenticates a CONNECT. An error is sent as the CONNACK return code and the
    /// connection is closed (`Accepted` is treated as `NotAuthorized`).
    fn authenticate(
        &self,
        connect: &ConnectInfo,
        peer: &PeerInfo,
    ) -> impl Future<Output = Result<Authenticated<Self::Client>, ConnectReturnCode>> + Send;

    /// Decides a subscription: `None` refuses it (SUBACK 0x80), `Some(qos)` grants at most
    /// that QoS (the server caps it at the requested QoS and at 1).
    fn authorize_subscribe(&self, client: &Self::Client, filter: &str, qos: QoS) -> Option<QoS>;

    /// A subscription was granted and its SUBACK written.
    fn subscribed(&self, client: &Self::Client, filter: &str) {
        let _ = (client, filter);
    }

    /// Handles an inbound QoS 0 or 1 PUBLISH (RETAIN is only a flag: nothing is retained).
    /// Resolve once the message is durably handled; the PUBACK is sent then, in order. The
    /// future may be dropped unfinished if the connection closes first.
    fn publish(
        &self,
        client: &Self::Client,
        publish: Publish,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// The CONNACK was sent.
    fn connected(&self, client: &Self::Client, session_present: bool) {
        let _ = (client, session_present);
    }

    /// The connection ended (after `connected`; see [`DisconnectReason::is_takeover`]).
    fn disconnected(&self, client: &Self::Client, reason: DisconnectReason) {
        let _ = (client, reason);
    }
}

/// Why [`Server::publish`] did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// No session, or no subscription of the session matches the topic.
    #[error("client not subscribed to the topic")]
    NotSubscribed,
    /// A QoS 0 message for a client that is not connected (dropped).
    #[error("client not connected")]
    NotConnected,
    /// The session's outbound queue is full.
    #[error("client queue full")]
    Full,
    /// The topic is not a valid topic name.
    #[error("invalid topic name")]
    InvalidTopic(#[source] TopicError),
    /// The message does not fit in an MQTT packet.
    #[error("message too large")]
    TooLarge,
}

/// The session ended (discarded, or the server dropped it) before the client acknowledged
/// the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session gone before the message was acknowledged")]
pub struct Gone;

/// Completion of an outbound message: for QoS 1, resolves when the client's PUBACK arrives
/// (possibly after reconnects of a persistent session), or with [`Gone`] when the session is
/// discarded first; for QoS 0, resolves at once. Dropping it does not cancel the delivery.
#[derive(Debug)]
pub struct Delivery(Option<oneshot::Receiver<()>>);

impl Future for Delivery {
    type Output = Result<(), Gone>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            None => Poll::Ready(Ok(())),
            Some(rx) => Pin::new(rx).poll(cx).map(|r| r.map_err(|_| Gone)),
        }
    }
}

/// The shared server state; see the module documentation.
pub struct Server<H: Hooks> {
    inner: Arc<Inner<H>>,
}

struct Inner<H> {
    hooks: H,
    config: ServerConfig,
    registry: Registry,
}

impl<H: Hooks> Clone for Server<H> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<H: Hooks> Server<H> {
    /// A server with these hooks and limits.
    pub fn new(hooks: H, config: ServerConfig) -> Self {
        let limits = SessionLimits {
            max_inflight: config.max_inflight_out.max(1),
            max_queued: config.max_queued_out,
        };
        Self {
            inner: Arc::new(Inner {
                hooks,
                config,
                registry: Registry::new(limits),
            }),
        }
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.inner.hooks
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Sends a message to `client_id` if one of its subscriptions matches `topic`, at
    /// min(`qos`, granted QoS, 1). Queued (bounded) to its connection, or, for a QoS 1
    /// message and an offline persistent session, kept until it reconnects. See [`Delivery`].
    /// Sessions are in memory only once their client connected since this server started.
    pub fn publish(
        &self,
        client_id: &str,
        topic: String,
        payload: Bytes,
        qos: QoS,
    ) -> Result<Delivery, DeliverError> {
        topic::validate_name(&topic).map_err(DeliverError::InvalidTopic)?;
        if topic.len() + payload.len() + 4 > MAX_REMAINING_LENGTH {
            return Err(DeliverError::TooLarge);
        }
        let (tx, rx) = if qos == QoS::AtMostOnce {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        };
        let granted = self
            .inner
            .registry
            .with_cell(client_id, |state| {
                let granted = state.session.enqueue(topic, payload, qos, tx)?;
                if let Some(conn) = &state.conn {
                    conn.wake();
                }
                Ok(granted)
            })
            .ok_or(DeliverError::NotSubscribed)?
            .map_err(|e| match e {
                EnqueueError::NotSubscribed => DeliverError::NotSubscribed,
                EnqueueError::Offline => DeliverError::NotConnected,
                EnqueueError::Full => DeliverError::Full,
            })?;
        Ok(Delivery(if granted == QoS::AtLeastOnce {
            rx
        } else {
            None
        }))
    }

    /// Sends a message to every session with a subscription matching `topic` (plain broker
    /// fan-out, for applications that offer it on some topics); returns to how many sessions.
    /// Sessions whose queue is full or whose client is offline (QoS 0) miss it. Visits every
    /// session in memory: meant for servers with few clients, such as an edge hub.
    pub fn publish_to_subscribers(&self, topic: &str, payload: &Bytes, qos: QoS) -> usize {
        self.inner
            .registry
            .client_ids()
            .iter()
            .filter(|id| {
                self.publish(id, topic.to_owned(), payload.clone(), qos)
                    .is_ok()
            })
            .count()
    }

    /// Whether `client_id` has a connection.
    pub fn is_connected(&self, client_id: &str) -> bool {
        self.inner
            .registry
            .with_cell(client_id, |s| s.conn.is_some())
            .unwrap_or(false)
    }

    /// Whether `client_id`'s session has a subscription matching `topic`.
    pub fn is_subscribed(&self, client_id: &str, topic: &str) -> bool {
        self.inner
            .registry
            .with_cell(client_id, |s| {
                s.session.subscriptions().max_qos(topic).is_some()
            })
            .unwrap_or(false)
    }

    /// Closes `client_id`'s connection (for a disabled or deleted device); a persistent
    /// session stays. Returns whether it was connected.
    pub fn disconnect(&self, client_id: &str) -> bool {
        self.inner.registry.kick(client_id)
    }

    /// Closes every connection (for a server shutdown); persistent sessions stay. Returns how
    /// many connections were closed.
    pub fn disconnect_all(&self) -> usize {
        self.inner.registry.kick_all()
    }

    /// Closes `client_id`'s connection and forgets its session, in memory and in the store;
    /// its pending deliveries resolve with [`Gone`].
    pub async fn remove_session(&self, client_id: &str) -> Result<(), StoreError> {
        self.inner.registry.remove(client_id);
        self.inner.hooks.session_store().remove(client_id).await
    }

    /// Number of connected clients.
    pub fn connected_count(&self) -> usize {
        self.inner.registry.connected()
    }
}
