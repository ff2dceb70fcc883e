//! The edge hub's HTTPS port (`bind:443`): MQTT over WebSocket at `/$iothub/websocket` (as IoT
//! Hub serves it, [`spoke_mqtt::websocket`]), and module-to-module direct methods as the Azure
//! SDK's `invoke_method` sends them (spec: `POST /twins/{d}/modules/{m}/methods`, headers
//! `x-ms-edge-moduleId: {d}/{m}` naming the caller and `Authorization: <the caller's SAS
//! token>`, body `{"methodName","payload","responseTimeoutInSeconds",...}`, answer
//! `{"status","payload"}`).
//!
//! Errors are JSON `{"message": ...}`: 400 for a malformed request, 401 for a missing or bad
//! token, 404 for an unknown path, a target that is not a module of this device, or one that is
//! not connected, 413 over the 128 KB method payload limit, 504 when the target does not answer
//! in time.

use std::convert::Infallible;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use spoke_core::ids::{DeviceId, ModuleId};
use spoke_mqtt::server::PeerInfo;
use spoke_mqtt::websocket;

use super::Shared;
use super::auth::verify_token;

/// IoT Hub's limit on a method request payload.
const MAX_BODY: usize = 128 * 1024;
/// Default and largest `responseTimeoutInSeconds` (IoT Hub's).
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const MAX_TIMEOUT_SECS: u64 = 300;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpError {
    HttpError {
        status,
        message: message.into(),
    }
}

/// A method call: which module calls which, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoke {
    /// The calling module (`x-ms-edge-moduleId`), whose token authorizes the call.
    pub caller: ModuleId,
    /// The target module.
    pub target: ModuleId,
    /// The `Authorization` header.
    pub token: String,
}

fn decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&segment.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(Into::into)
}

/// Reads the request line and headers of a method call to this edge device's modules.
pub fn parse_invoke(
    method: &Method,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    device: &DeviceId,
) -> Result<Invoke, HttpError> {
    let not_found = || error(StatusCode::NOT_FOUND, format!("no such resource: {path}"));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (target_device, target) = match segments.as_slice() {
        ["twins", d, "modules", m, "methods"] => (
            decode(d).ok_or_else(not_found)?,
            decode(m).ok_or_else(not_found)?,
        ),
        ["twins", d, "methods"] => {
            let d = decode(d).unwrap_or_default();
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("device {d} is not reachable through this edge hub (only its modules are)"),
            ));
        }
        _ => return Err(not_found()),
    };
    if method != Method::POST {
        return Err(error(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    if target_device != device.as_str() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("device {target_device} is not this edge device"),
        ));
    }
    let target = ModuleId::parse(&target)
        .map_err(|e| error(StatusCode::NOT_FOUND, format!("module {target:?}: {e}")))?;
    let unauthorized = |what: &str| error(StatusCode::UNAUTHORIZED, what.to_owned());
    let caller = header("x-ms-edge-moduleid")
        .ok_or_else(|| unauthorized("x-ms-edge-moduleId is missing"))?;
    let caller = caller
        .split_once('/')
        .filter(|(d, _)| *d == device.as_str())
        .and_then(|(_, m)| ModuleId::parse(m).ok())
        .ok_or_else(|| unauthorized("x-ms-edge-moduleId must name a module of this edge device"))?;
    let token = header("authorization").ok_or_else(|| unauthorized("Authorization is missing"))?;
    Ok(Invoke {
        caller,
        target,
        token,
    })
}

/// The body of a call: method name, payload, response timeout.
pub fn parse_body(body: &[u8]) -> Result<(String, Value, Duration), HttpError> {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, m);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let name = value
        .get("methodName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("methodName is missing".into()))?
        .to_owned();
    let timeout = match value.get("responseTimeoutInSeconds") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS,
        Some(t) => t
            .as_u64()
            .filter(|t| (1..=MAX_TIMEOUT_SECS).contains(t))
            .ok_or_else(|| {
                bad(format!(
                    "responseTimeoutInSeconds must be 1 to {MAX_TIMEOUT_SECS}"
                ))
            })?,
    };
    let payload = value.get("payload").cloned().unwrap_or(Value::Null);
    Ok((name, payload, Duration::from_secs(timeout)))
}

