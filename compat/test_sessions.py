"""Persistent MQTT sessions: reconnects that do not re-subscribe (spec §0 pitfall 4).

The device SDK sends CleanSession=0 and never repeats its SUBSCRIBEs after a
reconnect: not after disconnect()/connect(), not after SAS renewal (a DISCONNECT
and a new CONNECT, spec §2.2), not after the hub restarts. Methods and C2D must
keep working in all three cases.
"""

from __future__ import annotations

import os
import uuid

import pytest
from azure.iot.device import Message
from azure.iot.hub.models import Twin, TwinProperties

from helpers import (
    WAIT_S,
    ClientFactory,
    ConnectionWatcher,
    DeviceFactory,
    SpokeCli,
    get_matching,
    invoke,
    now_ms,
    receive_c2d,
    serve_methods,
)
from rawmqtt import PUBLISH, RawMqtt, puback_packet


def _assert_methods_and_c2d(registry, spoke, device_id, methods_q, inbox, tag: str) -> None:
    result = invoke(registry, device_id, "after_" + tag, {"tag": tag}, connect_timeout=30)
    assert result.status == 299
    assert get_matching(methods_q, lambda r: r.name == "after_" + tag).payload == {"tag": tag}
    spoke.c2d_send(device_id, "c2d-" + tag, message_id="m-" + tag)
    assert get_matching(inbox, lambda m: m.message_id == "m-" + tag).data == ("c2d-" + tag).encode()


def test_reconnect_without_resubscribe(registry, devices, clients, spoke):
    device = devices.create("recon")
    client = clients.device(device)
    methods_q = serve_methods(client, 299, {"ok": True})
    inbox = receive_c2d(client)
    _assert_methods_and_c2d(registry, spoke, device.device_id, methods_q, inbox, "first")

    client.disconnect()
    client.connect()
    _assert_methods_and_c2d(registry, spoke, device.device_id, methods_q, inbox, "reconnect")


def test_sas_renewal_keeps_session(registry, devices, clients, spoke, since):
    """sastoken_ttl=130: the SDK renews at ttl-120, i.e. after ~10 s (spec §2.2)."""
    device = devices.create("sas")
    client = clients.device(device, sastoken_ttl=130)
    watcher = ConnectionWatcher(client)
    methods_q = serve_methods(client, 299, None)
    inbox = receive_c2d(client)

    watcher.wait_for(False, timeout=60)
    watcher.wait_for(True, timeout=60)
    assert client.connected

    msg = Message("after renewal")
    msg.message_id = "renewed-" + uuid.uuid4().hex
    client.send_message(msg)
    assert spoke.events_by_message_id(device.device_id, since, [msg.message_id])
    _assert_methods_and_c2d(registry, spoke, device.device_id, methods_q, inbox, "renewal")


def test_raw_client_session_present_and_kept_subscription(hub, devices, spoke):
    """A generic client with CleanSession=0: the second CONNACK has session-present=1
    and the subscription made on the first connection still delivers C2D."""
    device = devices.create("rawsess")
    topic = f"devices/{device.device_id}/messages/devicebound/#"
    with RawMqtt(hub.ip, hub.mqtt_port, str(hub.ca_file)) as first:
        assert first.connect(device.device_id, device.mqtt_username, device.sas_token()) == (False, 0)
        assert first.subscribe(1, topic) == [1]
    with RawMqtt(hub.ip, hub.mqtt_port, str(hub.ca_file)) as second:
        session_present, rc = second.connect(device.device_id, device.mqtt_username, device.sas_token())
        assert rc == 0
        assert session_present
        spoke.c2d_send(device.device_id, "kept", {"k": "v"}, message_id="raw1")
        pkt = second.read_until(PUBLISH)
        second.send(puback_packet(pkt.publish_pid()))
        assert pkt.publish_topic().startswith(f"devices/{device.device_id}/messages/devicebound/")
        assert "k=v" in pkt.publish_topic()
        assert pkt.publish_payload() == b"kept"


