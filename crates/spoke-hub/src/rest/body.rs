//! Request-body and header helpers shared by the handlers.

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses a JSON body, answering 400 with the parser's message when it is malformed.
pub fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// The `If-Match` header, if any.
pub fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get("if-match").and_then(|v| v.to_str().ok())
}
