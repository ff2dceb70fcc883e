"""Service operations beyond the basic flows: disabling a connected device, statistics, C2D
purge, feedback and expiry (spec §3.6, §5.2, §5.7)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from helpers import WAIT_S, ConnectionWatcher, get_matching, receive_c2d


def test_disabling_a_device_closes_its_live_connection(registry, devices, clients):
    device = devices.create("disable")
    client = clients.device(device, connection_retry=False)
    watcher = ConnectionWatcher(client)
    current = registry.get_device(device.device_id)
    registry.update_device_with_sas(
        device.device_id, current.etag, device.primary_key, device.secondary_key, "disabled"
    )
    watcher.wait_for(False, timeout=30)
    assert not client.connected


def test_statistics(registry, devices, clients):
    device = devices.create("stats")
    devices.create("statsoff", status="disabled")
    clients.device(device)
    stats = registry.get_device_registry_statistics()
    assert stats.total_device_count >= 2
    assert stats.disabled_device_count >= 1
    assert stats.enabled_device_count + stats.disabled_device_count == stats.total_device_count
    assert registry.get_service_statistics().connected_device_count >= 1


def _send(rest, device_id: str, body: str, **headers: str):
    response = rest.request("POST", f"/devices/{device_id}/messages/deviceBound", body, headers=headers)
    assert response.status_code == 204, response.text
    return response


def test_purge_removes_pending_messages(rest, registry, devices):
    device = devices.create("purge")
    for i in range(3):
        _send(rest, device.device_id, f"m{i}")
    assert registry.get_device(device.device_id).cloud_to_device_message_count == 3
    response = rest.request("DELETE", f"/devices/{device.device_id}/commands")
    assert response.status_code == 200, response.text
    assert response.json()["totalMessagesPurged"] == 3
    assert registry.get_device(device.device_id).cloud_to_device_message_count == 0


def test_queue_limit_is_50_pending(rest, devices):
    device = devices.create("full")
    for i in range(50):
        _send(rest, device.device_id, f"m{i}")
    response = rest.request("POST", f"/devices/{device.device_id}/messages/deviceBound", "one too many")
    assert response.status_code == 403
    assert "DeviceMaximumQueueDepthExceeded" in response.json()["Message"]


def _drain_feedback(rest, wanted: str) -> dict:
    """Reads feedback batches (completing each) until a record for message `wanted` appears.

    Feedback is recorded when the hub settles the message, just after the device's PUBACK, so
    this polls the endpoint (as a feedback receiver does) until a deadline."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        response = rest.request("GET", "/messages/serviceBound/feedback")
        if response.status_code == 204:
            time.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        lock = response.headers["ETag"].strip('"')
        assert rest.request("DELETE", f"/messages/serviceBound/feedback/{lock}").status_code == 204
        for record in response.json():
            if record["originalMessageId"] == wanted:
                return record
    raise AssertionError(f"no feedback record for {wanted}")


def test_positive_feedback_after_completion(rest, devices, clients):
    device = devices.create("fb")
    client = clients.device(device)
    inbox = receive_c2d(client)
    mid = "fb-" + uuid.uuid4().hex
    _send(rest, device.device_id, "ack me", **{"iothub-messageid": mid, "iothub-ack": "full"})
    assert get_matching(inbox, lambda m: m.message_id == mid).data == b"ack me"
    record = _drain_feedback(rest, mid)
    assert record["statusCode"] == "Success"
    assert record["deviceId"] == device.device_id


def test_expired_message_is_not_delivered(rest, devices, clients):
    device = devices.create("exp")
    expired = "exp-" + uuid.uuid4().hex
    _send(rest, device.device_id, "too late",
          **{"iothub-messageid": expired, "iothub-expiry": "2000-01-01T00:00:00Z", "iothub-ack": "negative"})
    fresh = "fresh-" + uuid.uuid4().hex
    _send(rest, device.device_id, "in time", **{"iothub-messageid": fresh})
    client = clients.device(device)
    inbox = receive_c2d(client)
    first = get_matching(inbox, lambda m: True)
    assert first.message_id == fresh
    assert _drain_feedback(rest, expired)["statusCode"] == "Expired"


@pytest.mark.parametrize("ack", ["sometimes", "FULL "])
def test_invalid_ack_mode_is_400(rest, devices, ack):
    device = devices.create("badack")
    response = rest.request("POST", f"/devices/{device.device_id}/messages/deviceBound", "x",
                            headers={"iothub-ack": ack})
    assert response.status_code == 400
    assert json.loads(response.text)["Message"]
