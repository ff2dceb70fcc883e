//! One connection's task: the CONNECT handshake, then the packet loop.
//!
//! The loop owns the [`Transport`], a pipeline of inbound PUBLISH futures and the timers, and
//! reacts to whichever comes first (in this priority): credential expiry, keep-alive timeout,
//! a wake from the registry (outbound messages, or a kick), a finished inbound PUBLISH (its
//! PUBACK is encoded, in order), socket progress. Everything decodable is decoded before the
//! socket is read again; encoded replies accumulate in the write buffer and go out in one write
//! when the loop next waits, so a burst costs one syscall, not one per packet.
//!
//! Back-pressure: at `max_inflight_in` unfinished inbound PUBLISH futures, or with a write
//! buffer above `WRITE_HIGH_WATER` (the client does not read), the socket is not read.

use std::error::Error;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use futures_util::{FutureExt, StreamExt, stream::FuturesOrdered};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{Instrument, debug, info, warn};

use super::registry::{Attached, CellState, ConnHandle, SessionCell};
use super::transport::{IoEvent, Transport};
use super::{
    ConnectInfo, DisconnectReason, Hooks, Inner, PeerInfo, PublishError, Server, SessionStore,
    StoreError,
};
use crate::codec::{
    self, Connack, Connect, ConnectReturnCode, DecodeError, Packet, PacketId, Publish, QoS, QosPid,
    Suback, SubackCode, Subscribe, Unsubscribe, encode_publish,
};
use crate::session::Subscriptions;

/// Above this many buffered outbound bytes, outbound messages wait and the socket is not read.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Time allowed for the last bytes (a refusing CONNACK, final PUBACKs) to go out on close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one client connection until it ends, and says why it ended.
///
/// `stream` is any byte stream (TCP, TLS, a WebSocket adapter); setting `TCP_NODELAY` is the
/// caller's job. Runs in a `tracing` span `mqtt` with the peer address and, once
/// authenticated, the client id.
pub async fn serve_connection<S, H>(
    server: &Server<H>,
    stream: S,
    peer: PeerInfo,
) -> DisconnectReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Hooks,
{
    let peer_addr = peer.addr.map_or_else(|| "-".to_owned(), |a| a.to_string());
    let span = tracing::info_span!("mqtt", peer = %peer_addr, client_id = tracing::field::Empty);
    run(&server.inner, Transport::new(stream), peer)
        .instrument(span)
        .await
}

async fn run<S, H>(inner: &Inner<H>, mut io: Transport<S>, peer: PeerInfo) -> DisconnectReason
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Hooks,
{
    let connect = match read_connect(inner, &mut io).await {
        Ok(connect) => connect,
        Err(Refusal::Code(code)) => return refuse(&mut io, code).await,
        Err(Refusal::Close(reason)) => return reason,
    };
    // §3.1.3.1: a zero-length client id needs CleanSession = 1.
    if connect.client_id.is_empty() && !connect.clean_session {
        return refuse(&mut io, ConnectReturnCode::IdentifierRejected).await;
    }
    let info = ConnectInfo {
        client_id: connect.client_id,
        username: connect.username,
        password: connect.password,
        clean_session: connect.clean_session,
        keep_alive: connect.keep_alive,
        will: connect.will,
    };
    let auth = match inner.hooks.authenticate(&info, &peer).await {
        Ok(auth) => auth,
        Err(code) => {
            let code = match code {
                ConnectReturnCode::Accepted => ConnectReturnCode::NotAuthorized,
                code => code,
            };
            info!(client_id = %info.client_id, ?code, "CONNECT refused");
            return refuse(&mut io, code).await;
        }
    };
    tracing::Span::current().record("client_id", auth.client_id.as_str());
    let persistent = !info.clean_session;
    let stored = match prepare_store(inner, &auth.client_id, persistent).await {
        Ok(stored) => stored,
        Err(code) => return refuse(&mut io, code).await,
    };

    let conn = inner.registry.new_connection();
    let Attached {
        cell,
        session_present,
    } = inner
        .registry
        .attach(&auth.client_id, persistent, stored, &conn);
    Packet::Connack(Connack {
        session_present,
        code: ConnectReturnCode::Accepted,
    })
    .encode(&mut io.wbuf);
    if let Err(e) = io.flush().await {
        debug!(error = %Chain(&e), "CONNACK not delivered");
        inner.registry.detach(&auth.client_id, &cell, &conn);
        return DisconnectReason::ConnectionLost;
    }
    info!(
        session_present,
        persistent,
        keep_alive = info.keep_alive,
        "connected"
    );
    inner.hooks.connected(&auth.client, session_present);

    let ctx = Ctx {
        inner,
        client: &auth.client,
        client_id: &auth.client_id,
        cell: &cell,
        conn: &conn,
        persistent,
    };
    let keepalive = (info.keep_alive > 0).then(|| {
        Duration::from_secs(u64::from(info.keep_alive))
            .min(inner.config.max_keepalive)
            .mul_f64(inner.config.keepalive_factor)
    });
    let expiry = auth.expires_at.map(|at| {
        Instant::now().checked_add(at.duration_since(SystemTime::now()).unwrap_or_default())
    });
    let reason = drive(&ctx, &mut io, keepalive, expiry.flatten()).await;

    inner.registry.detach(&auth.client_id, &cell, &conn);
    info!(?reason, "disconnected");
    inner.hooks.disconnected(&auth.client, reason);
    if reason != DisconnectReason::ConnectionLost {
        // Best effort: PUBACKs already encoded still go out.
        let _ = timeout(CLOSE_TIMEOUT, io.close()).await;
    }
    reason
}

