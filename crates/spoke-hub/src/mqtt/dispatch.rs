//! Inbound PUBLISH from a device or module (spec §3.5, §3.8, §3.9): telemetry into the events
//! log, twin GET and reported PATCH, and direct-method answers. Any other topic, or another
//! identity's topic, closes the connection (as IoT Hub does) — with one Spoke addition: an
//! IoT Edge device's connection (the edge hub's upstream link) may act for its own modules,
//! sending telemetry on their events topics (stamped as coming from the module) and twin
//! requests and method answers on their module-scoped topics (`$iothub/modules/{m}/...`,
//! answered on the same scope; `docs/protocol.md`).

use bytes::Bytes;
use serde_json::Value;
use spoke_core::ids::Identity;
use spoke_core::topic::{self, DeviceTopic, TopicError};
use spoke_mqtt::codec::{Publish, QoS, Will};
use spoke_mqtt::order::Turn;
use spoke_mqtt::server::PublishError;

use super::Client;
use crate::hub::Hub;
use crate::telemetry::{self, EventHeader, MAX_MESSAGE_SIZE};

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Handles one PUBLISH; resolves once it is durably handled. Telemetry enters the events log
/// in `turn`, the PUBLISH's place in its connection's order.
pub async fn publish(
    hub: &Hub,
    client: &Client,
    publish: Publish,
    turn: Turn,
) -> Result<(), PublishError> {
    let forbidden =
        |e: TopicError| PublishError::Forbidden(format!("topic {:?}: {e}", publish.topic));
    let scope = topic::split_module_scope(&publish.topic).map_err(forbidden)?;
    let parsed = match &scope {
        Some((_, inner)) => DeviceTopic::parse(inner),
        None => DeviceTopic::parse(&publish.topic),
    }
    .map_err(forbidden)?;
    let scope = scope.map(|(module, _)| module);
    let owner = match &scope {
        Some(module) => Some(Identity::module(
            client.identity.device.clone(),
            module.clone(),
        )),
        None => parsed.identity(),
    };
    // Answers go back on the scope the request came on.
    let answer = |t: String| match &scope {
        Some(module) => topic::module_scoped(module, &t),
        None => t,
    };
    let sender = match owner {
        Some(owner) if owner != client.identity => {
            let Some(sender) = on_behalf_of(hub, client, &owner).await? else {
                no_such_module(hub, client, &owner, parsed, answer);
                return Ok(());
            };
            sender
        }
        _ => Sender::of(client),
    };
    match parsed {
        DeviceTopic::Events { bag, .. } => {
            store_event(hub, &sender, bag, publish.payload, false, turn).await
        }
        DeviceTopic::TwinGet { rid } => {
            let (status, body) = match hub.registry.device_twin_view(&sender.identity).await {
                Ok(view) => (200, Bytes::from(view.to_string())),
                Err(e) => (e.status(), error_body(&e.to_string())),
            };
            respond(
                hub,
                client,
                answer(topic::twin_response(status, &rid, None)),
                body,
            );
            Ok(())
        }
        DeviceTopic::TwinPatchReported { rid } => {
            let result = match serde_json::from_slice::<Value>(&publish.payload) {
                Ok(patch) => hub
                    .registry
                    .patch_reported(&sender.identity, &patch)
                    .await
                    .map_err(|e| (e.status(), e.to_string())),
                Err(e) => Err((400, format!("reported properties are not JSON: {e}"))),
            };
            let (t, body) = match result {
                Ok(version) => (topic::twin_response(204, &rid, Some(version)), Bytes::new()),
                Err((status, message)) => (
                    topic::twin_response(status, &rid, None),
                    error_body(&message),
                ),
            };
            respond(hub, client, answer(t), body);
            Ok(())
        }
        DeviceTopic::MethodResponse { status, rid } => {
            if !hub
                .methods
                .complete(&sender.identity, &rid, status, &publish.payload)
            {
                tracing::debug!(identity = %sender.identity, rid, "late or unknown method answer dropped");
            }
            Ok(())
        }
    }
}

fn error_body(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"Message": message}).to_string())
}

/// Sends a twin response; a client not subscribed to `$iothub/twin/res/#` gets none.
fn respond(hub: &Hub, client: &Client, topic: String, body: Bytes) {
    if let Err(e) = hub
        .mqtt()
        .publish(&client.identity.client_id(), topic, body, QoS::AtMostOnce)
    {
        tracing::debug!(identity = %client.identity, error = %e, "twin response not sent");
    }
}

