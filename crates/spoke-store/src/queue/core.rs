//! The synchronous core of an endpoint queue: per priority, which offsets are done, which were
//! handed out, and what is known about the records near the head. No I/O; the endpoint
//! ([`super::endpoint`]) reads the logs and feeds what it read through these methods under a
//! short lock.
//!
//! Invariants of a [`Lane`] (checked by the unit tests below and by `tests/queue_model.rs`):
//!
//! 1. `acked <= next <= high`, and every element of `done` is above `acked` (the done
//!    prefix is always folded into `acked`).
//! 2. An offset is delivered only when it is offered at `next`, is not done and has not
//!    expired; `next` then moves one past it. So within a priority, delivery follows the log.
//! 3. Acknowledgements of offsets at or above `high` (never handed out since open) or below
//!    `acked` change nothing.
//! 4. `known` holds the metadata of the contiguous offsets `known_from..` and starts at
//!    `acked` whenever it is used to answer a question about the head.

use std::collections::{BTreeSet, VecDeque};

use super::codec::CursorState;
use super::{PRIORITIES, PriorityStats};

/// At most this many records' metadata is remembered per priority (about 24 bytes each).
const KNOWN_MAX: usize = 4096;

/// What the queue knows about a record without its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub enqueued_ms: i64,
    pub expires_at_ms: Option<i64>,
}

impl Meta {
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// What to do with a record read at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Hand it out.
    Deliver,
    /// Already done (acknowledged before a rewind or a restart): skip it silently.
    Done,
    /// Expired: skipped, counted and marked done.
    Expired,
    /// Unreadable (not a queue record): skipped and marked done.
    Discarded,
    /// Not at the lane's position (a rewind or purge moved it): read again from there.
    Stale,
}

/// The delivery state of one priority of an endpoint.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    acked: u64,
    next: u64,
    high: u64,
    done: BTreeSet<u64>,
    known_from: u64,
    known: VecDeque<Meta>,
    /// Bumped on every change of `acked` or `done`.
    version: u64,
    persisted_version: u64,
    persisted_acked: u64,
    expired: u64,
}

impl Lane {
    /// The state after opening a log whose retained offsets are `start..end` with the cursor
    /// file's `state` (`None`: no or a damaged file, so everything retained is pending).
    pub fn restore(state: Option<CursorState>, start: u64, end: u64) -> Self {
        let state = state.unwrap_or(CursorState {
            acked: start,
            done: Vec::new(),
        });
        let acked = state.acked.clamp(start, end.max(start));
        let mut lane = Self {
            acked,
            next: acked,
            high: acked,
            done: state
                .done
                .into_iter()
                .filter(|o| (acked..end).contains(o))
                .collect(),
            known_from: acked,
            persisted_acked: acked,
            ..Self::default()
        };
        lane.fold();
        lane.next = lane.acked;
        lane.high = lane.acked;
        lane.persisted_version = lane.version;
        lane
    }

    /// The offset the next record handed out must have.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Every offset below this is done.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The cursor last written to disk.
    pub fn persisted_acked(&self) -> u64 {
        self.persisted_acked
    }

    /// Decides about the record read at `offset`; `meta` is `None` for a record that is not a
    /// queue record. See [`Offer`].
    pub fn offer(&mut self, offset: u64, meta: Option<Meta>, now_ms: i64) -> Offer {
        if offset != self.next {
            return Offer::Stale;
        }
        self.next += 1;
        self.high = self.high.max(self.next);
        let Some(meta) = meta else {
            self.finish(offset);
            return Offer::Discarded;
        };
        self.learn(offset, meta);
        if self.done.contains(&offset) {
            Offer::Done
        } else if meta.expired(now_ms) {
            self.finish(offset);
            self.expired += 1;
            Offer::Expired
        } else {
            Offer::Deliver
        }
    }