/// How a connection ends before CONNACK.
enum Refusal {
    /// Answer CONNACK with this code, then close.
    Code(ConnectReturnCode),
    /// Just close.
    Close(DisconnectReason),
}

/// Reads the first packet, which must be CONNECT (MQTT 3.1.1 §3.1), within the timeout.
async fn read_connect<S, H>(inner: &Inner<H>, io: &mut Transport<S>) -> Result<Connect, Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Hooks,
{
    let max = inner.config.max_packet_size;
    let first = async {
        loop {
            if let Some(packet) = codec::decode(&mut io.rbuf, max)? {
                return Ok(Some(packet));
            }
            if io.event(true).await? == IoEvent::Eof {
                return Ok(None);
            }
        }
    };
    let Ok(first) = timeout(inner.config.connect_timeout, first).await else {
        info!("no CONNECT in time; closing");
        return Err(Refusal::Close(DisconnectReason::ConnectTimeout));
    };
    let first: Result<Option<Packet>, ReadError> = first;
    match first {
        Ok(Some(Packet::Connect(connect))) => Ok(connect),
        Ok(Some(other)) => {
            warn!(
                packet = other.name(),
                "first packet is not CONNECT (MQTT 3.1.1 §3.1); closing"
            );
            Err(Refusal::Close(DisconnectReason::ProtocolError))
        }
        Ok(None) => Err(Refusal::Close(DisconnectReason::ConnectionLost)),
        Err(ReadError::Decode(e)) if e.is_unacceptable_protocol() => {
            info!(error = %e, "unsupported protocol (MQTT 3.1.1 §3.1.2.2)");
            Err(Refusal::Code(
                ConnectReturnCode::UnacceptableProtocolVersion,
            ))
        }
        Err(ReadError::Decode(e)) => {
            warn!(error = %Chain(&e), "malformed CONNECT; closing");
            Err(Refusal::Close(DisconnectReason::ProtocolError))
        }
        Err(ReadError::Io(e)) => {
            debug!(error = %Chain(&e), "connection failed before CONNECT");
            Err(Refusal::Close(DisconnectReason::ConnectionLost))
        }
    }
}

/// Loads a persistent session's subscriptions when it is not in memory, or forgets a stored
/// session for a CleanSession = 1 connect (MQTT 3.1.1 §3.1.2.4).
async fn prepare_store<H: Hooks>(
    inner: &Inner<H>,
    client_id: &str,
    persistent: bool,
) -> Result<Option<Subscriptions>, ConnectReturnCode> {
    let store = inner.hooks.session_store();
    let result = if !persistent {
        store.remove(client_id).await.map(|()| None)
    } else if inner.registry.has_persistent(client_id) {
        Ok(None)
    } else {
        store
            .load(client_id)
            .await
            .map(|s| s.map(Subscriptions::from_vec))
    };
    result.map_err(|e| {
        warn!(error = %Chain(&e), "session store failed; refusing CONNECT");
        ConnectReturnCode::ServerUnavailable
    })
}

/// Sends a refusing CONNACK (MQTT 3.1.1 §3.2.2.3) and closes.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Transport<S>,
    code: ConnectReturnCode,
) -> DisconnectReason {
    Packet::Connack(Connack {
        session_present: false,
        code,
    })
    .encode(&mut io.wbuf);
    let _ = timeout(CLOSE_TIMEOUT, io.close()).await;
    DisconnectReason::Refused(code)
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the packet loop needs about the connection.
struct Ctx<'a, H: Hooks> {
    inner: &'a Inner<H>,
    client: &'a H::Client,
    client_id: &'a str,
    cell: &'a SessionCell,
    conn: &'a ConnHandle,
    persistent: bool,
}

