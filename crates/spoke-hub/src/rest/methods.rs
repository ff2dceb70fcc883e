//! Direct method invocation: `POST /twins/{id}[/modules/{mid}]/methods` (spec §5.4).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use spoke_core::ids::Identity;

use super::body::json;
use super::devices::{device_id, module_id};
use super::error::ApiError;
use crate::hub::Hub;
use crate::methods::{InvokeError, MethodCall};
use crate::policies::Right;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokeBody {
    method_name: String,
    #[serde(default)]
    payload: Value,
    response_timeout_in_seconds: Option<u64>,
    connect_timeout_in_seconds: Option<u64>,
}

async fn invoke(
    hub: &Hub,
    headers: &HeaderMap,
    identity: Identity,
    body: &Bytes,
) -> Result<Json<Value>, ApiError> {
    hub.authorize(headers, Right::ServiceConnect)?;
    let body: InvokeBody = json(body)?;
    if body.method_name.is_empty() || body.method_name.contains('/') {
        return Err(ApiError::bad_request(
            "methodName must be non-empty and contain no '/'",
        ));
    }
    let response_timeout = body.response_timeout_in_seconds.unwrap_or(30);
    if !(5..=300).contains(&response_timeout) {
        return Err(ApiError::bad_request(
            "responseTimeoutInSeconds must be between 5 and 300",
        ));
    }
    let connect_timeout = body.connect_timeout_in_seconds.unwrap_or(0);
    if connect_timeout > 300 {
        return Err(ApiError::bad_request(
            "connectTimeoutInSeconds must be at most 300",
        ));
    }
    // The SDK sends `""` for "no payload" (spec §5.4): the device then gets an empty body.
    let payload = match body.payload {
        Value::String(s) if s.is_empty() => None,
        Value::Null => None,
        other => Some(other),
    };
    let call = MethodCall {
        identity,
        name: body.method_name,
        payload,
        response_timeout: Duration::from_secs(response_timeout),
        connect_timeout: Duration::from_secs(connect_timeout),
    };
    match hub.methods.invoke(hub.mqtt(), call).await {
        Ok((status, payload)) => Ok(Json(json!({"status": status, "payload": payload}))),
        Err(e @ InvokeError::NotOnline) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "DeviceNotOnline",
            e.to_string(),
        )),
        Err(e @ InvokeError::Timeout) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "GatewayTimeout",
            e.to_string(),
        )),
        Err(e @ InvokeError::TooLarge) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MessageTooLarge",
            e.to_string(),
        )),
        Err(e @ InvokeError::Busy) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            e.to_string(),
        )),
    }
}

pub(super) async fn invoke_device(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let identity = Identity::device(device_id(&id)?);
    hub.registry.get_device(&identity.device).await?;
    invoke(&hub, &headers, identity, &body).await
}

pub(super) async fn invoke_module(
    State(hub): State<Arc<Hub>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (id, mid) = (device_id(&id)?, module_id(&mid)?);
    hub.registry.get_module(&id, &mid).await?;
    invoke(&hub, &headers, Identity::module(id, mid), &body).await
}
