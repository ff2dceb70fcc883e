//! The MQTT server as the registry and the C2D queue see it: carries out registry effects
//! (disconnects, desired-property notifications) and sends C2D messages.
//!
//! The link is created before the server (the registry and the C2D actor need it to start)
//! and bound to the server once that exists.

use std::sync::OnceLock;

use bytes::Bytes;
use spoke_core::ids::DeviceId;
use spoke_core::topic;
use spoke_mqtt::codec::QoS;

use super::{MqttServer, route};
use crate::c2d::{Ack, Transport};
use crate::registry::{Effect, EffectSink};

/// A late-bound handle to the MQTT server.
#[derive(Default)]
pub struct MqttLink {
    server: OnceLock<MqttServer>,
}

impl MqttLink {
    /// Binds the server (once).
    pub fn bind(&self, server: MqttServer) {
        let _ = self.server.set(server);
    }

    /// The server, once bound.
    pub fn get(&self) -> Option<&MqttServer> {
        self.server.get()
    }
}

impl EffectSink for MqttLink {
    fn apply(&self, effects: Vec<Effect>) {
        let Some(server) = self.get() else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::Disconnect(identity) => {
                    server.disconnect(&identity.client_id());
                }
                Effect::Forget(identity) => {
                    let server = server.clone();
                    tokio::spawn(async move {
                        if let Err(e) = server.remove_session(&identity.client_id()).await {
                            tracing::warn!(%identity, error = %e, "cannot forget the MQTT session");
                        }
                    });
                }
                Effect::DesiredPatch {
                    identity,
                    version,
                    body,
                } => {
                    let result = route::publish(
                        server,
                        &identity,
                        topic::desired_patch(version),
                        Bytes::from(body.to_string()),
                        QoS::AtLeastOnce,
                    );
                    if let Err(e) = result {
                        tracing::debug!(%identity, error = %e, "desired-properties notification not sent");
                    }
                }
            }
        }
    }
}

impl Transport for MqttLink {
    fn send(&self, device: &DeviceId, topic: String, payload: Bytes) -> Option<Ack> {
        let server = self.get()?;
        if !server.is_connected(device.as_str()) {
            return None;
        }
        let delivery = server
            .publish(device.as_str(), topic, payload, QoS::AtLeastOnce)
            .ok()?;
        Some(Box::pin(async move { delivery.await.is_ok() }))
    }
}
