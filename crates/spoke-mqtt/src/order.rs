//! Arrival order of one connection's messages through an application's storage.
//!
//! The server handles a connection's `PUBLISH`es concurrently (so that they share disk syncs)
//! and acknowledges them in order; without more, two messages could be stored in either order.
//! A [`Turn`] is taken in [`crate::server::Hooks::publish`], which is called as each `PUBLISH`
//! arrives; the application waits for it before handing the message to its storage and
//! releases it once the message has its place there, so that a connection's messages are
//! stored in the order they arrived while their disk syncs still overlap.
//!
//! The turns form a chain of one-shot channels: each holds the receiver its predecessor
//! releases and the sender its successor waits on, so a release wakes exactly one waiter. A
//! turn dropped before its own turn came (its message needed no queue, or failed early) hands
//! its predecessor's receiver on to its successor, so the chain never skips a message still
//! waiting.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// What a turn passes on: nothing (go), or the predecessor still to wait for.
#[derive(Debug)]
struct Baton(Option<oneshot::Receiver<Baton>>);

/// The arrival order of one connection (cheap to clone: shared).
#[derive(Debug, Clone)]
pub struct ArrivalOrder {
    /// What the next turn waits on: released by the latest turn taken.
    last: Arc<Mutex<oneshot::Receiver<Baton>>>,
}

impl Default for ArrivalOrder {
    fn default() -> Self {
        let (_released, rx) = oneshot::channel();
        Self {
            last: Arc::new(Mutex::new(rx)),
        }
    }
}

impl ArrivalOrder {
    /// The turn of the message arriving now, after every turn taken before.
    pub fn take(&self) -> Turn {
        let (release, next) = oneshot::channel();
        let previous = std::mem::replace(
            &mut *self.last.lock().unwrap_or_else(PoisonError::into_inner),
            next,
        );
        Turn {
            previous: Some(previous),
            release: Some(release),
        }
    }
}

/// One message's place in its connection's order; releasing or dropping it lets the next one
/// go once every earlier one has.
#[derive(Debug)]
pub struct Turn {
    /// The predecessor still to wait for; `None` once its turn came.
    previous: Option<oneshot::Receiver<Baton>>,
    release: Option<oneshot::Sender<Baton>>,
}

impl Turn {
    /// Resolves once every earlier turn has been released or dropped (a sender gone without
    /// a word means its connection is closing: nothing to wait for). Cancel safe.
    pub async fn wait(&mut self) {
        while let Some(previous) = &mut self.previous {
            self.previous = match previous.await {
                Ok(Baton(earlier)) => earlier,
                Err(_) => None,
            };
        }
    }

    /// Lets the next turn go (after this one's predecessors, if it did not wait for them).
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(Baton(self.previous.take()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    #[tokio::test]
    async fn turns_go_in_the_order_they_were_taken() {
        let order = ArrivalOrder::default();
        let mut first = order.take();
        let mut second = order.take();
        let mut third = order.take();
        assert!(
            second.wait().now_or_never().is_none(),
            "second waits for first"
        );
        first.wait().await;
        first.release();
        assert!(
            third.wait().now_or_never().is_none(),
            "third waits for second"
        );
        second.wait().await;
        drop(second);
        third.wait().await;
        third.release();
        order.take().wait().await;
    }

    #[tokio::test]
    async fn a_turn_dropped_early_does_not_let_later_ones_skip_earlier_ones() {
        let order = ArrivalOrder::default();
        let first = order.take();
        let second = order.take();
        let mut third = order.take();
        drop(second);
        assert!(
            third.wait().now_or_never().is_none(),
            "third still waits for first"
        );
        first.release();
        third.wait().await;
    }
}
