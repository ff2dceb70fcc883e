//! The client's MQTT session state, free of I/O: outbound QoS 1 operations and their packet
//! identifiers, twin requests waiting for their response, and the meaning of inbound
//! PUBLISH packets. The connection driver ([`crate::client`]) feeds it packets and sends what it
//! returns.
//!
//! Invariants:
//! - at most [`MAX_IN_FLIGHT`] operations are held; the driver stops taking requests when
//!   [`Session::has_room`] is false (back-pressure to callers);
//! - an operation is complete when its PUBACK arrives (publishes) or when its twin response
//!   arrives (twin requests, spec §3.8); until then, a connection loss puts it back in the
//!   queue and the next connection sends it again, in submission order (QoS 1 is
//!   at-least-once, MQTT 3.1.1 §4.3.2);
//! - a packet identifier stays reserved until its PUBACK or the end of the connection, so a
//!   late PUBACK never completes another operation (MQTT 3.1.1 §2.3.1);
//! - operations whose caller went away are dropped before they are (re)sent.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde_json::Value;
use spoke_core::ids::{Identity, ModuleId};
use spoke_core::message::Message;
use spoke_core::topic::split_module_scope;
use spoke_mqtt::codec::{Packet, PacketId, Publish, QosPid};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::event::Event;
use crate::topics::HubTopic;

/// Most operations held at once (sent and queued).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// A twin response: status, `$version` from the topic, and body (spec §3.8).
#[derive(Debug)]
pub(crate) struct TwinReply {
    pub status: u16,
    pub version: Option<u64>,
    pub body: Bytes,
}

/// Who waits for an operation, and for what.
#[derive(Debug)]
pub(crate) enum Completion {
    /// The PUBACK.
    Puback(oneshot::Sender<Result<(), Error>>),
    /// The twin response with this request ID.
    Twin(oneshot::Sender<Result<TwinReply, Error>>),
    /// Answered; kept only to hold its packet identifier until the PUBACK.
    Done,
}

impl Completion {
    fn is_abandoned(&self) -> bool {
        match self {
            Self::Puback(tx) => tx.is_closed(),
            Self::Twin(tx) => tx.is_closed(),
            Self::Done => true,
        }
    }

    fn fail(self, error: impl FnOnce() -> Error) {
        match self {
            Self::Puback(tx) => {
                let _ = tx.send(Err(error()));
            }
            Self::Twin(tx) => {
                let _ = tx.send(Err(error()));
            }
            Self::Done => {}
        }
    }
}

/// One outbound QoS 1 PUBLISH and who waits for it.
#[derive(Debug)]
pub(crate) struct Operation {
    pub topic: String,
    pub payload: Bytes,
    /// The twin request ID, for twin requests.
    pub rid: Option<String>,
    pub completion: Completion,
}

#[derive(Debug)]
struct Held {
    op: Operation,
    /// The packet identifier while sent and not yet acknowledged.
    pid: Option<PacketId>,
    /// PUBACK received (twin requests then wait for the response).
    acked: bool,
}

/// The session state (see the module docs).
#[derive(Debug)]
pub(crate) struct Session {
    identity: Identity,
    ops: BTreeMap<u64, Held>,
    next_op: u64,
    by_pid: HashMap<PacketId, u64>,
    by_rid: HashMap<String, u64>,
    next_pid: u16,
}

