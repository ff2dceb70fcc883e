//! C2D over REST (Spoke's service-side send, until the AMQP endpoint exists), purge, and the
//! feedback endpoints (spec §5.2, §5.7).
//!
//! `POST /devices/{id}/messages/deviceBound`: the body is the message payload; properties come
//! in the headers of IoT Hub's HTTP API (spec §6): `iothub-messageid`, `iothub-correlationid`,
//! `iothub-userid`, `iothub-contenttype`, `iothub-contentencoding`, `iothub-expiry`,
//! `iothub-ack`, and `iothub-app-{name}` for application properties. Answers 204.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use spoke_core::message::Message;

use super::devices::device_id;
use super::error::ApiError;
use crate::c2d::{C2dError, MAX_SIZE};
use crate::hub::Hub;
use crate::policies::Right;

fn c2d_error(e: &C2dError) -> ApiError {
    match e {
        C2dError::QueueFull(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "DeviceMaximumQueueDepthExceeded",
            e.to_string(),
        ),
        C2dError::TooLarge(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MessageTooLarge",
            e.to_string(),
        ),
        C2dError::Store(_) | C2dError::Closed => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerError",
            e.to_string(),
        ),
    }
}

/// Builds a message from the body and the `iothub-*` headers.
fn message_from_headers(headers: &HeaderMap, body: &Bytes) -> Result<Message, ApiError> {
    let mut message = Message::new(body.to_vec());
    for (name, value) in headers {
        let name = name.as_str();
        let Some(rest) = name.strip_prefix("iothub-") else {
            continue;
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::bad_request(format!("header {name} is not valid text")))?
            .to_owned();
        let system = &mut message.system;
        match rest {
            "messageid" => system.message_id = Some(value),
            "correlationid" => system.correlation_id = Some(value),
            "userid" => system.user_id = Some(value),
            "contenttype" => system.content_type = Some(value),
            "contentencoding" => system.content_encoding = Some(value),
            "expiry" => system.expiry_time_utc = Some(value),
            "ack" => {
                if !matches!(value.as_str(), "none" | "positive" | "negative" | "full") {
                    return Err(ApiError::bad_request(
                        "iothub-ack must be none, positive, negative or full",
                    ));
                }
                system.ack = Some(value);
            }
            _ => {
                if let Some(app) = rest.strip_prefix("app-") {
                    message.app.push((app.to_owned(), Some(value)));
                }
            }
        }
    }
    if message
        .system
        .message_id
        .as_ref()
        .is_some_and(|m| m.len() > 128)
    {
        return Err(ApiError::bad_request(
            "message id is longer than 128 characters",
        ));
    }
    Ok(message)
}

pub(super) async fn send(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)?;
    let id = device_id(&id)?;
    if body.len() > MAX_SIZE {
        return Err(c2d_error(&C2dError::TooLarge(body.len())));
    }
    hub.registry.get_device(&id).await?;
    let message = message_from_headers(&headers, &body)?;
    hub.c2d
        .send(id, message, None)
        .await
        .map_err(|e| c2d_error(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn purge(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)?;
    let id = device_id(&id)?;
    hub.registry.get_device(&id).await?;
    let purged = hub.c2d.purge(id.clone()).await.map_err(|e| c2d_error(&e))?;
    Ok(Json(
        json!({"totalMessagesPurged": purged, "deviceId": id, "moduleId": null}),
    ))
}

pub(super) async fn receive_feedback(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)?;
    let Some((lock, batch)) = hub.feedback.receive() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut response = Json(batch).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{lock}\"")) {
        response.headers_mut().insert("etag", v);
    }
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/vnd.microsoft.iothub.feedback.json"),
    );
    Ok(response)
}

fn settle(found: bool) -> Result<StatusCode, ApiError> {
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "unknown or expired lock token",
        ))
    }
}

pub(super) async fn complete_feedback(
    State(hub): State<Arc<Hub>>,
    Path(lock): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)?;
    settle(hub.feedback.complete(lock.trim_matches('"')))
}

pub(super) async fn abandon_feedback(
    State(hub): State<Arc<Hub>>,
    Path(lock): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)?;
    settle(hub.feedback.abandon(lock.trim_matches('"')))
}