/// The packet loop; see the module documentation.
async fn drive<S, H>(
    ctx: &Ctx<'_, H>,
    io: &mut Transport<S>,
    keepalive: Option<Duration>,
    expiry: Option<Instant>,
) -> DisconnectReason
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Hooks,
{
    let config = &ctx.inner.config;
    let mut inbound = FuturesOrdered::new();
    let mut last_packet = Instant::now();
    let keepalive_timer = sleep_until(last_packet + keepalive.unwrap_or_default());
    let expiry_timer = sleep_until(expiry.unwrap_or(last_packet));
    let woken = ctx.conn.woken();
    tokio::pin!(keepalive_timer, expiry_timer, woken);
    // Resend in-flight messages of a resumed session first (MQTT 3.1.1 §4.4).
    let mut want_drain = true;
    loop {
        let mut got_packet = false;
        while inbound.len() < config.max_inflight_in {
            let packet = match codec::decode(&mut io.rbuf, config.max_packet_size) {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %Chain(&e), "malformed packet; closing");
                    return DisconnectReason::ProtocolError;
                }
            };
            got_packet = true;
            match packet {
                Packet::Publish(publish) => {
                    if let QosPid::ExactlyOnce(_) = publish.qos_pid {
                        // IoT Hub grants at most QoS 1 and closes on a QoS 2 PUBLISH.
                        warn!(topic = %publish.topic, "QoS 2 PUBLISH refused; closing");
                        return DisconnectReason::QoS2Refused;
                    }
                    let id = publish.qos_pid.packet_id();
                    inbound.push_back(handle_publish(ctx.inner, ctx.client, id, publish));
                }
                Packet::Puback(id) => want_drain |= ctx.puback(id),
                Packet::Subscribe(subscribe) => {
                    if let Err(reason) = ctx.subscribe(io, subscribe).await {
                        return reason;
                    }
                }
                Packet::Unsubscribe(unsubscribe) => {
                    if let Err(reason) = ctx.unsubscribe(io, unsubscribe).await {
                        return reason;
                    }
                }
                Packet::Pingreq => Packet::Pingresp.encode(&mut io.wbuf), // §3.12.4
                Packet::Disconnect => return DisconnectReason::ClientDisconnect, // §3.14.4
                other => {
                    // A second CONNECT (§3.1), server-to-client packets, or the QoS 2 flow.
                    warn!(packet = other.name(), "unexpected packet; closing");
                    return DisconnectReason::ProtocolError;
                }
            }
        }
        if got_packet {
            last_packet = Instant::now();
        }
        if want_drain && io.wbuf.len() < WRITE_HIGH_WATER {
            want_drain = ctx.drain(&mut io.wbuf);
        }
        let app_busy = inbound.len() >= config.max_inflight_in;
        let read = !app_busy && io.wbuf.len() < WRITE_HIGH_WATER;
        tokio::select! {
            biased;
            () = &mut expiry_timer, if expiry.is_some() => {
                info!("credentials expired; closing");
                return DisconnectReason::TokenExpired;
            }
            () = &mut keepalive_timer, if keepalive.is_some() => {
                let period = keepalive.unwrap_or_default();
                if app_busy {
                    // Our own back-pressure is not the client's silence.
                    keepalive_timer.as_mut().reset(Instant::now() + period);
                } else if Instant::now() >= last_packet + period {
                    info!(?period, "keep-alive timeout (MQTT 3.1.1 §3.1.2.10); closing");
                    return DisconnectReason::KeepAliveTimeout;
                } else {
                    keepalive_timer.as_mut().reset(last_packet + period);
                }
            }
            () = &mut woken => {
                if let Some(reason) = ctx.conn.kicked() {
                    info!(?reason, "closed by the server");
                    return reason;
                }
                woken.set(ctx.conn.woken());
                want_drain = true;
            }
            Some((id, result)) = inbound.next(), if !inbound.is_empty() => match result {
                // §4.6: PUBACKs go out in the order the PUBLISH packets arrived.
                Ok(()) => if let Some(id) = id {
                    Packet::Puback(id).encode(&mut io.wbuf);
                },
                Err(e) => {
                    warn!(error = %Chain(&e), "PUBLISH not accepted; closing");
                    return DisconnectReason::PublishRejected;
                }
            },
            event = io.event(read) => match event {
                Ok(IoEvent::Read | IoEvent::Flushed) => {}
                Ok(IoEvent::Eof) => return DisconnectReason::ConnectionLost,
                Err(e) => {
                    debug!(error = %Chain(&e), "connection failed");
                    return DisconnectReason::ConnectionLost;
                }
            },
        }
    }
}

/// The application's handling of one inbound PUBLISH, tagged with the PUBACK to send.
fn handle_publish<'a, H: Hooks>(
    inner: &'a Inner<H>,
    client: &'a H::Client,
    id: Option<PacketId>,
    publish: Publish,
) -> impl Future<Output = (Option<PacketId>, Result<(), PublishError>)> + Send + 'a {
    inner
        .hooks
        .publish(client, publish)
        .map(move |result| (id, result))
}

