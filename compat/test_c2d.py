"""Cloud-to-device messages: `spoke c2d send` -> per-device queue -> MQTT devicebound.

Spec §3.6: topic `devices/{id}/messages/devicebound/{property bag}`; the SDK maps
`$.mid`, `$.cid`, ... to system fields and everything else to custom_properties.
(The service SDK's send_c2d_message uses AMQP on 5671, a later issue; the CLI is
the C2D entry point here.)
"""

from __future__ import annotations

import uuid

from helpers import WAIT_S, receive_c2d


def _assert_no_encoded_keys(props: dict) -> None:
    for key in props:
        assert not key.startswith(("$", "%24")), f"system/encoded key leaked into custom properties: {key!r}"


def test_c2d_with_properties(devices, clients, spoke):
    device = devices.create("c2d")
    client = clients.device(device)
    inbox = receive_c2d(client)  # returns once subscribed

    message_id = "c2d-" + uuid.uuid4().hex
    props = {"color": "blue green", "path": "a/b&c=d", "pct": "100%"}
    spoke.c2d_send(device.device_id, "hello device", props, message_id=message_id)

    msg = inbox.get(timeout=WAIT_S)
    assert msg.data == b"hello device"
    assert msg.message_id == message_id
    for key, value in props.items():
        assert msg.custom_properties.get(key) == value, msg.custom_properties
    _assert_no_encoded_keys(msg.custom_properties)


def test_c2d_order_and_queue_while_offline(devices, clients, spoke):
    device = devices.create("c2dq")
    client = clients.device(device)
    inbox = receive_c2d(client)

    spoke.c2d_send(device.device_id, "online-1", message_id="o1")
    assert inbox.get(timeout=WAIT_S).data == b"online-1"

    # Offline: messages wait in the device's queue (spec §3.6; ARCHITECTURE "C2D").
    client.disconnect()
    for i in range(3):
        spoke.c2d_send(device.device_id, f"queued-{i}", {"i": str(i)}, message_id=f"q{i}")
    # Reconnect without re-subscribing (the SDK never re-subscribes, pitfall 4).
    client.connect()
    got = [inbox.get(timeout=WAIT_S) for _ in range(3)]
    assert [m.data for m in got] == [b"queued-0", b"queued-1", b"queued-2"]
    assert [m.custom_properties["i"] for m in got] == ["0", "1", "2"]
    assert [m.message_id for m in got] == ["q0", "q1", "q2"]


def test_c2d_queued_before_first_subscribe(devices, clients, spoke):
    device = devices.create("c2dfirst")
    spoke.c2d_send(device.device_id, "waiting", message_id="w1")
    client = clients.device(device)
    inbox = receive_c2d(client)
    msg = inbox.get(timeout=WAIT_S)
    assert msg.data == b"waiting" and msg.message_id == "w1"