/// The identity a telemetry event is stamped with.
struct Sender {
    identity: Identity,
    generation_id: String,
    auth_type: &'static str,
}

impl Sender {
    fn of(client: &Client) -> Self {
        Self {
            identity: client.identity.clone(),
            generation_id: client.generation_id.clone(),
            auth_type: client.auth_type,
        }
    }
}

/// The module `owner` when `client` is its IoT Edge device's own connection: `None` if the
/// module does not exist or is disabled. From any other connection the publish is forbidden.
async fn on_behalf_of(
    hub: &Hub,
    client: &Client,
    owner: &Identity,
) -> Result<Option<Sender>, PublishError> {
    let forbidden = || {
        PublishError::Forbidden(format!(
            "{} may not publish on {owner}'s topic",
            client.identity
        ))
    };
    let in_scope = client.iot_edge
        && client.identity.module.is_none()
        && owner.device == client.identity.device
        && owner.module.is_some();
    if !in_scope {
        return Err(forbidden());
    }
    Ok(match hub.registry.credentials(owner).await {
        Some(credentials) if credentials.enabled => Some(Sender {
            identity: owner.clone(),
            generation_id: credentials.generation_id,
            auth_type: client.auth_type,
        }),
        _ => None,
    })
}

/// An edge device's publish for `owner`, one of its modules that does not exist (any more) or
/// is disabled: twin requests are answered 404; telemetry and method answers are dropped,
/// logged. The edge device's connection stays: its other modules are not affected.
fn no_such_module(
    hub: &Hub,
    client: &Client,
    owner: &Identity,
    parsed: DeviceTopic,
    answer: impl Fn(String) -> String,
) {
    let message = format!("module {owner} does not exist or is disabled");
    match parsed {
        DeviceTopic::TwinGet { rid } | DeviceTopic::TwinPatchReported { rid } => {
            let t = answer(topic::twin_response(404, &rid, None));
            respond(hub, client, t, error_body(&message));
        }
        DeviceTopic::Events { .. } | DeviceTopic::MethodResponse { .. } => {
            tracing::warn!(edge = %client.identity, "{message}: its message is dropped");
        }
    }
}

/// Appends a telemetry event in `turn`; resolves when it is durable.
async fn store_event(
    hub: &Hub,
    sender: &Sender,
    bag: String,
    body: Bytes,
    will: bool,
    mut turn: Turn,
) -> Result<(), PublishError> {
    if body.len() > MAX_MESSAGE_SIZE {
        return Err(PublishError::Forbidden(format!(
            "message of {} bytes is over the 256 KB limit",
            body.len()
        )));
    }
    let enqueued_ms = now_ms();
    let header = EventHeader {
        device_id: sender.identity.device.to_string(),
        module_id: sender.identity.module.as_ref().map(ToString::to_string),
        generation_id: sender.generation_id.clone(),
        auth_type: sender.auth_type.to_owned(),
        enqueued_ms,
        bag,
        will,
    };
    let failed = |e| {
        tracing::error!(error = %e, "cannot store telemetry");
        PublishError::Unavailable("events log failure".into())
    };
    turn.wait().await;
    let durable = hub
        .events
        .submit(telemetry::encode(&header, &body), enqueued_ms)
        .await
        .map_err(failed)?;
    turn.release();
    durable.await.map(|_| ()).map_err(failed)
}

/// Stores a lost connection's Will message as telemetry, if it names the client's own
/// telemetry topic (IoT Hub marks it `iothub-MessageType=Will`).
pub async fn store_will(hub: &Hub, client: &Client, will: Will) {
    match DeviceTopic::parse(&will.topic) {
        Ok(DeviceTopic::Events {
            device,
            module,
            bag,
        }) if device == client.identity.device && module == client.identity.module => {
            // After everything the connection sent.
            let turn = client.order.take();
            let sender = Sender::of(client);
            if let Err(e) = store_event(hub, &sender, bag, will.payload, true, turn).await {
                tracing::warn!(identity = %client.identity, error = %e, "will message not stored");
            }
        }
        _ => {
            tracing::debug!(identity = %client.identity, topic = will.topic, "will ignored: not a telemetry topic");
        }
    }
}