    /// The reader skipped `from..to` (deleted or unreadable): those offsets are done.
    /// Returns false when `from` is not the lane's position (stale reader).
    pub fn skipped(&mut self, from: u64, to: u64) -> bool {
        if from != self.next {
            return false;
        }
        if from <= self.acked {
            self.drop_below(to);
        } else {
            // Damage after entries still in flight: only the unreadable ones are done.
            self.done.extend(from..to);
            self.fold();
            self.version += 1;
        }
        self.next = self.next.max(to);
        self.high = self.high.max(self.next);
        true
    }

    /// Every offset below `to` is done: it can no longer be read.
    pub fn drop_below(&mut self, to: u64) {
        if to > self.acked {
            self.acked = to;
            self.done = self.done.split_off(&to);
            self.fold();
            self.version += 1;
        }
    }

    /// Acknowledges `offset`; returns whether anything changed.
    pub fn ack(&mut self, offset: u64) -> bool {
        if offset < self.acked || offset >= self.high || self.done.contains(&offset) {
            return false;
        }
        self.finish(offset);
        true
    }

    /// Hands out again everything not done, from the first offset not done.
    pub fn rewind(&mut self) {
        self.next = self.acked;
    }

    /// Remembers the metadata of the record at `offset` (enqueued or read), when it extends
    /// the contiguous run of known records from the head.
    pub fn learn(&mut self, offset: u64, meta: Meta) {
        let fits = if self.known.is_empty() {
            offset == self.acked
        } else {
            offset == self.known_from + self.known.len() as u64
        };
        if fits && self.known.len() < KNOWN_MAX {
            if self.known.is_empty() {
                self.known_from = offset;
            }
            self.known.push_back(meta);
        }
    }

    /// The metadata of the first record not done, when known.
    pub fn head(&self) -> Option<Meta> {
        (self.known_from == self.acked)
            .then(|| self.known.front().copied())
            .flatten()
    }

    /// Marks the head done as expired (purge); the caller checked that it has expired.
    /// Counts it unless it was handed out (then it was delivered, maybe not acknowledged).
    pub fn expire_head(&mut self) {
        if self.acked >= self.next {
            self.expired += 1;
        }
        self.discard_head();
    }

    /// Marks the head done without counting it (it is not a queue record).
    pub fn discard_head(&mut self) {
        self.finish(self.acked);
    }

    /// Unacknowledged entries when the log ends at `end` (expired ones not yet skipped
    /// included).
    pub fn depth(&self, end: u64) -> u64 {
        end.saturating_sub(self.acked)
            .saturating_sub(self.done.len() as u64)
    }

    pub fn stats(&self, priority: u8, end: u64, bytes: u64) -> PriorityStats {
        let depth = self.depth(end);
        PriorityStats {
            priority,
            depth,
            oldest_enqueued_ms: self.head().filter(|_| depth > 0).map(|m| m.enqueued_ms),
            bytes,
            expired_total: self.expired,
        }
    }

    /// The state to persist and its version, when it changed since the last
    /// [`Lane::persisted`].
    pub fn unpersisted(&self) -> Option<(CursorState, u64)> {
        (self.version != self.persisted_version).then(|| {
            let state = CursorState {
                acked: self.acked,
                done: self.done.iter().copied().collect(),
            };
            (state, self.version)
        })
    }

    /// Records that the state of `version`, with cursor `acked`, is on disk.
    pub fn persisted(&mut self, version: u64, acked: u64) {
        self.persisted_version = version;
        self.persisted_acked = acked;
    }

    fn finish(&mut self, offset: u64) {
        if offset >= self.acked && self.done.insert(offset) {
            self.fold();
            self.version += 1;
        }
    }

    /// Folds the done offsets at `acked` into it, keeps `next` at or above it (invariant 1)
    /// and forgets metadata below it.
    fn fold(&mut self) {
        while self.done.remove(&self.acked) {
            self.acked += 1;
        }
        self.next = self.next.max(self.acked);
        self.high = self.high.max(self.next);
        let behind = self.acked.saturating_sub(self.known_from);
        if behind >= self.known.len() as u64 {
            self.known.clear();
            self.known_from = self.acked;
        } else {
            self.known.drain(..behind as usize);
            self.known_from = self.acked;
        }
    }
}

