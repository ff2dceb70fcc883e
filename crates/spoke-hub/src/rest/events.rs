//! `GET /events`: Spoke's streaming telemetry endpoint (newline-delimited JSON, one
//! `az iot hub monitor-events`-shaped object per line), used by `spoke monitor-events`.
//!
//! Query parameters: `enqueuedTime` (ms since the Unix epoch: replay stored events from then
//! on; without it, events from now on) and `deviceId` (only that device's events). The stream
//! stays open, following the log, until the client goes away.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::error::ApiError;
use spoke_store::log::ReadEvent;

use crate::hub::Hub;
use crate::policies::Right;
use crate::telemetry;

pub(super) async fn stream_events(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)?;
    let device = query.get("deviceId").cloned();
    let start = match query.get("enqueuedTime") {
        Some(t) => {
            let ms = t.parse::<i64>().map_err(|_| {
                ApiError::bad_request("enqueuedTime must be milliseconds since the Unix epoch")
            })?;
            hub.events.offset_for_time(ms).await.map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "ServerError",
                    e.to_string(),
                )
            })?
        }
        None => hub.events.end_offset(),
    };
    let reader = hub.events.read_from(start);
    let lines = stream::unfold(reader, move |mut reader| {
        let device = device.clone();
        async move {
            loop {
                let record = match reader.next().await {
                    Ok(Some(ReadEvent::Record(r))) => r,
                    Ok(Some(ReadEvent::Skipped { from, to })) => {
                        tracing::info!(
                            from,
                            to,
                            "events stream skipped records removed by retention"
                        );
                        continue;
                    }
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, "events stream stopped");
                        return None;
                    }
                };
                let Ok((head, body)) = telemetry::decode(&record.payload) else {
                    tracing::warn!(
                        offset = record.offset,
                        "skipping an unreadable event record"
                    );
                    continue;
                };
                if device.as_deref().is_some_and(|d| d != head.device_id) {
                    continue;
                }
                let mut line = telemetry::to_az_json(&head, body, record.offset).to_string();
                line.push('\n');
                return Some((Ok::<_, Infallible>(Bytes::from(line)), reader));
            }
        }
    });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}
