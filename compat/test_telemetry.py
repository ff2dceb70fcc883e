"""Device-to-cloud telemetry from azure-iot-device, seen through `spoke monitor-events`.

Spec §3.5 (topic and property bag; keys arrive percent-encoded, pitfall 5) and the
monitor-events JSON shape of shared/ARCHITECTURE.md (az `--props all`).
"""

from __future__ import annotations

import json
import uuid

from azure.iot.device import Message

from helpers import app_props, system_props


def test_server_verification_cert_connect(devices, clients):
    client = clients.device(devices.create("tls"))
    assert client.connected


def test_custom_and_system_properties(devices, clients, spoke, since):
    device = devices.create("tel")
    client = clients.device(device)

    body = {"temperature": 21.5, "unit": "C"}
    msg = Message(json.dumps(body))
    msg.message_id = "mid-" + uuid.uuid4().hex
    msg.correlation_id = "cid-1"
    msg.content_type = "application/json"
    msg.content_encoding = "utf-8"
    custom = {"alert": "true", "prop a": "v/1&x=y", "näme": "välue %24"}
    msg.custom_properties = dict(custom)
    client.send_message(msg)

    event = spoke.events_by_message_id(device.device_id, since, [msg.message_id])[msg.message_id]

    assert event["origin"] == device.device_id
    assert event.get("module", "") == ""
    system = system_props(event)
    assert system["message_id"] == msg.message_id
    assert system["correlation_id"] == "cid-1"
    assert system["content_type"] == "application/json"
    assert system["content_encoding"] == "utf-8"
    assert app_props(event) == custom
    annotations = event["annotations"]
    assert annotations["iothub-connection-device-id"] == device.device_id
    assert annotations["iothub-message-source"] == "Telemetry"
    assert "iothub-enqueuedtime" in annotations
    assert "iothub-connection-auth-method" in annotations
    assert event["payload"] == body


def test_messages_in_order_with_and_without_properties(devices, clients, spoke, since):
    device = devices.create("order")
    client = clients.device(device)
    ids = []
    for i in range(5):
        msg = Message(f"plain text {i}")
        msg.message_id = f"m{i}-{uuid.uuid4().hex[:8]}"
        ids.append(msg.message_id)
        client.send_message(msg)
    # A message with no properties at all: topic ends in `/messages/events/` (spec §3.5).
    client.send_message("no properties")

    events = spoke.replay_events(
        device.device_id, since, lambda evs: any(e["payload"] == "no properties" for e in evs)
    )
    got = [system_props(e).get("message_id") for e in events if system_props(e).get("message_id")]
    assert got == ids
    assert [e["payload"] for e in events[: len(ids)]] == [f"plain text {i}" for i in range(5)]
    bare = next(e for e in events if e["payload"] == "no properties")
    assert app_props(bare) == {}


def test_large_message_under_limit(devices, clients, spoke, since):
    device = devices.create("large")
    client = clients.device(device)
    text = "x" * (128 * 1024)
    msg = Message(text)
    msg.message_id = "large-" + uuid.uuid4().hex
    client.send_message(msg)
    event = spoke.events_by_message_id(device.device_id, since, [msg.message_id])[msg.message_id]
    assert event["payload"] == text
