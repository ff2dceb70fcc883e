//! REST errors: an HTTP status, an IoT Hub error code and a message, rendered the way IoT Hub
//! renders them (spec §5.1): `{"Message":"ErrorCode:<code>;<message>","ExceptionMessage":...}`
//! with the `iothub-errorcode` header.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::registry::RegistryError;

/// An error answer of the REST API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// IoT Hub error code name (`DeviceNotFound`, ...).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `ArgumentInvalid`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ArgumentInvalid", message)
    }

    /// 401 with `IotHubUnauthorizedAccess`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "IotHubUnauthorizedAccess",
            message,
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        if let RegistryError::Store(source) = &e {
            tracing::error!(error = ?source, "registry storage failure");
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "Message": format!("ErrorCode:{};{}", self.code, self.message),
            "ExceptionMessage": format!("Tracking ID:{}", uuid::Uuid::new_v4().simple()),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("iothub-errorcode", HeaderValue::from_static(self.code));
        response
    }
}
