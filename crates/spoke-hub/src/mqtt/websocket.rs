//! MQTT over WebSocket at `/$iothub/websocket` (subprotocol `mqtt`, spec §3.1), served by
//! [`spoke_mqtt::websocket`] on the REST router's connections.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse as _, Response};
use spoke_mqtt::server::PeerInfo;

use crate::hub::Hub;
use crate::rest::error::ApiError;

/// Upgrades the request and serves MQTT over the WebSocket.
pub async fn upgrade(
    State(hub): State<Arc<Hub>>,
    Extension(peer): Extension<PeerInfo>,
    mut request: Request,
) -> Response {
    match spoke_mqtt::websocket::upgrade(&mut request, hub.mqtt(), peer) {
        Ok(response) => response.map(|()| Body::empty()),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}