/// The lanes of all priorities of an endpoint, highest priority (0) first.
#[derive(Debug, Default)]
pub(crate) struct Core {
    lanes: [Lane; PRIORITIES],
}

impl Core {
    pub fn lane(&self, priority: usize) -> &Lane {
        &self.lanes[priority]
    }

    pub fn lane_mut(&mut self, priority: usize) -> &mut Lane {
        &mut self.lanes[priority]
    }

    pub fn rewind(&mut self) {
        self.lanes.iter_mut().for_each(Lane::rewind);
    }

    /// Whether some lane has state not yet on disk.
    pub fn dirty(&self) -> bool {
        self.lanes.iter().any(|l| l.version != l.persisted_version)
    }

    /// Every lane's state to persist: (priority, state, version).
    pub fn unpersisted(&self) -> Vec<(usize, CursorState, u64)> {
        (0..PRIORITIES)
            .filter_map(|p| {
                let (state, version) = self.lanes[p].unpersisted()?;
                Some((p, state, version))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    fn meta(expires_at_ms: Option<i64>) -> Meta {
        Meta {
            enqueued_ms: 10,
            expires_at_ms,
        }
    }

    /// Offers offsets `from..to` (unexpired) and returns the decisions.
    fn read(lane: &mut Lane, range: std::ops::Range<u64>) -> Vec<Offer> {
        range
            .map(|o| lane.offer(o, Some(meta(None)), NOW))
            .collect()
    }

    #[test]
    fn delivery_follows_the_log_and_acks_fold_a_contiguous_prefix() {
        let mut lane = Lane::default();
        assert_eq!(read(&mut lane, 0..4), [Offer::Deliver; 4]);
        assert_eq!(lane.offer(9, Some(meta(None)), NOW), Offer::Stale);
        assert!(lane.ack(1) && lane.ack(2));
        assert_eq!(lane.acked(), 0, "0 is still pending");
        assert!(lane.ack(0));
        assert_eq!(lane.acked(), 3);
        assert!(!lane.ack(0), "below the cursor");
        assert!(!lane.ack(4), "never handed out");
        assert_eq!(lane.depth(4), 1);
    }

    #[test]
    fn an_ack_after_a_rewind_moves_the_position_past_it() {
        let mut lane = Lane::default();
        read(&mut lane, 0..2);
        lane.rewind();
        assert!(lane.ack(0));
        assert_eq!(lane.position(), 1);
    }

    #[test]
    fn rewind_redelivers_what_is_not_done() {
        let mut lane = Lane::default();
        read(&mut lane, 0..4);
        assert!(lane.ack(1));
        lane.rewind();
        assert_eq!(lane.position(), 0);
        assert_eq!(
            read(&mut lane, 0..4),
            [Offer::Deliver, Offer::Done, Offer::Deliver, Offer::Deliver]
        );
        assert!(
            lane.ack(3),
            "acks of entries handed out before the rewind count"
        );
    }

    #[test]
    fn expired_records_are_skipped_counted_and_done() {
        let mut lane = Lane::default();
        assert_eq!(lane.offer(0, Some(meta(Some(NOW))), NOW), Offer::Expired);
        assert_eq!(
            lane.offer(1, Some(meta(Some(NOW + 1))), NOW),
            Offer::Deliver
        );
        assert_eq!(lane.offer(2, None, NOW), Offer::Discarded);
        assert_eq!(lane.acked(), 1);
        assert_eq!(lane.stats(0, 3, 0).expired_total, 1);
        assert!(lane.ack(1));
        assert_eq!(lane.acked(), 3);
    }

    #[test]
    fn skipped_ranges_are_done_and_stale_skips_are_refused() {
        let mut lane = Lane::default();
        read(&mut lane, 0..2);
        assert!(!lane.skipped(0, 5));
        assert!(lane.skipped(2, 5));
        assert_eq!((lane.acked(), lane.position()), (0, 5));
        assert!(lane.ack(0) && lane.ack(1));
        assert_eq!(lane.acked(), 5);
    }

    #[test]
    fn the_head_is_known_from_enqueues_and_reads() {
        let mut lane = Lane::default();
        let m = |ms| Meta {
            enqueued_ms: ms,
            expires_at_ms: Some(ms + 100),
        };
        lane.learn(0, m(1));
        lane.learn(2, m(3));
        lane.learn(1, m(2));
        assert_eq!(lane.head(), Some(m(1)));
        assert_eq!(lane.offer(0, Some(m(1)), 0), Offer::Deliver);
        assert!(lane.ack(0));
        assert_eq!(lane.head(), Some(m(2)));
        assert_eq!(lane.stats(0, 3, 0).oldest_enqueued_ms, Some(2));
        lane.expire_head();
        assert_eq!(lane.acked(), 2);
        assert_eq!(lane.position(), 2);
        assert_eq!(lane.head(), None, "2 was never learned after 1");
        assert_eq!(lane.stats(0, 3, 0).expired_total, 1);
    }

    #[test]
    fn expiring_a_handed_out_head_does_not_count_it() {
        let mut lane = Lane::default();
        assert_eq!(
            lane.offer(0, Some(meta(Some(NOW + 1))), NOW),
            Offer::Deliver
        );
        lane.expire_head();
        assert_eq!(lane.stats(0, 1, 0).expired_total, 0);
        assert_eq!(lane.depth(1), 0);
    }

    #[test]
    fn persistence_tracks_versions_and_restores_done_sets() {
        let mut lane = Lane::default();
        read(&mut lane, 0..5);
        assert!(lane.unpersisted().is_none());
        assert!(lane.ack(0) && lane.ack(3));
        let (state, version) = lane.unpersisted().unwrap();
        assert_eq!(
            state,
            CursorState {
                acked: 1,
                done: vec![3]
            }
        );
        lane.persisted(version, state.acked);
        assert!(lane.unpersisted().is_none());
        assert_eq!(lane.persisted_acked(), 1);

        let mut reopened = Lane::restore(Some(state), 0, 5);
        assert_eq!((reopened.acked(), reopened.position()), (1, 1));
        assert_eq!(
            read(&mut reopened, 1..5),
            [Offer::Deliver, Offer::Deliver, Offer::Done, Offer::Deliver]
        );
        assert!(reopened.unpersisted().is_none());
    }

    #[test]
    fn restore_clamps_the_cursor_to_the_retained_range() {
        let lost = Lane::restore(None, 4, 9);
        assert_eq!((lost.acked(), lost.position()), (4, 4));
        let ahead = Lane::restore(
            Some(CursorState {
                acked: 20,
                done: vec![],
            }),
            4,
            9,
        );
        assert_eq!(ahead.acked(), 9);
        let behind = Lane::restore(
            Some(CursorState {
                acked: 1,
                done: vec![2, 4, 5, 7, 12],
            }),
            4,
            9,
        );
        assert_eq!(behind.acked(), 6);
        assert_eq!(behind.depth(9), 2, "6 and 8 are pending");
    }

    #[test]
    fn core_rewinds_every_lane_and_lists_unpersisted_ones() {
        let mut core = Core::default();
        read(core.lane_mut(0), 0..2);
        read(core.lane_mut(7), 0..3);
        assert!(core.lane_mut(7).ack(0));
        assert!(core.dirty());
        assert_eq!(
            core.unpersisted()
                .iter()
                .map(|(p, _, _)| *p)
                .collect::<Vec<_>>(),
            [7]
        );
        core.rewind();
        assert_eq!(core.lane(0).position(), 0);
        assert_eq!(core.lane(7).position(), 1);
    }
}
