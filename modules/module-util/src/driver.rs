//! The event loop every sample module shares: a [`Driver`] owns the client and its events and
//! runs a module's synchronous [`ModuleCore`] (STYLE.md §3: the core decides, the driver does
//! the I/O).
//!
//! Invariants:
//! - the twin's desired properties are loaded and the resulting reported properties sent
//!   before anything else (at [`Driver::start`]), and again after every reconnection, when
//!   patches may have been missed;
//! - one event is handled at a time, in order; outputs are sent one at a time, each
//!   acknowledged before the next event (so a slow hub slows the module, never piles up
//!   messages in memory);
//! - the timer fires first right after start, then [`ModuleCore::tick_interval`] after the
//!   previous tick (an interval change counts from the previous tick);
//! - only a closed client ends the loop early ([`crate::keep_going`]); shutdown interrupts
//!   even a send that waits for a reconnection.

use std::future::Future;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use spoke_core::message::Message;
use spoke_sdk::{Client, ClientConfig, Error, Event, Events};
use tokio::time::{Instant, sleep_until};

use crate::keep_going;

/// The status of a direct method the module does not implement (the device SDKs' answer).
pub const METHOD_NOT_IMPLEMENTED: i32 = 501;

/// The answer to direct method `name` when the module does not implement it.
pub fn not_implemented(name: &str) -> (i32, Value) {
    (
        METHOD_NOT_IMPLEMENTED,
        json!({"message": format!("method {name} is not implemented")}),
    )
}

/// A message for one of the module's outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The output's name.
    pub name: &'static str,
    /// The message.
    pub message: Message,
}

/// A module's logic, free of I/O: it takes what the hub says and returns what to send.
pub trait ModuleCore {
    /// Loads the whole desired-properties document (at start and after a reconnection:
    /// properties it lacks were deleted) and returns the reported-properties patch.
    fn load_desired(&mut self, desired: &Map<String, Value>) -> Value;

    /// Applies a desired-properties patch and returns the reported-properties patch.
    fn patch_desired(&mut self, patch: &Map<String, Value>) -> Value;

    /// Answers a direct method with a status and a payload. By default every method is
    /// not implemented.
    fn method(&mut self, name: &str, payload: &Value) -> (i32, Value) {
        let _ = payload;
        not_implemented(name)
    }

    /// Handles a message that arrived on `input`; returns what to send. By default messages
    /// are ignored.
    fn message(&mut self, input: Option<&str>, message: &Message) -> Option<Output> {
        let _ = message;
        tracing::debug!(?input, "ignoring an input message");
        None
    }

    /// How long after the previous tick the next one is due; `None` when no tick is needed
    /// (the default).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// The timer fired at `now`; returns what to send.
    fn tick(&mut self, now: SystemTime) -> Option<Output> {
        let _ = now;
        None
    }
}

/// A connected module whose desired properties are loaded and reported.
#[derive(Debug)]
pub struct Driver<C> {
    client: Client,
    events: Events,
    core: C,
}

/// Starts `core` on a client for `config` and runs it until `shutdown` completes; returns
/// the core for its final state, or `None` when shutdown interrupted the start.
pub async fn run<C: ModuleCore>(
    config: ClientConfig,
    core: C,
    shutdown: impl Future<Output = ()>,
) -> Result<Option<C>, Error> {
    let mut shutdown = std::pin::pin!(shutdown);
    let driver = tokio::select! {
        driver = Driver::start(config, core) => driver?,
        () = &mut shutdown => return Ok(None),
    };
    driver.run(shutdown).await.map(Some)
}

impl<C: ModuleCore> Driver<C> {
    /// Connects, loads the twin's desired properties into `core` and reports what it says.
    pub async fn start(config: ClientConfig, mut core: C) -> Result<Self, Error> {
        let (client, mut events) = Client::connect(config).await?;
        // The first event is `Connected` (the SDK's guarantee): the twin is loaded here.
        events.recv().await.ok_or(Error::Closed)?;
        let twin = client.get_twin().await?;
        let reported = core.load_desired(twin["desired"].as_object().unwrap_or(&Map::new()));
        client.patch_reported(&reported).await?;
        Ok(Self {
            client,
            events,
            core,
        })
    }

    /// The module's core.
    pub fn core(&self) -> &C {
        &self.core
    }

    /// Handles events and ticks until `shutdown` completes, then closes the client and
    /// returns the core.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<C, Error> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_tick: Option<Instant> = None;
        loop {
            let interval = self.core.tick_interval();
            let deadline = match (last_tick, interval) {
                (Some(last), Some(interval)) => last + interval,
                _ => Instant::now(),
            };
            let output = tokio::select! {
                () = &mut shutdown => break,
                event = self.events.recv() => self.handle(event.ok_or(Error::Closed)?).await?,
                () = sleep_until(deadline), if interval.is_some() => {
                    last_tick = Some(Instant::now());
                    self.core.tick(SystemTime::now())
                }
            };
            if let Some(Output { name, message }) = output {
                tokio::select! {
                    sent = self.client.send_output(name, message) => {
                        keep_going(sent, "send an output message")?;
                    }
                    () = &mut shutdown => break,
                }
            }
        }
        self.client.close().await?;
        Ok(self.core)
    }

    async fn handle(&mut self, event: Event) -> Result<Option<Output>, Error> {
        match event {
            Event::Connected => {
                tracing::info!("reconnected; reloading the twin");
                if let Some(twin) = keep_going(self.client.get_twin().await, "get the twin")? {
                    let empty = Map::new();
                    let reported = self
                        .core
                        .load_desired(twin["desired"].as_object().unwrap_or(&empty));
                    self.report(&reported).await?;
                }
            }
            Event::Disconnected { reason } => tracing::info!(?reason, "disconnected"),
            Event::DesiredPatch(patch) => {
                if let Some(patch) = patch.as_object() {
                    let reported = self.core.patch_desired(patch);
                    self.report(&reported).await?;
                }
            }
            Event::Method { name, rid, payload } => {
                let (status, payload) = self.core.method(&name, &payload);
                let answer = self.client.respond_method(&rid, status, &payload).await;
                keep_going(answer, "answer a direct method")?;
            }
            Event::Message { input, message } => {
                return Ok(self.core.message(input.as_deref(), &message));
            }
            // Only an IoT Edge device's connection subscribes for its modules.
            Event::ModuleDesiredPatch { .. } | Event::ModuleMethod { .. } => {}
        }
        Ok(None)
    }

    async fn report(&self, reported: &Value) -> Result<(), Error> {
        let result = self.client.patch_reported(reported).await;
        keep_going(result, "report properties").map(drop)
    }
}