impl Session {
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            ops: BTreeMap::new(),
            next_op: 0,
            by_pid: HashMap::new(),
            by_rid: HashMap::new(),
            next_pid: 1,
        }
    }

    /// Whether another operation may be submitted (after dropping abandoned ones).
    pub fn has_room(&mut self) -> bool {
        let abandoned: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, h)| h.pid.is_none() && h.op.completion.is_abandoned())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.remove(id);
        }
        self.ops.len() < MAX_IN_FLIGHT
    }

    /// A packet identifier not in use (MQTT 3.1.1 §2.3.1).
    pub fn allocate_pid(&mut self) -> PacketId {
        loop {
            let candidate = PacketId::new(self.next_pid).expect("next_pid is never 0");
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            if !self.by_pid.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// Holds `op`; returns the PUBLISH to send now when `connected`.
    pub fn submit(&mut self, op: Operation, connected: bool) -> Option<Packet> {
        let id = self.next_op;
        self.next_op += 1;
        if let Some(rid) = &op.rid {
            self.by_rid.insert(rid.clone(), id);
        }
        self.ops.insert(
            id,
            Held {
                op,
                pid: None,
                acked: false,
            },
        );
        connected.then(|| self.send(id))
    }

    fn send(&mut self, id: u64) -> Packet {
        let pid = self.allocate_pid();
        self.by_pid.insert(pid, id);
        let held = self.ops.get_mut(&id).expect("sending a held operation");
        held.pid = Some(pid);
        Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(pid),
            retain: false,
            topic: held.op.topic.clone(),
            payload: held.op.payload.clone(),
        })
    }

    fn remove(&mut self, id: u64) -> Option<Operation> {
        let held = self.ops.remove(&id)?;
        if let Some(pid) = held.pid {
            self.by_pid.remove(&pid);
        }
        if let Some(rid) = &held.op.rid {
            self.by_rid.remove(rid);
        }
        Some(held.op)
    }

    /// A new connection is ready: the PUBLISH packets of every operation still to be sent, in
    /// submission order.
    pub fn resume(&mut self) -> Vec<Packet> {
        self.has_room();
        let pending: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, h)| h.pid.is_none() && !h.acked)
            .map(|(id, _)| *id)
            .collect();
        pending.into_iter().map(|id| self.send(id)).collect()
    }

    /// The connection is gone: everything not complete goes back to the queue.
    pub fn suspend(&mut self) {
        self.by_pid.clear();
        let done: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, h)| matches!(h.op.completion, Completion::Done))
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            self.remove(id);
        }
        for held in self.ops.values_mut() {
            held.pid = None;
            held.acked = false;
        }
    }

    /// PUBACK from the server (MQTT 3.1.1 §3.4).
    pub fn puback(&mut self, pid: PacketId) {
        let Some(id) = self.by_pid.remove(&pid) else {
            tracing::debug!(pid = pid.get(), "PUBACK for no pending PUBLISH");
            return;
        };
        let held = self.ops.get_mut(&id).expect("by_pid names held operations");
        held.pid = None;
        held.acked = true;
        if !matches!(held.op.completion, Completion::Twin(_))
            && let Some(op) = self.remove(id)
            && let Completion::Puback(tx) = op.completion
        {
            let _ = tx.send(Ok(()));
        }
    }

    /// An inbound PUBLISH: the event it carries, if any. Twin responses complete their
    /// request here. Topics and bodies that are not understood are logged and dropped.
    /// A module-scoped topic (`docs/protocol.md`) gives the module's event.
    pub fn inbound(&mut self, publish: Publish) -> Option<Event> {
        let (module, topic) = match self.parse(&publish.topic) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::warn!(topic = publish.topic, error = %e, "dropping a PUBLISH on an unknown topic");
                return None;
            }
        };
        let event = self.event(topic, publish.payload)?;
        Some(match module {
            Some(module) => event.for_module(module),
            None => event,
        })
    }

    /// The topic, and the module it is scoped to if it is a module-scoped topic.
    fn parse(&self, topic: &str) -> Result<(Option<ModuleId>, HubTopic), String> {
        match split_module_scope(topic).map_err(|e| e.to_string())? {
            Some((module, inner)) => {
                let identity = Identity::module(self.identity.device.clone(), module.clone());
                let topic = HubTopic::parse(&inner, &identity).map_err(|e| e.to_string())?;
                Ok((Some(module), topic))
            }
            None => Ok((
                None,
                HubTopic::parse(topic, &self.identity).map_err(|e| e.to_string())?,
            )),
        }
    }

    /// The event a hub topic and its payload carry; twin responses complete their request.
    fn event(&mut self, topic: HubTopic, payload: Bytes) -> Option<Event> {
        match topic {
            HubTopic::TwinResponse {
                status,
                rid,
                version,
            } => {
                self.twin_response(
                    &rid,
                    TwinReply {
                        status,
                        version,
                        body: payload,
                    },
                );
                None
            }
            HubTopic::DesiredPatch { .. } => {
                if let Ok(patch @ Value::Object(_)) = serde_json::from_slice(&payload) {
                    Some(Event::DesiredPatch(patch))
                } else {
                    tracing::warn!("dropping a desired patch that is not a JSON object");
                    None
                }
            }
            HubTopic::MethodRequest { name, rid } => {
                let payload = if payload.is_empty() {
                    Ok(Value::Null)
                } else {
                    serde_json::from_slice(&payload)
                };
                match payload {
                    Ok(payload) => Some(Event::Method { name, rid, payload }),
                    Err(e) => {
                        tracing::warn!(method = name, error = %e, "dropping a method request whose payload is not JSON");
                        None
                    }
                }
            }
            HubTopic::C2d { bag } => message(None, &bag, &payload),
            HubTopic::Input { input, bag } => message(Some(input), &bag, &payload),
        }
    }

    fn twin_response(&mut self, rid: &str, reply: TwinReply) {
        let Some(&id) = self.by_rid.get(rid) else {
            tracing::debug!(rid, "twin response for no pending request");
            return;
        };
        let held = self.ops.get_mut(&id).expect("by_rid names held operations");
        if let Completion::Twin(tx) = std::mem::replace(&mut held.op.completion, Completion::Done) {
            let _ = tx.send(Ok(reply));
        }
        self.by_rid.remove(rid);
        if held.pid.is_none() {
            self.remove(id);
        }
    }

    /// Fails every operation with [`Error::Closed`].
    pub fn close(&mut self) {
        self.by_pid.clear();
        self.by_rid.clear();
        for (_, held) in std::mem::take(&mut self.ops) {
            held.op.completion.fail(|| Error::Closed);
        }
    }

    /// How many operations are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ops.len()
    }
}