impl<H: Hooks> Ctx<'_, H> {
    /// Runs `f` on the session if this connection is still the attached one.
    fn attached<R>(&self, f: impl FnOnce(&mut CellState) -> R) -> Result<R, DisconnectReason> {
        let mut state = self.cell.lock();
        if state.is_attached(self.conn) {
            Ok(f(&mut state))
        } else {
            Err(self
                .conn
                .kicked()
                .unwrap_or(DisconnectReason::ServerDisconnect))
        }
    }

    /// A PUBACK (MQTT 3.1.1 §4.3.2) completes an outbound message. Returns whether more
    /// outbound messages may now fit in the window.
    fn puback(&self, id: PacketId) -> bool {
        match self.attached(|state| state.session.puback(id)) {
            Ok(Ok(token)) => {
                if let Some(token) = token {
                    // The receiver may have been dropped: nobody waits for this delivery.
                    let _ = token.send(());
                }
                true
            }
            Ok(Err(e)) => {
                debug!(error = %e, "PUBACK ignored");
                false
            }
            Err(_) => false,
        }
    }

    /// Encodes outbound messages into `out` up to the high-water mark. Returns whether some
    /// were left for later.
    fn drain(&self, out: &mut BytesMut) -> bool {
        self.attached(|state| {
            while out.len() < WRITE_HIGH_WATER {
                let sent = state.session.next_outgoing(|o| {
                    // §3.3.1.3: RETAIN is 0 on messages sent for a subscription.
                    encode_publish(out, o.dup, o.qos_pid, false, o.topic, o.payload);
                });
                if sent.is_none() {
                    return false;
                }
            }
            true
        })
        .unwrap_or(false)
    }

    /// SUBSCRIBE (MQTT 3.1.1 §3.8.4): policy per filter, QoS capped at 1, the new list stored
    /// before the SUBACK, `Hooks::subscribed` after the SUBACK is written.
    async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut Transport<S>,
        subscribe: Subscribe,
    ) -> Result<(), DisconnectReason> {
        let hooks = &self.inner.hooks;
        let limit = self.inner.config.max_subscriptions;
        let mut list = self.attached(|state| state.session.subscriptions().clone())?;
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut granted = Vec::new();
        for (filter, requested) in subscribe.filters {
            let Some(qos) = hooks.authorize_subscribe(self.client, &filter, requested) else {
                info!(%filter, "subscription not authorized");
                codes.push(SubackCode::Failure);
                continue;
            };
            let qos = qos.min(requested).min(QoS::AtLeastOnce);
            let code = match list.insert(filter.clone(), qos, limit) {
                Ok(()) => {
                    granted.push(filter);
                    SubackCode::Granted(qos)
                }
                Err(e) => {
                    info!(%filter, error = %e, "subscription refused");
                    SubackCode::Failure
                }
            };
            codes.push(code);
        }
        if !granted.is_empty()
            && self.persistent
            && let Err(e) = self.save(&list).await
        {
            warn!(error = %Chain(&e), "storing subscriptions failed; refusing them");
            codes.fill(SubackCode::Failure);
            granted.clear();
        }
        if !granted.is_empty() {
            self.attached(|state| state.session.set_subscriptions(list))?;
        }
        Packet::Suback(Suback {
            packet_id: subscribe.packet_id,
            codes,
        })
        .encode(&mut io.wbuf);
        if !granted.is_empty() {
            if let Err(e) = io.flush().await {
                debug!(error = %Chain(&e), "SUBACK not delivered");
                return Err(DisconnectReason::ConnectionLost);
            }
            for filter in &granted {
                hooks.subscribed(self.client, filter);
            }
        }
        Ok(())
    }

    /// Stores a persistent session's new subscription list.
    async fn save(&self, list: &Subscriptions) -> Result<(), StoreError> {
        self.inner
            .hooks
            .session_store()
            .save(self.client_id, list.as_slice())
            .await
    }

    /// UNSUBSCRIBE (MQTT 3.1.1 §3.10.4): the new list is stored before the UNSUBACK.
    async fn unsubscribe<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut Transport<S>,
        unsubscribe: Unsubscribe,
    ) -> Result<(), DisconnectReason> {
        let mut list = self.attached(|state| state.session.subscriptions().clone())?;
        let mut changed = false;
        for filter in &unsubscribe.filters {
            changed |= list.remove(filter);
        }
        if changed {
            if self.persistent
                && let Err(e) = self.save(&list).await
            {
                warn!(error = %Chain(&e), "storing subscriptions failed; closing");
                return Err(DisconnectReason::StoreFailed);
            }
            self.attached(|state| state.session.set_subscriptions(list))?;
        }
        Packet::Unsuback(unsubscribe.packet_id).encode(&mut io.wbuf);
        Ok(())
    }
}

/// Displays an error with its sources, for logs.
struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}