# -- across a hub restart (own hub, so a failure cannot take the others down) ----------


@pytest.fixture(scope="module")
def restart_hub(hub_factory):
    return hub_factory(os.environ.get("SPOKE_COMPAT_RESTART_HUB_IP", "127.0.0.22"), "restart-hub")


@pytest.fixture(scope="module")
def restart_registry(restart_hub):
    from azure.iot.hub import IoTHubRegistryManager

    return IoTHubRegistryManager.from_connection_string(restart_hub.service_connstr)


@pytest.fixture
def restart_env(restart_hub, restart_registry, bins):
    devices = DeviceFactory(restart_hub, restart_registry)
    clients = ClientFactory(restart_hub)
    yield devices, clients, SpokeCli(bins["spoke"], restart_hub)
    clients.cleanup()
    if restart_hub.running:
        devices.cleanup()


def test_hub_restart_keeps_methods_c2d_and_telemetry(restart_hub, restart_registry, restart_env):
    devices, clients, spoke = restart_env
    since = now_ms()
    device = devices.create("restart")
    client = clients.device(device, connection_retry_interval=1)
    watcher = ConnectionWatcher(client)
    methods_q = serve_methods(client, 299, {"ok": True})
    inbox = receive_c2d(client)

    # Acknowledged before the restart, so it must survive it.
    before = Message("before restart")
    before.message_id = "before-" + uuid.uuid4().hex
    client.send_message(before)

    assert restart_hub.restart() == 0, "spoke-hub must exit 0 on SIGTERM"
    watcher.wait_for(False, timeout=WAIT_S)
    watcher.wait_for(True, timeout=60)

    _assert_methods_and_c2d(restart_registry, spoke, device.device_id, methods_q, inbox, "restart")
    after = Message("after restart")
    after.message_id = "after-" + uuid.uuid4().hex
    client.send_message(after)
    events = spoke.events_by_message_id(device.device_id, since, [before.message_id, after.message_id])
    assert events[before.message_id]["payload"] == "before restart"


def test_c2d_queued_across_restart(restart_hub, restart_registry, restart_env):
    devices, clients, spoke = restart_env
    device = devices.create("restartq")
    client = clients.device(device)
    inbox = receive_c2d(client)
    client.disconnect()

    spoke.c2d_send(device.device_id, "survives", {"k": "v"}, message_id="durable-1")
    assert restart_hub.restart() == 0
    client.connect()
    msg = inbox.get(timeout=WAIT_S)
    assert msg.data == b"survives" and msg.message_id == "durable-1"
    assert msg.custom_properties.get("k") == "v"


def test_kill_9_loses_nothing_acknowledged(restart_hub, restart_registry, restart_env):
    """Everything the hub acknowledged (PUBACK, 200/204) survives SIGKILL (issue: storage)."""
    devices, clients, spoke = restart_env
    since = now_ms()
    device = devices.create("kill9")
    client = clients.device(device, connection_retry_interval=1)
    inbox = receive_c2d(client)
    sent = []
    for i in range(20):
        message = Message(f"acked-{i}")
        message.message_id = f"k9-{i}-" + uuid.uuid4().hex
        client.send_message(message)  # returns after the PUBACK
        sent.append(message.message_id)
    client.patch_twin_reported_properties({"survives": "reported"})  # returns after the 204
    restart_registry.update_twin(device.device_id, Twin(properties=TwinProperties(desired={"survives": "desired"})), "*")
    client.disconnect()
    spoke.c2d_send(device.device_id, "queued before the crash", message_id="k9-c2d")

    restart_hub.kill()
    restart_hub.start()

    events = spoke.events_by_message_id(device.device_id, since, sent)
    assert [events[m]["payload"] for m in sent] == [f"acked-{i}" for i in range(20)]
    twin = restart_registry.get_twin(device.device_id)
    assert twin.properties.desired["survives"] == "desired"
    assert twin.properties.reported["survives"] == "reported"
    client.connect()
    assert get_matching(inbox, lambda m: m.message_id == "k9-c2d").data == b"queued before the crash"
