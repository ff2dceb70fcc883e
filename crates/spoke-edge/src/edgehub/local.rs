//! Local publish/subscribe on custom topics: the local broker Azure IoT Edge users asked for
//! (Azure/iotedge#6245, #5789), authorized with the policy format of Azure IoT Edge 1.2's MQTT
//! broker (`$edgeHub` `mqttBroker.authorizations`, schema 1.2 and later,
//! `spoke_core::manifest::broker`).
//!
//! A custom topic is any topic outside IoT Hub's: not `devices/...` and not `$iothub/...`.
//! Modules publish and subscribe there as on any MQTT broker (QoS 0 and 1, no retained
//! messages, no persistence: delivery is to the sessions subscribed at that moment, as with
//! mosquitto without persistence). IoT Hub topics keep their fixed rules (a module uses its
//! own) whatever the policy says.
//!
//! Without a policy (schemas 1.0/1.1, or no `mqttBroker`), every module may connect and no
//! custom topic may be used. With one, connecting also needs an `mqtt:connect` grant, as in
//! Azure; publishing needs `mqtt:publish` on a filter matching the topic; subscribing needs
//! `mqtt:subscribe` on a filter covering the requested one.

use spoke_core::manifest::{BrokerPolicy, Client, Operation};
use spoke_mqtt::codec::Publish;
use spoke_mqtt::server::PublishError;
use spoke_mqtt::topic;

use super::Shared;
use super::hooks::ModuleClient;

/// Whether `topic` (a name or a filter) is a custom topic rather than one of IoT Hub's.
pub fn is_custom(topic: &str) -> bool {
    !(topic.starts_with("devices/") || topic.starts_with("$iothub/"))
}

fn allows(shared: &Shared, client: &ModuleClient, op: Operation, resource: Option<&str>) -> bool {
    let routing = shared.router.routing();
    let Some(policy) = routing.broker.as_ref() else {
        return op == Operation::Connect;
    };
    decide(policy, shared, client, op, resource)
}

fn decide(
    policy: &BrokerPolicy,
    shared: &Shared,
    client: &ModuleClient,
    op: Operation,
    resource: Option<&str>,
) -> bool {
    let subject = Client::from(&client.identity);
    let covers: fn(&str, &str) -> bool = match op {
        Operation::Subscribe => topic::covers,
        Operation::Connect | Operation::Publish => topic::matches,
    };
    let device = shared.device.as_str();
    policy.allows(&subject, device, &shared.hub_hostname, op, resource, covers)
}

/// Whether `client` may connect.
pub fn may_connect(shared: &Shared, client: &ModuleClient) -> bool {
    allows(shared, client, Operation::Connect, None)
}

/// Whether `client` may subscribe to custom filter `filter`.
pub fn may_subscribe(shared: &Shared, client: &ModuleClient, filter: &str) -> bool {
    allows(shared, client, Operation::Subscribe, Some(filter))
}

/// Delivers a PUBLISH on a custom topic to the sessions subscribed to it, if the policy
/// allows `client` to publish there (otherwise its connection is closed, as for any forbidden
/// topic).
pub fn publish(
    shared: &Shared,
    client: &ModuleClient,
    publish: &Publish,
) -> Result<(), PublishError> {
    if !allows(shared, client, Operation::Publish, Some(&publish.topic)) {
        return Err(PublishError::Forbidden(format!(
            "{} may not publish on {:?} (mqttBroker policy)",
            client.identity, publish.topic
        )));
    }
    let receivers = shared.server.publish_to_subscribers(
        &publish.topic,
        &publish.payload,
        publish.qos_pid.qos(),
    );
    shared.metrics.local(receivers);
    Ok(())
}
