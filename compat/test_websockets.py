"""MQTT over WebSockets: `wss://host:443/$iothub/websocket`, subprotocol `mqtt` (spec §3.1)."""

from __future__ import annotations

import uuid

from azure.iot.device import Message
from azure.iot.hub.models import Twin, TwinProperties

from helpers import WAIT_S, get_matching, invoke, receive_c2d, receive_desired, serve_methods


def test_websocket_device_full_round_trip(registry, devices, clients, spoke, since):
    device = devices.create("ws")
    client = clients.device(device, websockets=True)
    assert client.connected
    methods_q = serve_methods(client, 299, {"via": "ws"})
    inbox = receive_c2d(client)
    patches = receive_desired(client)

    msg = Message("over websockets")
    msg.message_id = "ws-" + uuid.uuid4().hex
    msg.custom_properties["transport"] = "ws"
    client.send_message(msg)
    event = spoke.events_by_message_id(device.device_id, since, [msg.message_id])[msg.message_id]
    assert event["payload"] == "over websockets"
    assert event["properties"]["application"] == {"transport": "ws"}

    result = invoke(registry, device.device_id, "ws_method", {"a": 1})
    assert (result.status, result.payload) == (299, {"via": "ws"})
    assert methods_q.get(timeout=WAIT_S).payload == {"a": 1}

    spoke.c2d_send(device.device_id, "c2d over ws", {"p": "q"}, message_id="wsc2d")
    got = inbox.get(timeout=WAIT_S)
    assert got.data == b"c2d over ws" and got.custom_properties.get("p") == "q"

    registry.update_twin(device.device_id, Twin(properties=TwinProperties(desired={"ws": True})), "*")
    assert get_matching(patches, lambda p: "ws" in p)["ws"] is True
    client.patch_twin_reported_properties({"ws_reported": 1})
    assert registry.get_twin(device.device_id).properties.reported["ws_reported"] == 1

    # Reconnect over WebSockets keeps the session too.
    client.disconnect()
    client.connect()
    result = invoke(registry, device.device_id, "ws_method_again", None)
    assert result.status == 299
