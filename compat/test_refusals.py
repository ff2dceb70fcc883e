"""MQTT refusals: each is a clear error with no effect on other clients.

- bad credentials (wrong key, expired token, another device's token, disabled or
  unknown device): CONNACK return code 4 or 5, then the connection is closed
  (MQTT 3.1.1 §3.2.2.3; spec §3.2: the SDK maps 4/5 to CredentialError);
- another device's topic, QoS 2, a message over 256 KB (spec §10): connection closed, nothing
  stored, no PUBACK;
- malformed packets (raw bytes after the TLS handshake): connection closed.

After every test the module's healthy device must still answer a direct method
and get its telemetry acknowledged (autouse fixture below).
"""

from __future__ import annotations

import random
import socket
import time
import uuid

import pytest
from azure.iot.device import Message
from azure.iot.device.exceptions import CredentialError

from helpers import WAIT_S, Identity, device_sas_token, random_key, receive_c2d, system_props
from rawmqtt import (
    CONNACK,
    Closed,
    CONNECT,
    PUBACK,
    SUBSCRIBE,
    RawMqtt,
    connect_packet,
    encode_str,
    packet,
    publish_packet,
)


@pytest.fixture(autouse=True)
def other_clients_unaffected(healthy):
    yield
    healthy.check()


def _raw(hub) -> RawMqtt:
    return RawMqtt(hub.ip, hub.mqtt_port, str(hub.ca_file))


def _connected_raw(hub, device: Identity) -> RawMqtt:
    conn = _raw(hub)
    assert conn.connect(device.device_id, device.mqtt_username, device.sas_token())[1] == 0
    return conn


# -- CONNECT refusals --------------------------------------------------------------------


def test_wrong_key_sdk_credential_error(hub, devices, clients):
    device = devices.create("wrongkey")
    impostor = Identity(hub.hostname, device.device_id, random_key(), random_key())
    client = clients.device(impostor, connect=False, connection_retry=False)
    with pytest.raises(CredentialError):
        client.connect()
    assert not client.connected


def test_disabled_device_sdk_credential_error(devices, clients):
    device = devices.create("disabled", status="disabled")
    client = clients.device(device, connect=False, connection_retry=False)
    with pytest.raises(CredentialError):
        client.connect()


def _credentials(case: str, hub, devices) -> tuple[str, str, str | None]:
    """(client_id, username, password) for one refusal case."""
    if case == "disabled":
        d = devices.create("rdis", status="disabled")
        return d.device_id, d.mqtt_username, d.sas_token()
    if case == "unknown-device":
        d = Identity(hub.hostname, "compat-unknown-" + uuid.uuid4().hex[:8], random_key(), random_key())
        return d.device_id, d.mqtt_username, d.sas_token()
    d = devices.create("rref")
    if case == "wrong-key":
        return d.device_id, d.mqtt_username, device_sas_token(hub.hostname, d.device_id, random_key())
    if case == "expired-token":
        return d.device_id, d.mqtt_username, d.sas_token(expiry=int(time.time()) - 60)
    if case == "other-device-token":
        other = devices.create("rother")
        return d.device_id, d.mqtt_username, other.sas_token()
    if case == "username-names-other-device":
        other = devices.create("rother")
        return d.device_id, other.mqtt_username, d.sas_token()
    if case == "no-password":
        return d.device_id, d.mqtt_username, None
    if case == "not-a-token":
        return d.device_id, d.mqtt_username, "hunter2"
    if case == "tampered-expiry":
        token = d.sas_token()
        se = int(token.rsplit("&se=", 1)[1])
        return d.device_id, d.mqtt_username, token.replace(f"&se={se}", f"&se={se + 3600}")
    raise ValueError(case)


@pytest.mark.parametrize(
    "case",
    [
        "wrong-key",
        "expired-token",
        "other-device-token",
        "username-names-other-device",
        "disabled",
        "unknown-device",
        "no-password",
        "not-a-token",
        "tampered-expiry",
    ],
)
def test_connect_refused_with_connack_4_or_5(hub, devices, case):
    client_id, username, password = _credentials(case, hub, devices)
    with _raw(hub) as conn:
        session_present, rc = conn.connect(client_id, username, password)
        assert rc in (4, 5), f"CONNACK return code {rc} for {case}"
        assert not session_present  # §3.2.2.2: 0 with a non-zero return code
        conn.wait_closed()


# -- topic and size refusals -------------------------------------------------------------


@pytest.mark.parametrize("target", ["other-device", "other-device-module", "arbitrary"])
def test_publish_to_foreign_topic_closes_connection(hub, devices, clients, spoke, since, target):
    me, victim = devices.create("me"), devices.create("victim")
    topic = {
        "other-device": f"devices/{victim.device_id}/messages/events/%24.mid=forged",
        "other-device-module": f"devices/{victim.device_id}/modules/m1/messages/events/%24.mid=forged",
        "arbitrary": "some/random/topic",
    }[target]
    with _connected_raw(hub, me) as conn:
        conn.publish(topic, b"forged", pid=7)
        packets = conn.wait_closed()
    assert not [p for p in packets if p.ptype == PUBACK], "a forged PUBLISH was acknowledged"

    # Nothing stored for the victim: replay up to a later, legitimate marker.
    victim_client = clients.device(victim)
    marker = Message("marker")
    marker.message_id = "marker-" + uuid.uuid4().hex
    victim_client.send_message(marker)
    before = spoke.events_before_marker(victim.device_id, since, marker.message_id)
    assert not [e for e in before if system_props(e).get("message_id") == "forged"]


