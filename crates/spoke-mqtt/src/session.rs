//! Per-client session state (MQTT 3.1.1 §4.1), without I/O.
//!
//! A [`Session`] holds what MQTT says outlives a connection when CleanSession = 0: the
//! subscriptions and the outbound QoS 1 messages not yet acknowledged. Its methods change the
//! state and tell the caller what to transmit; the server's connection task does the I/O.
//!
//! Outbound flow, in order of arrival:
//! - [`Session::enqueue`] routes a message to the subscriptions (QoS = min(requested,
//!   granted, 1), §3.8.4) and appends it to a bounded FIFO queue;
//! - [`Session::next_outgoing`] moves messages from the queue into the in-flight window
//!   (bounded; a fresh packet identifier each, skipping identifiers in use, §2.3.1) and hands
//!   them to the caller to encode. QoS 0 messages leave the session when handed out;
//! - [`Session::puback`] removes an in-flight message and gives back its completion token.
//!
//! Invariants: the in-flight window never exceeds `max_inflight` and the queue never exceeds
//! `max_queued`; in-flight messages keep their packet identifier until acknowledged; after
//! [`Session::go_online`] every in-flight message is handed out again with DUP = 1 and its
//! original identifier before anything new (§4.4, §3.3.1.1); while offline nothing is handed
//! out and QoS 0 messages are neither queued nor kept.
//!
//! Completion tokens (`T`) are opaque: the server uses a oneshot sender, tests use numbers.
//! Dropping a session drops its tokens, which is how "the session is gone" is signalled.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::codec::{PacketId, QoS, QosPid};
use crate::topic;

/// A session's subscriptions: topic filter → maximum granted QoS, in subscription order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions(Vec<(String, QoS)>);

/// The subscription limit of a session was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many subscriptions (limit {limit})")]
pub struct TooManySubscriptions {
    /// The limit.
    pub limit: usize,
}

impl Subscriptions {
    /// Subscriptions from a stored list (filters were validated when first subscribed).
    pub fn from_vec(list: Vec<(String, QoS)>) -> Self {
        Self(list)
    }

    /// The list, in subscription order.
    pub fn as_slice(&self) -> &[(String, QoS)] {
        &self.0
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a subscription, replacing one with an identical filter (MQTT 3.1.1 §3.8.4); a new
    /// filter beyond `limit` subscriptions is refused.
    pub fn insert(
        &mut self,
        filter: String,
        qos: QoS,
        limit: usize,
    ) -> Result<(), TooManySubscriptions> {
        if let Some(existing) = self.0.iter_mut().find(|(f, _)| *f == filter) {
            existing.1 = qos;
            return Ok(());
        }
        if self.0.len() >= limit {
            return Err(TooManySubscriptions { limit });
        }
        self.0.push((filter, qos));
        Ok(())
    }

    /// Removes the subscription with exactly this filter (MQTT 3.1.1 §3.10.3); whether one
    /// existed.
    pub fn remove(&mut self, filter: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(f, _)| f != filter);
        self.0.len() != before
    }

    /// The highest QoS granted by the subscriptions matching `topic`, if any matches
    /// (MQTT 3.1.1 §3.3.5).
    pub fn max_qos(&self, topic: &str) -> Option<QoS> {
        self.0
            .iter()
            .filter(|(f, _)| topic::matches(f, topic))
            .map(|(_, q)| *q)
            .max()
    }
}

/// Bounds of a session's outbound state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Maximum QoS 1 messages sent and not yet acknowledged.
    pub max_inflight: usize,
    /// Maximum messages waiting behind the in-flight window.
    pub max_queued: usize,
}

/// Why [`Session::enqueue`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// No subscription matches the topic.
    #[error("no matching subscription")]
    NotSubscribed,
    /// A QoS 0 message for an offline session (dropped, as MQTT allows: §3.1.2.4).
    #[error("QoS 0 message for an offline session")]
    Offline,
    /// The queue is full.
    #[error("session queue full")]
    Full,
}

/// A PUBACK named a packet identifier that is not in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("PUBACK for packet identifier {0:?} that is not in flight")]
pub struct UnknownPacketId(pub PacketId);

/// A message to transmit, borrowed from the session for encoding.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a Bytes,
    /// QoS and packet identifier.
    pub qos_pid: QosPid,
    /// DUP flag: set on re-delivery after a reconnect (MQTT 3.1.1 §3.3.1.1).
    pub dup: bool,
}

#[derive(Debug)]
struct Message<T> {
    topic: String,
    payload: Bytes,
    token: Option<T>,
}

