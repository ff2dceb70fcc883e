//! The client: a cloneable [`Client`] handle, the [`Events`] receiver, and the background task
//! that owns the connection (an actor with bounded mailboxes, STYLE.md §3).
//!
//! The task connects, serves, and on any loss reconnects with back-off (1 s doubling to
//! 30 s, reset after a successful connection) until [`Client::close`] or until every handle
//! is dropped. Before the token expires (TTL minus the renewal margin) it disconnects and
//! connects again with a new token, like the device SDK (spec §2.2). Subscriptions are made
//! on the first connection and again whenever the server reports no session (spec §3.4), with
//! those added by [`Client::follow_module_methods`]; changes to these made while disconnected
//! are sent on the next connection. Requests made while disconnected wait in the session and
//! go out on the next connection.
//!
//! Back-pressure: requests queue in a bounded channel and at most
//! [`crate::session::MAX_IN_FLIGHT`] operations are held; events go through a bounded
//! channel, and an inbound QoS 1 message is acknowledged only once it is in that channel.
//! An application that neither reads nor drops its [`Events`] therefore stalls the
//! connection.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use spoke_core::ids::{Identity, ModuleId};
use spoke_core::message::Message;
use spoke_mqtt::codec::{Packet, QoS, QosPid, SubackCode, Subscribe, Unsubscribe};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::Instrument as _;

use crate::config::ClientConfig;
use crate::error::{ConnectionError, Error};
use crate::event::{DisconnectReason, Event};
use crate::session::{Completion, Operation, Session, TwinReply};
use crate::topics;
use crate::transport::{self, Endpoint, Opened, Transport};

/// Largest telemetry body (the device SDK's `TELEMETRY_MESSAGE_SIZE_LIMIT`, spec §3.5).
pub const MAX_MESSAGE_SIZE: usize = 262_144;

/// Capacity of the request channel.
const COMMAND_CAPACITY: usize = 32;
/// Capacity of the event channel.
const EVENT_CAPACITY: usize = 64;
/// First reconnect delay.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Command {
    Submit(Operation),
    /// Subscribe to (`true`) or unsubscribe from a filter, kept across reconnections.
    Follow(String, bool),
    Close(oneshot::Sender<()>),
}

/// A device or module client. Cheap to clone; every clone drives the same connection.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    identity: Arc<Identity>,
}

/// The hub's acknowledgement of a message queued with [`Client::submit_event_for`].
#[derive(Debug)]
pub struct Acked(oneshot::Receiver<Result<(), Error>>);

impl Future for Acked {
    type Output = Result<(), Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| Error::Closed)?)
    }
}