def test_subscribe_to_other_devices_c2d_is_refused(hub, devices, clients, spoke):
    me, victim = devices.create("me"), devices.create("victim")
    with _connected_raw(hub, me) as conn:
        try:
            codes = conn.subscribe(5, f"devices/{victim.device_id}/messages/devicebound/#")
        except Closed:
            codes = None  # closing the connection is the other valid refusal
        assert codes in (None, [0x80]), f"SUBACK {codes}: the subscription was granted"
        spoke.c2d_send(victim.device_id, "for the victim only", message_id="victim-1")
    # The victim still gets its message: the refused subscriber did not consume it.
    inbox = receive_c2d(clients.device(victim))
    msg = inbox.get(timeout=WAIT_S)
    assert msg.message_id == "victim-1"


def test_qos2_publish_closes_connection(hub, devices):
    me = devices.create("qos2")
    with _connected_raw(hub, me) as conn:
        conn.publish(f"devices/{me.device_id}/messages/events/", b"qos2", pid=3, qos=2)
        conn.wait_closed()


def test_oversize_message_closes_connection(hub, devices, clients, spoke, since):
    me = devices.create("big")
    topic = f"devices/{me.device_id}/messages/events/"
    with _connected_raw(hub, me) as conn:
        # Control: 250 KB is within the 256 KB limit (spec §10) and acknowledged.
        conn.publish(topic + "%24.mid=under", b"u" * (250 * 1024), pid=1)
        assert conn.read_until(PUBACK).pid == 1
        conn.publish(topic + "%24.mid=over", b"o" * (256 * 1024 + 4096), pid=2)
        packets = conn.wait_closed()
    assert not [p for p in packets if p.ptype == PUBACK and p.pid == 2]

    client = clients.device(me)
    marker = Message("marker")
    marker.message_id = "marker-" + uuid.uuid4().hex
    client.send_message(marker)
    ids = [system_props(e).get("message_id") for e in spoke.events_before_marker(me.device_id, since, marker.message_id)]
    assert "under" in ids
    assert "over" not in ids


# -- malformed packets --------------------------------------------------------------------


def _truncated_connect() -> bytes:
    body = encode_str(b"MQTT") + bytes([4, 0xC2]) + b"\x00\x3c" + b"\x00\xff" + b"ab"
    return packet(CONNECT, 0, body)


MALFORMED_BEFORE_CONNECT = {
    "reserved-type-0": b"\x00\x00",
    "reserved-type-15": b"\xf0\x00",
    "remaining-length-5-bytes": b"\x30\xff\xff\xff\xff\x01",
    "publish-before-connect": publish_packet("devices/x/messages/events/", b"x", qos=1, pid=1),
    "connect-wrong-protocol-name": connect_packet("x", "u", "p", protocol_name=b"MQXX"),
    "connect-protocol-level-3": connect_packet("x", "u", "p", protocol_name=b"MQIsdp", level=3),
    "connect-truncated-client-id": _truncated_connect(),
    "connect-reserved-flag": packet(CONNECT, 0, encode_str(b"MQTT") + bytes([4, 0xC3]) + b"\x00\x3c" + encode_str("x") + encode_str("u") + encode_str("p")),
    "connect-bad-fixed-flags": packet(CONNECT, 0x01, connect_packet("x", "u", "p")[2:]),
    "http-request": b"GET / HTTP/1.1\r\nHost: spoke\r\n\r\n",
    "random-bytes": bytes(random.Random(20240611).randrange(256) for _ in range(512)),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_BEFORE_CONNECT))
def test_malformed_packet_before_connect_closes(hub, name):
    with _raw(hub) as conn:
        conn.send(MALFORMED_BEFORE_CONNECT[name])
        packets = conn.wait_closed()
    accepted = [p for p in packets if p.ptype == CONNACK and p.body[1:2] == b"\x00"]
    assert not accepted, f"{name}: the hub accepted the connection"


def _after_connect_cases(device_id: str) -> dict[str, bytes]:
    events = f"devices/{device_id}/messages/events/"
    return {
        "second-connect": connect_packet(device_id, "u", "p"),
        "subscribe-bad-flags": packet(SUBSCRIBE, 0x00, b"\x00\x01" + encode_str(events) + b"\x01"),
        "subscribe-no-filters": packet(SUBSCRIBE, 0x02, b"\x00\x01"),
        "publish-invalid-utf8-topic": packet(3, 0x02, encode_str(b"devices/\xff\xfe") + b"\x00\x01x"),
        "publish-wildcard-topic": publish_packet(events + "#", b"x", qos=1, pid=1),
        "publish-qos1-without-packet-id": packet(3, 0x02, encode_str(events)),
        "reserved-type-0": b"\x00\x00",
        "remaining-length-over-limit": b"\x30\xff\xff\xff\x7f" + b"x" * 64,
    }


@pytest.mark.parametrize("name", sorted(_after_connect_cases("d")))
def test_malformed_packet_after_connect_closes(hub, devices, name):
    me = devices.create("malformed")
    with _connected_raw(hub, me) as conn:
        conn.send(_after_connect_cases(me.device_id)[name])
        packets = conn.wait_closed()
    assert not [p for p in packets if p.ptype == PUBACK], f"{name}: acknowledged"
    # The device can connect again afterwards.
    with _connected_raw(hub, me):
        pass


def test_plaintext_on_tls_port_closes(hub):
    with socket.create_connection((hub.ip, hub.mqtt_port), timeout=10) as sock:
        sock.sendall(connect_packet("x", "u", "p"))
        deadline = time.monotonic() + 10
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(4096)
            except ConnectionError:
                break
            except socket.timeout:
                pytest.fail("the hub kept a plaintext connection open on the TLS port")
            if not chunk:
                break
            # A TLS alert may precede the close; MQTT bytes never may.
            assert chunk[:1] != bytes([CONNACK << 4])
