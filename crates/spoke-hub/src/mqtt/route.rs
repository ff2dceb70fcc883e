//! Where the hub sends an identity its twin and method traffic: to the identity's own
//! connection, or, for a module that has none, to its IoT Edge device's connection on the
//! module-scoped topic (`$iothub/modules/{m}/...`, a Spoke extension, `docs/protocol.md`):
//! the edge hub's one upstream link carries all its modules.

use bytes::Bytes;
use spoke_core::ids::Identity;
use spoke_core::topic;
use spoke_mqtt::codec::QoS;
use spoke_mqtt::server::{DeliverError, Delivery};

use super::MqttServer;

/// The connection (client id) and topic that reach `identity` with `topic` (an `$iothub/...`
/// topic); `None` when no connection is subscribed to it.
pub fn target(server: &MqttServer, identity: &Identity, topic: String) -> Option<(String, String)> {
    let own = identity.client_id();
    if server.is_subscribed(&own, &topic) {
        return Some((own, topic));
    }
    let module = identity.module.as_ref()?;
    let edge = identity.device.as_str();
    let scoped = topic::module_scoped(module, &topic);
    server
        .is_subscribed(edge, &scoped)
        .then(|| (edge.to_owned(), scoped))
}

/// Sends `topic` to `identity` through [`target`].
pub fn publish(
    server: &MqttServer,
    identity: &Identity,
    topic: String,
    payload: Bytes,
    qos: QoS,
) -> Result<Delivery, DeliverError> {
    let (client_id, topic) = target(server, identity, topic).ok_or(DeliverError::NotSubscribed)?;
    server.publish(&client_id, topic, payload, qos)
}

/// Whether `identity` is connected: its own connection, or for a module, its IoT Edge
/// device's connection subscribed to the module's method requests (which the edge hub does
/// while the module is connected to it).
pub fn connected(server: &MqttServer, identity: &Identity) -> bool {
    if server.is_connected(&identity.client_id()) {
        return true;
    }
    let Some(module) = &identity.module else {
        return false;
    };
    let edge = identity.device.as_str();
    server.is_connected(edge)
        && server.is_subscribed(
            edge,
            &topic::module_scoped(module, &topic::method_request("ping", "0")),
        )
}