/// The events of a [`Client`], in order. Read them continuously, or drop this value (see the
/// module docs on back-pressure).
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl Client {
    /// Connects (the first attempt's failure is returned as is), then keeps the connection
    /// in a background task. The first event is [`Event::Connected`].
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), Error> {
        let identity = Arc::new(config.identity.clone());
        let endpoint = Arc::new(Endpoint::new(config)?);
        let mut session = Session::new((*identity).clone());
        let span = tracing::info_span!("spoke_sdk", client = %identity);
        let opened = transport::open(endpoint.clone(), true, session.allocate_pid(), Vec::new())
            .instrument(span.clone())
            .await?;
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (events, rx) = mpsc::channel(EVENT_CAPACITY);
        let actor = Actor {
            endpoint,
            session,
            commands: command_rx,
            events,
            followed: BTreeSet::new(),
            unsent: BTreeMap::new(),
        };
        tokio::spawn(actor.run(opened).instrument(span));
        Ok((Client { commands, identity }, Events { rx }))
    }

    /// The identity this client connects as.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Sends telemetry (QoS 1) to `devices/{d}[/modules/{m}]/messages/events/{bag}` and
    /// returns once the hub acknowledged it (spec §3.5).
    pub async fn send_event(&self, message: Message) -> Result<(), Error> {
        let identity = self.identity.clone();
        self.send_event_for(&identity, message).await
    }

    /// Sends telemetry on the events topic of `sender`, another identity: an IoT Edge
    /// device's connection sending for one of its modules (the edge hub's upstream link, see
    /// Spoke's `docs/protocol.md`). Returns once the hub acknowledged it.
    pub async fn send_event_for(&self, sender: &Identity, message: Message) -> Result<(), Error> {
        self.submit_event_for(sender, message).await?.await
    }

    /// Queues telemetry on `sender`'s events topic and returns once it is queued on the
    /// connection: messages queued by successive calls go out in that order. The returned
    /// [`Acked`] resolves once the hub acknowledged the message.
    pub async fn submit_event_for(
        &self,
        sender: &Identity,
        message: Message,
    ) -> Result<Acked, Error> {
        if message.body.len() > MAX_MESSAGE_SIZE {
            return Err(Error::MessageTooLarge {
                size: message.body.len(),
                limit: MAX_MESSAGE_SIZE,
            });
        }
        let topic = topics::events(sender, message.property_bag());
        let (tx, rx) = oneshot::channel();
        self.submit(
            topic,
            Bytes::from(message.body),
            None,
            Completion::Puback(tx),
        )
        .await?;
        Ok(Acked(rx))
    }

    /// Sends a module output message: telemetry with `$.on` = `output` (spec §3.5), which
    /// the edge hub routes.
    pub async fn send_output(&self, output: &str, mut message: Message) -> Result<(), Error> {
        message.system.output_name = Some(output.to_owned());
        self.send_event(message).await
    }

    /// The twin's desired and reported properties, `{"desired":{..},"reported":{..}}`
    /// (spec §3.8).
    pub async fn get_twin(&self) -> Result<Value, Error> {
        self.get_twin_of(None).await
    }

    /// Like [`Self::get_twin`], for `module` of this IoT Edge device (module-scoped topics,
    /// `docs/protocol.md`).
    pub async fn get_module_twin(&self, module: &ModuleId) -> Result<Value, Error> {
        self.get_twin_of(Some(module)).await
    }

    async fn get_twin_of(&self, module: Option<&ModuleId>) -> Result<Value, Error> {
        let rid = uuid::Uuid::new_v4().to_string();
        let topic = topics::scoped(module, topics::twin_get(&rid));
        let reply = self
            .twin_request(topic, rid, Bytes::from_static(b" "))
            .await?;
        if reply.status != 200 {
            return Err(Error::InvalidTwinResponse {
                reason: "GET answered with a status other than 200",
            });
        }
        serde_json::from_slice(&reply.body).map_err(|_| Error::InvalidTwinResponse {
            reason: "the twin document is not JSON",
        })
    }

    /// Patches the reported properties (`null` deletes a property) and returns the new
    /// reported `$version` (spec §3.8).
    pub async fn patch_reported(&self, patch: &Value) -> Result<u64, Error> {
        self.patch_reported_of(None, patch).await
    }

    /// Like [`Self::patch_reported`], for `module` of this IoT Edge device.
    pub async fn patch_module_reported(
        &self,
        module: &ModuleId,
        patch: &Value,
    ) -> Result<u64, Error> {
        self.patch_reported_of(Some(module), patch).await
    }

    async fn patch_reported_of(
        &self,
        module: Option<&ModuleId>,
        patch: &Value,
    ) -> Result<u64, Error> {
        let rid = uuid::Uuid::new_v4().to_string();
        let body = Bytes::from(patch.to_string());
        let topic = topics::scoped(module, topics::twin_patch_reported(&rid));
        let reply = self.twin_request(topic, rid, body).await?;
        reply.version.ok_or(Error::InvalidTwinResponse {
            reason: "the PATCH response has no $version",
        })
    }

    /// Answers a direct method request with `status` and a JSON `payload` (spec §3.9).
    pub async fn respond_method(
        &self,
        rid: &str,
        status: i32,
        payload: &Value,
    ) -> Result<(), Error> {
        self.respond_method_of(None, rid, status, payload).await
    }

    /// Answers a [`crate::Event::ModuleMethod`] request for `module` of this IoT Edge device.
    pub async fn respond_module_method(
        &self,
        module: &ModuleId,
        rid: &str,
        status: i32,
        payload: &Value,
    ) -> Result<(), Error> {
        self.respond_method_of(Some(module), rid, status, payload)
            .await
    }

    async fn respond_method_of(
        &self,
        module: Option<&ModuleId>,
        rid: &str,
        status: i32,
        payload: &Value,
    ) -> Result<(), Error> {
        let topic = topics::scoped(module, topics::method_response(status, rid));
        let (tx, rx) = oneshot::channel();
        self.submit(
            topic,
            Bytes::from(payload.to_string()),
            None,
            Completion::Puback(tx),
        )
        .await?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// For an IoT Edge device's connection ([`ClientConfig::edge_modules`]): receive
    /// `module`'s direct method calls (`true`, as [`crate::Event::ModuleMethod`]) or stop
    /// receiving them (`false`). While it receives them the hub counts the module as
    /// connected (`docs/protocol.md`). Kept across reconnections; returns once queued.
    pub async fn follow_module_methods(
        &self,
        module: &ModuleId,
        follow: bool,
    ) -> Result<(), Error> {
        let filter = spoke_core::topic::module_methods_filter(module);
        self.commands
            .send(Command::Follow(filter, follow))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Disconnects and stops the background task; pending operations fail with
    /// [`Error::Closed`] and [`Events::recv`] returns `None` after the remaining events.
    /// Closing a closed client does nothing.
    pub async fn close(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }

    async fn twin_request(
        &self,
        topic: String,
        rid: String,
        body: Bytes,
    ) -> Result<TwinReply, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit(topic, body, Some(rid), Completion::Twin(tx))
            .await?;
        let reply = rx.await.map_err(|_| Error::Closed)??;
        if reply.status >= 300 {
            return Err(Error::TwinStatus {
                status: reply.status,
                body: String::from_utf8_lossy(&reply.body).into_owned(),
            });
        }
        Ok(reply)
    }

    async fn submit(
        &self,
        topic: String,
        payload: Bytes,
        rid: Option<String>,
        completion: Completion,
    ) -> Result<(), Error> {
        spoke_mqtt::topic::validate_name(&topic).map_err(Error::InvalidTopic)?;
        let op = Operation {
            topic,
            payload,
            rid,
            completion,
        };
        self.commands
            .send(Command::Submit(op))
            .await
            .map_err(|_| Error::Closed)
    }
}