async fn call(shared: &Shared, request: Request<Incoming>) -> Result<Value, HttpError> {
    let headers = request.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let invoke = parse_invoke(
        request.method(),
        request.uri().path(),
        header,
        &shared.device,
    )?;
    verify_token(
        &invoke.token,
        &shared.device,
        &invoke.caller,
        &shared.hub_hostname,
        shared.keys.as_ref(),
        SystemTime::now(),
    )
    .map_err(|_| {
        error(
            StatusCode::UNAUTHORIZED,
            format!("the token does not authenticate module {}", invoke.caller),
        )
    })?;
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request is over the 128 KB method limit",
            )
        })?
        .to_bytes();
    let (name, payload, timeout) = parse_body(&body)?;
    let client_id = format!("{}/{}", shared.device, invoke.target);
    let (status, answer) = shared
        .methods
        .invoke(&shared.server, &client_id, &name, &payload, timeout)
        .await
        .map_err(|e| {
            error(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY),
                e.message,
            )
        })?;
    tracing::debug!(caller = %invoke.caller, target = %invoke.target, method = name, status, "module method call");
    Ok(json!({"status": status, "payload": answer}))
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// Serves one HTTPS connection from `peer`.
pub async fn serve<S>(stream: S, shared: Weak<Shared>, peer: PeerInfo)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: Request<Incoming>| {
        let shared = shared.clone();
        let peer = peer.clone();
        async move {
            let Some(shared) = shared.upgrade() else {
                return Ok::<_, Infallible>(respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"message": "edge hub stopping"}),
                ));
            };
            if request.uri().path() == websocket::PATH {
                let response = match websocket::upgrade(&mut request, &shared.server, peer) {
                    Ok(switching) => switching.map(|()| Full::new(Bytes::new())),
                    Err(e) => respond(StatusCode::BAD_REQUEST, &json!({"message": e.to_string()})),
                };
                return Ok(response);
            }
            let response = match call(&shared, request).await {
                Ok(answer) => respond(StatusCode::OK, &answer),
                Err(e) => respond(e.status, &json!({"message": e.message})),
            };
            Ok(response)
        }
    });
    if let Err(e) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(error = %e, "edge hub HTTPS connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceId {
        DeviceId::parse("edge").unwrap()
    }

    fn headers(
        caller: Option<&'static str>,
        token: Option<&'static str>,
    ) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            "x-ms-edge-moduleid" => caller.map(str::to_owned),
            "authorization" => token.map(str::to_owned),
            _ => None,
        }
    }

    #[test]
    fn a_call_names_caller_target_and_token() {
        let invoke = parse_invoke(
            &Method::POST,
            "/twins/edge/modules/%24edgeAgent/methods",
            headers(Some("edge/caller"), Some("SharedAccessSignature sr=x")),
            &device(),
        )
        .unwrap();
        assert_eq!(invoke.caller.as_str(), "caller");
        assert_eq!(invoke.target.as_str(), "$edgeAgent");
        assert_eq!(invoke.token, "SharedAccessSignature sr=x");
    }

    #[test]
    fn bad_calls_get_clear_statuses() {
        let ok = || headers(Some("edge/caller"), Some("t"));
        let cases = [
            (
                Method::POST,
                "/twins/other/modules/m/methods",
                ok(),
                StatusCode::NOT_FOUND,
            ),
            (
                Method::POST,
                "/twins/edge/methods",
                ok(),
                StatusCode::NOT_FOUND,
            ),
            (Method::POST, "/devices/edge", ok(), StatusCode::NOT_FOUND),
            (
                Method::GET,
                "/twins/edge/modules/m/methods",
                ok(),
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (
                Method::POST,
                "/twins/edge/modules/m/methods",
                headers(None, Some("t")),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Method::POST,
                "/twins/edge/modules/m/methods",
                headers(Some("other/caller"), Some("t")),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Method::POST,
                "/twins/edge/modules/m/methods",
                headers(Some("edge/caller"), None),
                StatusCode::UNAUTHORIZED,
            ),
        ];
        for (method, path, header, status) in cases {
            let got = parse_invoke(&method, path, header, &device()).unwrap_err();
            assert_eq!(got.status, status, "{method} {path}: {}", got.message);
        }
    }

    #[test]
    fn bodies_are_checked() {
        let (name, payload, timeout) = parse_body(br#"{"methodName":"m","payload":{"a":1},"responseTimeoutInSeconds":5,"connectTimeoutInSeconds":3}"#).unwrap();
        assert_eq!(
            (name.as_str(), payload, timeout),
            ("m", json!({"a": 1}), Duration::from_secs(5))
        );
        let (_, payload, timeout) = parse_body(br#"{"methodName":"m"}"#).unwrap();
        assert_eq!((payload, timeout), (Value::Null, Duration::from_secs(30)));
        for bad in [
            &b"{"[..],
            br#"{"payload":1}"#,
            br#"{"methodName":"m","responseTimeoutInSeconds":0}"#,
            br#"{"methodName":"m","responseTimeoutInSeconds":"5"}"#,
        ] {
            assert_eq!(parse_body(bad).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
    }
}
