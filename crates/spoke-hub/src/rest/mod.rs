//! The HTTPS API: IoT Hub's service REST API (spec §5), Spoke's own endpoints (telemetry
//! stream, C2D send), and MQTT over WebSocket at `/$iothub/websocket`.
//!
//! Handlers parse and authorize, then call the component that owns the state; they hold none.

mod auth;
mod body;
mod c2d;
mod devices;
pub(crate) mod error;
mod events;
mod methods;
mod query;
mod twins;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post, put};

pub use auth::{authorize, authorize_device};
pub use error::ApiError;

use crate::hub::Hub;

/// All routes of the HTTPS listener.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/devices", get(devices::list_devices))
        .route(
            "/devices/{id}",
            put(devices::put_device)
                .get(devices::get_device)
                .delete(devices::delete_device),
        )
        .route("/devices/query", post(query::query))
        .route("/devices/{id}/modules", get(devices::list_modules))
        .route(
            "/devices/{id}/modules/{mid}",
            put(devices::put_module)
                .get(devices::get_module)
                .delete(devices::delete_module),
        )
        .route("/devices/{id}/commands", delete(c2d::purge))
        .route(
            "/devices/{id}/applyConfigurationContent",
            post(devices::apply_configuration),
        )
        .route("/devices/{id}/messages/deviceBound", post(c2d::send))
        .route(
            "/twins/{id}",
            get(twins::get_device_twin)
                .patch(twins::patch_device_twin)
                .put(twins::put_device_twin),
        )
        .route("/twins/{id}/methods", post(methods::invoke_device))
        .route(
            "/twins/{id}/modules/{mid}",
            get(twins::get_module_twin)
                .patch(twins::patch_module_twin)
                .put(twins::put_module_twin),
        )
        .route(
            "/twins/{id}/modules/{mid}/methods",
            post(methods::invoke_module),
        )
        .route("/statistics/devices", get(devices::device_statistics))
        .route("/statistics/service", get(devices::service_statistics))
        .route(
            "/messages/serviceBound/feedback",
            get(c2d::receive_feedback),
        )
        .route(
            "/messages/serviceBound/feedback/{lock}",
            delete(c2d::complete_feedback),
        )
        .route(
            "/messages/serviceBound/feedback/{lock}/abandon",
            post(c2d::abandon_feedback),
        )
        .route("/events", get(events::stream_events))
        .route(
            spoke_mqtt::websocket::PATH,
            get(crate::mqtt::websocket::upgrade),
        )
        .with_state(hub)
}