/// How a served connection ended.
enum Ended {
    Lost(ConnectionError),
    Renew,
    /// `Client::close` (with its reply) or every handle dropped (`None`).
    Close(Option<oneshot::Sender<()>>),
}

/// The background task's state.
struct Actor {
    endpoint: Arc<Endpoint>,
    session: Session,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// Filters subscribed with [`Command::Follow`], made again when the server has no session.
    followed: BTreeSet<String>,
    /// [`Command::Follow`] changes made while disconnected, the last one per filter, sent on
    /// the next connection.
    unsent: BTreeMap<String, bool>,
}

impl Actor {
    async fn run(mut self, first: Opened) {
        let mut opened = first;
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let ended = self.serve(opened).await;
            self.session.suspend();
            let reason = match ended {
                Ended::Close(done) => return self.finish(done),
                Ended::Renew => DisconnectReason::TokenRenewal,
                Ended::Lost(e) => {
                    tracing::warn!(error = %e, "connection lost");
                    DisconnectReason::Lost(Arc::new(e))
                }
            };
            let mut wait = !matches!(reason, DisconnectReason::TokenRenewal);
            self.emit(Event::Disconnected { reason }).await;
            opened = loop {
                if wait {
                    if let Err(done) = self.idle(sleep(backoff)).await {
                        return self.finish(done);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                wait = true;
                let attempt = transport::open(
                    self.endpoint.clone(),
                    false,
                    self.session.allocate_pid(),
                    self.followed.iter().cloned().collect(),
                );
                match self.idle(attempt).await {
                    Err(done) => return self.finish(done),
                    Ok(Ok(opened)) => break opened,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "reconnect failed");
                    }
                }
            };
            backoff = INITIAL_BACKOFF;
        }
    }

    /// Runs `fut` while queueing requests; `Err` when the client is closing.
    async fn idle<T>(
        &mut self,
        fut: impl Future<Output = T>,
    ) -> Result<T, Option<oneshot::Sender<()>>> {
        let mut fut = std::pin::pin!(fut);
        loop {
            let room = self.session.has_room();
            tokio::select! {
                out = &mut fut => return Ok(out),
                command = self.commands.recv(), if room => match command {
                    Some(Command::Submit(op)) => {
                        self.session.submit(op, false);
                    }
                    Some(Command::Follow(filter, follow)) => {
                        self.follow(&filter, follow);
                        self.unsent.insert(filter, follow);
                    }
                    Some(Command::Close(done)) => return Err(Some(done)),
                    None => return Err(None),
                },
            }
        }
    }

    fn follow(&mut self, filter: &str, follow: bool) {
        if follow {
            self.followed.insert(filter.to_owned());
        } else {
            self.followed.remove(filter);
        }
    }

    /// The SUBSCRIBE or UNSUBSCRIBE of a [`Command::Follow`].
    fn follow_packet(&mut self, filter: String, follow: bool) -> Packet {
        let packet_id = self.session.allocate_pid();
        if follow {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters: vec![(filter, QoS::AtLeastOnce)],
            })
        } else {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters: vec![filter],
            })
        }
    }

    fn finish(mut self, done: Option<oneshot::Sender<()>>) {
        self.session.close();
        tracing::info!("client closed");
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    async fn emit(&self, event: Event) {
        if self.events.send(event).await.is_err() {
            tracing::trace!("events dropped by the application");
        }
    }

    /// Serves one connection until it ends.
    async fn serve(&mut self, opened: Opened) -> Ended {
        let Opened {
            mut transport,
            session_present,
            early,
            renew_at,
        } = opened;
        tracing::info!(session_present, "connected");
        self.emit(Event::Connected).await;
        let mut resend: Vec<Packet> = std::mem::take(&mut self.unsent)
            .into_iter()
            .map(|(filter, follow)| self.follow_packet(filter, follow))
            .collect();
        resend.extend(self.session.resume());
        if let Err(e) = transport.send(&resend).await {
            return Ended::Lost(e);
        }
        for publish in early {
            if let Err(e) = self
                .on_packet(&mut transport, Packet::Publish(publish))
                .await
            {
                return Ended::Lost(e);
            }
        }
        let keep_alive = self.endpoint.config.keep_alive;
        let mut ping_sent: Option<Instant> = None;
        loop {
            let keep_alive_at = ping_sent.unwrap_or(transport.last_sent) + keep_alive;
            let room = self.session.has_room();
            let step = tokio::select! {
                packet = transport.recv() => Step::Packet(packet),
                command = self.commands.recv(), if room => Step::Command(command),
                () = sleep_until(keep_alive_at) => Step::KeepAlive,
                () = sleep_until(renew_at) => Step::Renew,
            };
            let result = match step {
                Step::Packet(Ok(Packet::Pingresp)) => {
                    ping_sent = None;
                    Ok(())
                }
                Step::Packet(Ok(packet)) => self.on_packet(&mut transport, packet).await,
                Step::Packet(Err(e)) => Err(e),
                Step::Command(Some(Command::Submit(op))) => {
                    let packet = self.session.submit(op, true);
                    transport.send(packet.as_slice()).await
                }
                Step::Command(Some(Command::Follow(filter, follow))) => {
                    self.follow(&filter, follow);
                    let packet = self.follow_packet(filter, follow);
                    transport.send(&[packet]).await
                }
                Step::Command(Some(Command::Close(done))) => {
                    transport.disconnect().await;
                    return Ended::Close(Some(done));
                }
                Step::Command(None) => {
                    transport.disconnect().await;
                    return Ended::Close(None);
                }
                Step::KeepAlive if ping_sent.is_some() => Err(ConnectionError::KeepAliveTimeout),
                Step::KeepAlive => {
                    ping_sent = Some(Instant::now());
                    transport.send(&[Packet::Pingreq]).await
                }
                Step::Renew => {
                    tracing::info!("renewing the SAS token");
                    transport.disconnect().await;
                    return Ended::Renew;
                }
            };
            if let Err(e) = result {
                return Ended::Lost(e);
            }
        }
    }

    /// Handles a packet from the server other than PINGRESP.
    async fn on_packet(
        &mut self,
        transport: &mut Transport,
        packet: Packet,
    ) -> Result<(), ConnectionError> {
        match packet {
            Packet::Publish(publish) => {
                let ack = match publish.qos_pid {
                    QosPid::AtMostOnce => None,
                    QosPid::AtLeastOnce(pid) => Some(pid),
                    // The client subscribes at QoS 1, so the server may not send QoS 2
                    // (MQTT 3.1.1 §3.8.4).
                    QosPid::ExactlyOnce(_) => {
                        return Err(ConnectionError::Unexpected {
                            packet: "QoS 2 PUBLISH",
                        });
                    }
                };
                if let Some(event) = self.session.inbound(publish) {
                    self.emit(event).await;
                }
                match ack {
                    Some(pid) => transport.send(&[Packet::Puback(pid)]).await,
                    None => Ok(()),
                }
            }
            Packet::Puback(pid) => {
                self.session.puback(pid);
                Ok(())
            }
            Packet::Suback(suback) => {
                if suback.codes.contains(&SubackCode::Failure) {
                    tracing::warn!(
                        pid = suback.packet_id.get(),
                        "the server refused a subscription"
                    );
                }
                Ok(())
            }
            Packet::Unsuback(_) => Ok(()),
            other => Err(ConnectionError::Unexpected {
                packet: other.name(),
            }),
        }
    }
}

/// What woke the connection loop.
enum Step {
    Packet(Result<Packet, ConnectionError>),
    Command(Option<Command>),
    KeepAlive,
    Renew,
}
