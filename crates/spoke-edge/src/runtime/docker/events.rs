//! Following Docker's event stream for this instance's containers.
//!
//! Invariant: no `start`/`die` event after the runtime connected is lost to a slow or broken
//! subscription. The stream is opened with `since` = the connect time, and re-opened after an
//! error with `since` = just after the last event seen, so Docker replays what happened in
//! between (from its in-memory event log). An event may be delivered late, never silently
//! dropped while Docker still holds it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::convert;
use super::spec::INSTANCE_LABEL;
use crate::runtime::types::RuntimeEvent;

/// Pause before re-opening a failed event stream.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Forwards the events of `instance`'s containers to `events` from `since_nanos` (Unix time in
/// nanoseconds) on, forever; the runtime aborts the task when dropped.
pub(super) async fn follow(
    docker: Docker,
    instance: String,
    events: broadcast::Sender<RuntimeEvent>,
    mut since_nanos: i64,
) {
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        (
            "label".to_owned(),
            vec![format!("{INSTANCE_LABEL}={instance}")],
        ),
        (
            "event".to_owned(),
            vec!["start".to_owned(), "die".to_owned()],
        ),
    ]);
    loop {
        let options = EventsOptions {
            since: Some(format!(
                "{}.{:09}",
                since_nanos.div_euclid(1_000_000_000),
                since_nanos.rem_euclid(1_000_000_000)
            )),
            until: None,
            filters: Some(filters.clone()),
        };
        let mut stream = docker.events(Some(options));
        while let Some(item) = stream.next().await {
            match item {
                Ok(message) => {
                    if let Some(nanos) = message.time_nano {
                        since_nanos = since_nanos.max(nanos + 1);
                    }
                    if let Some(event) = convert::event(&message) {
                        tracing::debug!(module = %event.name, kind = ?event.kind, "engine event");
                        // No subscribers is fine.
                        let _ = events.send(event);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Docker event stream failed; reopening");
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}
