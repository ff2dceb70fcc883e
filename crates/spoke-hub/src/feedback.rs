//! C2D feedback (spec §5.7 "Feedback"): records of what happened to messages whose sender asked
//! for acknowledgements with `iothub-ack` (`positive`, `negative` or `full`), served in batches
//! at `/messages/serviceBound/feedback` with a lock token, completed or abandoned by the service.
//!
//! Feedback lives in memory (bounded to [`MAX_RECORDS`], oldest dropped first); it is lost on a
//! hub restart, as documented in docs/compatibility.md.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use spoke_core::ids::DeviceId;
use spoke_core::message::Message;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most records kept while no service reads them.
pub const MAX_RECORDS: usize = 10_000;
/// Most records in one batch (IoT Hub batches up to 64).
pub const BATCH: usize = 64;

/// Outcome of a C2D message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FeedbackStatus {
    /// The device completed it.
    Success,
    /// Its TTL ran out.
    Expired,
    /// It was delivered too many times without completion.
    DeliveryCountExceeded,
    /// It was purged by the service.
    Purged,
}

impl FeedbackStatus {
    fn positive(self) -> bool {
        self == Self::Success
    }
}

/// One feedback record, as IoT Hub serializes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackRecord {
    original_message_id: Option<String>,
    enqueued_time_utc: String,
    status_code: FeedbackStatus,
    description: String,
    device_id: String,
    device_generation_id: String,
    #[serde(skip)]
    ack: Option<String>,
}

impl FeedbackRecord {
    /// The record for `message` (sent to `device`) ending with `status`.
    pub fn new(
        device: &DeviceId,
        message: &Message,
        enqueued_ms: i64,
        status: FeedbackStatus,
    ) -> Self {
        let enqueued =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(enqueued_ms) * 1_000_000)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default();
        Self {
            original_message_id: message.system.message_id.clone(),
            enqueued_time_utc: enqueued,
            status_code: status,
            description: format!("{status:?}"),
            device_id: device.to_string(),
            device_generation_id: String::new(),
            ack: message.system.ack.clone(),
        }
    }

    fn wanted(&self) -> bool {
        match self.ack.as_deref() {
            Some("full") => true,
            Some("positive") => self.status_code.positive(),
            Some("negative") => !self.status_code.positive(),
            _ => false,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    records: VecDeque<FeedbackRecord>,
    locked: HashMap<String, Vec<FeedbackRecord>>,
}

/// The feedback queue (shared by the C2D actor, which records, and the REST API, which reads).
#[derive(Debug, Clone, Default)]
pub struct Feedback {
    state: Arc<Mutex<State>>,
}

impl Feedback {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `record` if its message asked for this kind of feedback.
    pub fn record(&self, record: FeedbackRecord) {
        if !record.wanted() {
            return;
        }
        let mut state = self.state();
        if state.records.len() >= MAX_RECORDS {
            state.records.pop_front();
        }
        state.records.push_back(record);
    }

    /// Locks and returns the next batch with its lock token, if any records wait.
    pub fn receive(&self) -> Option<(String, Vec<FeedbackRecord>)> {
        let mut state = self.state();
        if state.records.is_empty() {
            return None;
        }
        let n = state.records.len().min(BATCH);
        let batch: Vec<FeedbackRecord> = state.records.drain(..n).collect();
        let lock = uuid::Uuid::new_v4().to_string();
        state.locked.insert(lock.clone(), batch.clone());
        Some((lock, batch))
    }

    /// Completes a locked batch; `false` if the lock is unknown.
    pub fn complete(&self, lock: &str) -> bool {
        self.state().locked.remove(lock).is_some()
    }

    /// Puts a locked batch back at the front; `false` if the lock is unknown.
    pub fn abandon(&self, lock: &str) -> bool {
        let mut state = self.state();
        let Some(batch) = state.locked.remove(lock) else {
            return false;
        };
        for record in batch.into_iter().rev() {
            state.records.push_front(record);
        }
        true
    }
}
