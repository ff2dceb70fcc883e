//! `POST /devices/query` (spec §5.5): the IoT Hub query language over twins, with paging by
//! `x-ms-max-item-count` and an opaque `x-ms-continuation` token (the offset of the next item).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use spoke_core::query::{Collection, ItemType, Query};

use super::body::json;
use super::error::ApiError;
use crate::hub::Hub;
use crate::policies::Right;

/// The most items one page returns (IoT Hub's limit).
const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
struct QueryBody {
    query: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn decode_continuation(token: &str) -> Result<usize, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad_request("invalid x-ms-continuation token"))
}

pub(super) async fn query(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    hub.authorize(&headers, Right::ServiceConnect)
        .or_else(|_| hub.authorize(&headers, Right::RegistryRead))?;
    let body: QueryBody = json(&body)?;
    let query = Query::parse(&body.query)
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let page = match header(&headers, "x-ms-max-item-count") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("x-ms-max-item-count must be a number"))?
            .clamp(1, MAX_PAGE),
        None => 100,
    };
    let start = header(&headers, "x-ms-continuation")
        .map(decode_continuation)
        .transpose()?
        .unwrap_or(0);
    let docs = match query.from() {
        Collection::Devices => hub.twin_documents(false).await,
        Collection::Modules => hub.twin_documents(true).await,
        Collection::Jobs => Vec::new(),
    };
    let output = query
        .execute(docs.iter())
        .map_err(|e| ApiError::bad_request(format!("query failed: {e}")))?;
    let total = output.items.len();
    let items: Vec<Value> = output.items.into_iter().skip(start).take(page).collect();
    let next = start + items.len();
    let mut response = axum::Json(Value::Array(items)).into_response();
    let item_type = match output.item_type {
        ItemType::Twin => "twin",
        ItemType::Raw => "raw",
        ItemType::DeviceJob => "deviceJob",
    };
    response
        .headers_mut()
        .insert("x-ms-item-type", HeaderValue::from_static(item_type));
    if next < total {
        let token = base64::engine::general_purpose::STANDARD.encode(next.to_string());
        if let Ok(v) = HeaderValue::from_str(&token) {
            response.headers_mut().insert("x-ms-continuation", v);
        }
    }
    Ok(response)
}
