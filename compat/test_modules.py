"""Module identities: connect as `{device}/{module}`, telemetry, methods, module twin.

Spec §1 (module connection string), §3.2 (client id `dev/mod`, username
`host/dev/mod/?...`, `sr=host%2Fdevices%2Fdev%2Fmodules%2Fmod`), §3.5 (module
telemetry topic), §5.2 (module twin and method REST calls).
"""

from __future__ import annotations

import json
import uuid

from azure.iot.device import Message
from azure.iot.hub.models import Twin, TwinProperties

from helpers import WAIT_S, app_props, get_matching, invoke, receive_desired, serve_methods, system_props


def test_module_connect_and_telemetry(devices, clients, spoke, since):
    device = devices.create("modtel")
    module = devices.create_module(device)
    client = clients.device(module)
    assert client.connected

    msg = Message(json.dumps({"from": "module"}))
    msg.message_id = "modmsg-" + uuid.uuid4().hex
    msg.content_type = "application/json"
    msg.content_encoding = "utf-8"
    msg.custom_properties["k"] = "v"
    client.send_message(msg)

    event = spoke.events_by_message_id(device.device_id, since, [msg.message_id])[msg.message_id]
    assert event["origin"] == device.device_id
    assert event["module"] == module.module_id
    assert event["annotations"]["iothub-connection-device-id"] == device.device_id
    assert event["annotations"]["iothub-connection-module-id"] == module.module_id
    assert system_props(event)["message_id"] == msg.message_id
    assert app_props(event) == {"k": "v"}
    assert event["payload"] == {"from": "module"}


def test_device_and_module_connected_at_once(devices, clients):
    device = devices.create("both")
    module = devices.create_module(device)
    device_client = clients.device(device)
    module_client = clients.device(module)
    assert device_client.connected and module_client.connected
    device_client.send_message("from device")
    module_client.send_message("from module")
    assert device_client.connected and module_client.connected


def test_module_method(registry, devices, clients):
    device = devices.create("modmeth")
    module = devices.create_module(device)
    client = clients.device(module)
    requests_q = serve_methods(client, 299, {"module": True})
    result = invoke(registry, device.device_id, "mod_method", {"x": 1}, module_id=module.module_id)
    assert result.status == 299
    assert result.payload == {"module": True}
    assert requests_q.get(timeout=WAIT_S).payload == {"x": 1}


def test_module_twin(registry, devices, clients):
    device = devices.create("modtwin")
    module = devices.create_module(device)
    client = clients.device(module)
    patches = receive_desired(client)

    registry.update_module_twin(
        device.device_id, module.module_id, Twin(properties=TwinProperties(desired={"rate": 5})), "*"
    )
    patch = get_matching(patches, lambda p: "rate" in p)
    assert patch["rate"] == 5 and isinstance(patch["$version"], int)

    client.patch_twin_reported_properties({"rate_applied": 5})
    twin = registry.get_module_twin(device.device_id, module.module_id)
    assert twin.module_id == module.module_id
    assert twin.properties.reported["rate_applied"] == 5
    assert twin.properties.desired["rate"] == 5
    # The device twin is a separate document.
    assert "rate" not in registry.get_twin(device.device_id).properties.desired
