//! REST authentication: a SAS token in `Authorization` (spec §2.1), either signed with a
//! shared access policy key and checked for the right the endpoint needs, or (for an edge
//! device managing its own modules) signed with the device's key and scoped to the device.

use axum::http::HeaderMap;
use spoke_core::sas::{SasToken, decode_key};

use super::error::ApiError;
use crate::policies::{Policy, Right};

fn token(headers: &HeaderMap) -> Result<SasToken, ApiError> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header"))?;
    SasToken::parse(header)
        .map_err(|e| ApiError::unauthorized(format!("malformed SharedAccessSignature: {e}")))
}

/// Checks a device-scoped token (no `skn`, `sr` covering `{host}/devices/{device}`) against the
/// device's keys. Edge devices use this to manage their module identities, as Azure's identity
/// service does.
pub fn authorize_device(
    headers: &HeaderMap,
    hostname: &str,
    device: &str,
    keys: &[&str],
    now_unix: u64,
) -> Result<(), ApiError> {
    let token = token(headers)?;
    if token.skn.is_some() {
        return Err(ApiError::unauthorized("not a device token"));
    }
    let resource = token
        .resource()
        .map_err(|e| ApiError::unauthorized(format!("malformed sr: {e}")))?;
    if !resource.covers(hostname, &["devices", device]) {
        return Err(ApiError::unauthorized(
            "the token's sr does not cover this device",
        ));
    }
    let ok = keys
        .iter()
        .filter_map(|k| decode_key(k).ok())
        .any(|key| token.verify(&key, now_unix).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ApiError::unauthorized("the device token does not verify"))
    }
}

/// Checks the request's token against `policies` for `right`.
pub fn authorize(
    headers: &HeaderMap,
    policies: &[Policy],
    hostname: &str,
    right: Right,
    now_unix: u64,
) -> Result<(), ApiError> {
    let token = token(headers)?;
    let name = token
        .skn
        .as_deref()
        .ok_or_else(|| ApiError::unauthorized("the token names no shared access policy (skn)"))?;
    let policy = policies
        .iter()
        .find(|p| p.key_name == name)
        .ok_or_else(|| ApiError::unauthorized(format!("unknown shared access policy {name}")))?;
    let resource = token
        .resource()
        .map_err(|e| ApiError::unauthorized(format!("malformed sr: {e}")))?;
    if !resource.covers(hostname, &[]) {
        return Err(ApiError::unauthorized(
            "the token's sr does not name this hub",
        ));
    }
    let verified = [&policy.primary_key, &policy.secondary_key]
        .into_iter()
        .filter_map(|k| decode_key(k).ok())
        .map(|key| token.verify(&key, now_unix))
        .collect::<Vec<_>>();
    if !verified.iter().any(Result::is_ok) {
        let reason = verified
            .into_iter()
            .find_map(Result::err)
            .map_or_else(|| "no usable key".to_owned(), |e| e.to_string());
        return Err(ApiError::unauthorized(reason));
    }
    if !policy.grants(right) {
        return Err(ApiError::unauthorized(format!(
            "policy {name} does not grant {right:?}"
        )));
    }
    Ok(())
}