fn message(input: Option<String>, bag: &str, body: &Bytes) -> Option<Event> {
    match Message::from_property_bag(body.to_vec(), bag) {
        Ok(message) => Some(Event::Message { input, message }),
        Err(e) => {
            tracing::warn!(error = %e, "dropping a message with an undecodable property bag");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use spoke_core::ids::{DeviceId, ModuleId};

    use super::*;

    fn device() -> Identity {
        Identity::device(DeviceId::parse("dev1").unwrap())
    }

    fn publish_op(topic: &str) -> (Operation, oneshot::Receiver<Result<(), Error>>) {
        let (tx, rx) = oneshot::channel();
        let op = Operation {
            topic: topic.into(),
            payload: Bytes::from_static(b"x"),
            rid: None,
            completion: Completion::Puback(tx),
        };
        (op, rx)
    }

    fn twin_op(rid: &str) -> (Operation, oneshot::Receiver<Result<TwinReply, Error>>) {
        let (tx, rx) = oneshot::channel();
        let op = Operation {
            topic: crate::topics::twin_get(rid),
            payload: Bytes::from_static(b" "),
            rid: Some(rid.into()),
            completion: Completion::Twin(tx),
        };
        (op, rx)
    }

    fn pid_of(packet: &Packet) -> PacketId {
        match packet {
            Packet::Publish(p) => p.qos_pid.packet_id().unwrap(),
            other => panic!("not a PUBLISH: {other:?}"),
        }
    }

    fn inbound(topic: &str, body: &'static [u8]) -> Publish {
        Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: topic.into(),
            payload: Bytes::from_static(body),
        }
    }

    #[test]
    fn publish_completes_on_puback() {
        let mut s = Session::new(device());
        let (op, mut rx) = publish_op("devices/dev1/messages/events/");
        let packet = s.submit(op, true).unwrap();
        assert!(rx.try_recv().is_err());
        s.puback(pid_of(&packet));
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn queued_while_disconnected_and_resent_in_order() {
        let mut s = Session::new(device());
        let (a, _ra) = publish_op("a");
        let (b, _rb) = publish_op("b");
        let sent = s.submit(a, true).unwrap();
        assert!(s.submit(b, false).is_none());
        s.suspend();
        let resent = s.resume();
        let topics: Vec<&str> = resent
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => p.topic.as_str(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(topics, ["a", "b"]);
        // The old PUBACK of the lost connection completes nothing.
        let old = pid_of(&sent);
        s.suspend();
        s.puback(old);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn twin_request_waits_for_response_and_survives_reconnect() {
        let mut s = Session::new(device());
        let (op, mut rx) = twin_op("r1");
        let packet = s.submit(op, true).unwrap();
        s.puback(pid_of(&packet));
        assert!(rx.try_recv().is_err(), "PUBACK alone does not answer");
        s.suspend();
        assert_eq!(s.resume().len(), 1, "unanswered request is sent again");
        let event = s.inbound(inbound("$iothub/twin/res/204/?$rid=r1&$version=7", b""));
        assert!(event.is_none());
        let reply = rx.try_recv().unwrap().unwrap();
        assert_eq!((reply.status, reply.version), (204, Some(7)));
        assert_eq!(s.len(), 1, "pid held until its PUBACK");
        s.suspend();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn module_scoped_topics_give_module_events() {
        let mut s = Session::new(device());
        let (op, mut rx) = twin_op("r2");
        s.submit(op, true);
        let answer = inbound("$iothub/modules/filter/twin/res/200/?$rid=r2", b"{}");
        assert!(s.inbound(answer).is_none());
        assert_eq!(rx.try_recv().unwrap().unwrap().status, 200);
        let call = inbound(
            "$iothub/modules/filter/methods/POST/reset/?$rid=5",
            b"{\"a\":1}",
        );
        let Some(Event::ModuleMethod {
            module,
            name,
            rid,
            payload,
        }) = s.inbound(call)
        else {
            panic!("a module method request");
        };
        assert_eq!(
            (module.as_str(), name.as_str(), rid.as_str()),
            ("filter", "reset", "5")
        );
        assert_eq!(payload["a"], 1);
        let patch = inbound(
            "$iothub/modules/filter/twin/PATCH/properties/desired/?$version=3",
            b"{\"x\":1,\"$version\":3}",
        );
        assert!(matches!(
            s.inbound(patch),
            Some(Event::ModuleDesiredPatch { module, patch })
                if module.as_str() == "filter" && patch["x"] == 1
        ));
        let foreign = inbound("$iothub/modules/filter/messages/x", b"");
        assert!(s.inbound(foreign).is_none());
    }

    #[test]
    fn abandoned_operations_are_not_sent() {
        let mut s = Session::new(device());
        let (op, rx) = publish_op("a");
        s.submit(op, false);
        drop(rx);
        assert!(s.resume().is_empty());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn room_is_bounded() {
        let mut s = Session::new(device());
        let mut receivers = Vec::new();
        while s.has_room() {
            let (op, rx) = publish_op("a");
            s.submit(op, false);
            receivers.push(rx);
        }
        assert_eq!(receivers.len(), MAX_IN_FLIGHT);
        receivers.pop();
        assert!(s.has_room(), "an abandoned operation frees its slot");
        s.close();
        assert!(matches!(receivers[0].try_recv(), Ok(Err(Error::Closed))));
    }

    #[test]
    fn packet_ids_skip_those_in_use() {
        let mut s = Session::new(device());
        s.next_pid = u16::MAX;
        let (op, _rx) = publish_op("a");
        let first = pid_of(&s.submit(op, true).unwrap());
        assert_eq!(first.get(), u16::MAX);
        s.next_pid = u16::MAX;
        assert_eq!(s.allocate_pid().get(), 1, "wraps and skips the pid in use");
    }

    #[test]
    fn inbound_events() {
        let module = Identity::module(
            DeviceId::parse("dev1").unwrap(),
            ModuleId::parse("m").unwrap(),
        );
        let mut s = Session::new(module);
        let Some(Event::Method { name, rid, payload }) = s.inbound(inbound(
            "$iothub/methods/POST/reboot/?$rid=1",
            b"{\"delay\":5}",
        )) else {
            panic!("method expected");
        };
        assert_eq!((name.as_str(), rid.as_str()), ("reboot", "1"));
        assert_eq!(payload["delay"], 5);
        assert!(matches!(
            s.inbound(inbound("$iothub/methods/POST/m/?$rid=2", b"")),
            Some(Event::Method {
                payload: Value::Null,
                ..
            })
        ));
        assert!(
            s.inbound(inbound("$iothub/methods/POST/m/?$rid=2", b"{"))
                .is_none()
        );
        let Some(Event::DesiredPatch(patch)) = s.inbound(inbound(
            "$iothub/twin/PATCH/properties/desired/?$version=4",
            b"{\"foo\":2,\"$version\":4}",
        )) else {
            panic!("desired patch expected");
        };
        assert_eq!(patch["$version"], 4);
        let Some(Event::Message { input, message }) = s.inbound(inbound(
            "devices/dev1/modules/m/inputs/input1/%24.mid=x&k=v",
            b"hi",
        )) else {
            panic!("message expected");
        };
        assert_eq!(input.as_deref(), Some("input1"));
        assert_eq!(message.system.message_id.as_deref(), Some("x"));
        assert_eq!(message.app_property("k"), Some("v"));
        assert_eq!(message.body, b"hi");
        assert!(
            s.inbound(inbound("devices/dev1/messages/devicebound/", b""))
                .is_none()
        );
        assert!(
            s.inbound(inbound("$iothub/twin/res/200/?$rid=none", b"{}"))
                .is_none()
        );
    }
}