/// Per-client session state; see the module documentation.
#[derive(Debug)]
pub struct Session<T> {
    limits: SessionLimits,
    subscriptions: Subscriptions,
    /// Sent QoS 1 messages awaiting PUBACK, in send order.
    inflight: VecDeque<(PacketId, Message<T>)>,
    /// Messages not yet sent, in arrival order.
    queued: VecDeque<(QoS, Message<T>)>,
    /// `inflight[..sent]` went out on the current connection; the rest must be re-sent.
    sent: usize,
    online: bool,
    last_id: u16,
}

impl<T> Session<T> {
    /// A new, offline session with these subscriptions.
    pub fn new(limits: SessionLimits, subscriptions: Subscriptions) -> Self {
        Self {
            limits,
            subscriptions,
            inflight: VecDeque::new(),
            queued: VecDeque::new(),
            sent: 0,
            online: false,
            last_id: 0,
        }
    }

    /// The subscriptions.
    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }

    /// Replaces the subscriptions (after the new list was stored). Messages already queued
    /// stay queued.
    pub fn set_subscriptions(&mut self, subscriptions: Subscriptions) {
        self.subscriptions = subscriptions;
    }

    /// Whether a connection is attached.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Number of messages in flight (sent or to be re-sent, not acknowledged).
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Number of messages queued behind the window.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// Routes a message to this session. Returns the QoS it will be delivered with:
    /// min(`qos`, highest matching granted QoS, 1). `token` is kept until the PUBACK when that
    /// QoS is 1, and dropped at once when it is 0.
    pub fn enqueue(
        &mut self,
        topic: String,
        payload: Bytes,
        qos: QoS,
        token: Option<T>,
    ) -> Result<QoS, EnqueueError> {
        let granted = self
            .subscriptions
            .max_qos(&topic)
            .ok_or(EnqueueError::NotSubscribed)?;
        let qos = qos.min(granted).min(QoS::AtLeastOnce);
        if qos == QoS::AtMostOnce && !self.online {
            return Err(EnqueueError::Offline);
        }
        if self.queued.len() >= self.limits.max_queued {
            return Err(EnqueueError::Full);
        }
        let token = if qos == QoS::AtLeastOnce { token } else { None };
        self.queued.push_back((
            qos,
            Message {
                topic,
                payload,
                token,
            },
        ));
        Ok(qos)
    }

    /// Whether [`Session::next_outgoing`] would hand out a message now.
    pub fn has_outgoing(&self) -> bool {
        if !self.online {
            return false;
        }
        self.sent < self.inflight.len()
            || self.queued.front().is_some_and(|(qos, _)| {
                *qos == QoS::AtMostOnce || self.inflight.len() < self.limits.max_inflight
            })
    }

    /// Hands the next message to transmit to `emit` and returns its result, or `None` when
    /// nothing can go out now (offline, nothing queued, or the window is full).
    pub fn next_outgoing<R>(&mut self, emit: impl FnOnce(Outgoing<'_>) -> R) -> Option<R> {
        if !self.online {
            return None;
        }
        if let Some((id, msg)) = self.inflight.get(self.sent) {
            self.sent += 1;
            return Some(emit(Outgoing {
                topic: &msg.topic,
                payload: &msg.payload,
                qos_pid: QosPid::AtLeastOnce(*id),
                dup: true,
            }));
        }
        let (qos, _) = self.queued.front()?;
        if *qos == QoS::AtMostOnce {
            let (_, msg) = self.queued.pop_front()?;
            return Some(emit(Outgoing {
                topic: &msg.topic,
                payload: &msg.payload,
                qos_pid: QosPid::AtMostOnce,
                dup: false,
            }));
        }
        if self.inflight.len() >= self.limits.max_inflight {
            return None;
        }
        let (_, msg) = self.queued.pop_front()?;
        let id = self.allocate_id();
        self.inflight.push_back((id, msg));
        self.sent += 1;
        let (_, msg) = self.inflight.back()?;
        Some(emit(Outgoing {
            topic: &msg.topic,
            payload: &msg.payload,
            qos_pid: QosPid::AtLeastOnce(id),
            dup: false,
        }))
    }

    /// A PUBACK arrived (MQTT 3.1.1 §4.3.2): the message leaves the window and its token is
    /// returned for completion.
    pub fn puback(&mut self, id: PacketId) -> Result<Option<T>, UnknownPacketId> {
        let pos = self
            .inflight
            .iter()
            .position(|(i, _)| *i == id)
            .ok_or(UnknownPacketId(id))?;
        if pos < self.sent {
            self.sent -= 1;
        }
        let (_, msg) = self.inflight.remove(pos).ok_or(UnknownPacketId(id))?;
        Ok(msg.token)
    }

    /// A connection was attached: in-flight messages will be re-sent with DUP = 1 and their
    /// original packet identifiers (MQTT 3.1.1 §4.4).
    pub fn go_online(&mut self) {
        self.online = true;
        self.sent = 0;
    }

    /// The connection ended; QoS 0 messages not yet sent are dropped, QoS 1 messages are kept.
    pub fn go_offline(&mut self) {
        self.online = false;
        self.sent = 0;
        self.queued.retain(|(qos, _)| *qos == QoS::AtLeastOnce);
    }

    /// The next packet identifier not in flight (MQTT 3.1.1 §2.3.1). The window is far smaller
    /// than the identifier space, so this terminates.
    fn allocate_id(&mut self) -> PacketId {
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if let Some(id) = PacketId::new(self.last_id)
                && !self.inflight.iter().any(|(i, _)| *i == id)
            {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        max_inflight: 2,
        max_queued: 3,
    };

    fn session(filters: &[(&str, QoS)]) -> Session<u32> {
        let subs = filters.iter().map(|(f, q)| ((*f).to_owned(), *q)).collect();
        Session::new(LIMITS, Subscriptions::from_vec(subs))
    }

    /// Drains everything `next_outgoing` hands out as (topic, qos_pid, dup).
    fn drain(s: &mut Session<u32>) -> Vec<(String, QosPid, bool)> {
        std::iter::from_fn(|| s.next_outgoing(|o| (o.topic.to_owned(), o.qos_pid, o.dup))).collect()
    }

    fn pid(v: u16) -> PacketId {
        PacketId::new(v).unwrap()
    }

    fn put(s: &mut Session<u32>, topic: &str, qos: QoS, token: u32) -> Result<QoS, EnqueueError> {
        s.enqueue(topic.to_owned(), Bytes::from_static(b"x"), qos, Some(token))
    }

    #[test]
    fn subscriptions_insert_replace_remove_limit() {
        let mut subs = Subscriptions::default();
        subs.insert("a/#".into(), QoS::AtMostOnce, 2).unwrap();
        subs.insert("a/#".into(), QoS::AtLeastOnce, 2).unwrap();
        assert_eq!(subs.as_slice(), &[("a/#".to_owned(), QoS::AtLeastOnce)]);
        subs.insert("b".into(), QoS::AtMostOnce, 2).unwrap();
        assert_eq!(
            subs.insert("c".into(), QoS::AtMostOnce, 2),
            Err(TooManySubscriptions { limit: 2 })
        );
        assert!(subs.remove("b"));
        assert!(!subs.remove("b"));
        assert_eq!(subs.len(), 1);
    }

    #[test]
    fn max_qos_over_overlapping_subscriptions() {
        let subs = Subscriptions::from_vec(vec![
            ("a/+".into(), QoS::AtMostOnce),
            ("a/#".into(), QoS::AtLeastOnce),
        ]);
        assert_eq!(subs.max_qos("a/b"), Some(QoS::AtLeastOnce));
        assert_eq!(subs.max_qos("b"), None);
    }

    #[test]
    fn enqueue_routes_and_downgrades() {
        let mut s = session(&[("q0/#", QoS::AtMostOnce), ("q1/#", QoS::AtLeastOnce)]);
        s.go_online();
        assert_eq!(
            put(&mut s, "other", QoS::AtLeastOnce, 1),
            Err(EnqueueError::NotSubscribed)
        );
        assert_eq!(
            put(&mut s, "q0/x", QoS::AtLeastOnce, 1),
            Ok(QoS::AtMostOnce)
        );
        assert_eq!(
            put(&mut s, "q1/x", QoS::ExactlyOnce, 2),
            Ok(QoS::AtLeastOnce)
        );
        assert_eq!(put(&mut s, "q1/y", QoS::AtMostOnce, 3), Ok(QoS::AtMostOnce));
        assert_eq!(
            drain(&mut s),
            vec![
                ("q0/x".into(), QosPid::AtMostOnce, false),
                ("q1/x".into(), QosPid::AtLeastOnce(pid(1)), false),
                ("q1/y".into(), QosPid::AtMostOnce, false),
            ]
        );
        assert_eq!(s.puback(pid(1)), Ok(Some(2)));
        assert_eq!(s.puback(pid(1)), Err(UnknownPacketId(pid(1))));
    }

    #[test]
    fn window_and_queue_are_bounded() {
        let mut s = session(&[("#", QoS::AtLeastOnce)]);
        s.go_online();
        for t in 0..3 {
            put(&mut s, "t", QoS::AtLeastOnce, t).unwrap();
        }
        assert_eq!(drain(&mut s).len(), 2, "window of 2");
        assert_eq!((s.inflight_len(), s.queued_len()), (2, 1));
        assert!(!s.has_outgoing());
        for t in 3..5 {
            put(&mut s, "t", QoS::AtLeastOnce, t).unwrap();
        }
        assert_eq!(
            put(&mut s, "t", QoS::AtLeastOnce, 9),
            Err(EnqueueError::Full)
        );
        assert_eq!(s.puback(pid(2)), Ok(Some(1)));
        assert!(s.has_outgoing());
        assert_eq!(
            drain(&mut s),
            vec![("t".into(), QosPid::AtLeastOnce(pid(3)), false)]
        );
    }

    #[test]
    fn packet_ids_skip_those_in_flight() {
        let mut s = session(&[("#", QoS::AtLeastOnce)]);
        s.go_online();
        s.last_id = u16::MAX - 1;
        put(&mut s, "t", QoS::AtLeastOnce, 0).unwrap();
        put(&mut s, "t", QoS::AtLeastOnce, 1).unwrap();
        let ids: Vec<_> = drain(&mut s)
            .into_iter()
            .map(|(_, q, _)| q.packet_id())
            .collect();
        assert_eq!(ids, vec![Some(pid(u16::MAX)), Some(pid(1))]);
        // Ack 65535 only; the next id wraps past 1 (in use) to 2.
        s.puback(pid(u16::MAX)).unwrap();
        s.last_id = 0;
        put(&mut s, "t", QoS::AtLeastOnce, 2).unwrap();
        assert_eq!(
            drain(&mut s),
            vec![("t".into(), QosPid::AtLeastOnce(pid(2)), false)]
        );
    }

    #[test]
    fn offline_keeps_qos1_drops_qos0_and_resends_with_dup() {
        let mut s = session(&[("#", QoS::AtLeastOnce)]);
        assert_eq!(
            put(&mut s, "a", QoS::AtMostOnce, 0),
            Err(EnqueueError::Offline)
        );
        put(&mut s, "a", QoS::AtLeastOnce, 1).unwrap();
        assert!(
            s.next_outgoing(|_| ()).is_none(),
            "nothing goes out while offline"
        );
        s.go_online();
        put(&mut s, "b", QoS::AtMostOnce, 2).unwrap();
        assert_eq!(drain(&mut s).len(), 2);
        put(&mut s, "c", QoS::AtLeastOnce, 3).unwrap();
        put(&mut s, "d", QoS::AtMostOnce, 4).unwrap();
        s.go_offline();
        assert_eq!(
            (s.inflight_len(), s.queued_len()),
            (1, 1),
            "c kept, d dropped"
        );
        s.go_online();
        assert_eq!(
            drain(&mut s),
            vec![
                ("a".into(), QosPid::AtLeastOnce(pid(1)), true),
                ("c".into(), QosPid::AtLeastOnce(pid(2)), false),
            ]
        );
        // Acknowledging a re-sent message keeps the bookkeeping straight.
        assert_eq!(s.puback(pid(2)), Ok(Some(3)));
        assert_eq!(s.puback(pid(1)), Ok(Some(1)));
        assert!(!s.has_outgoing());
    }

    #[test]
    fn ack_before_resend_after_reconnect() {
        let mut s = session(&[("#", QoS::AtLeastOnce)]);
        s.go_online();
        put(&mut s, "a", QoS::AtLeastOnce, 1).unwrap();
        put(&mut s, "b", QoS::AtLeastOnce, 2).unwrap();
        drain(&mut s);
        s.go_offline();
        s.go_online();
        // The first is re-sent; then a late PUBACK for the second arrives before its resend.
        assert_eq!(
            drain_one(&mut s),
            Some(("a".into(), QosPid::AtLeastOnce(pid(1)), true))
        );
        assert_eq!(s.puback(pid(2)), Ok(Some(2)));
        assert_eq!(drain(&mut s), vec![]);
        assert_eq!(s.puback(pid(1)), Ok(Some(1)));
    }

    fn drain_one(s: &mut Session<u32>) -> Option<(String, QosPid, bool)> {
        s.next_outgoing(|o| (o.topic.to_owned(), o.qos_pid, o.dup))
    }
}
