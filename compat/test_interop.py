"""Generic MQTT clients against the hub: mosquitto_pub / mosquitto_sub and paho-mqtt.

They authenticate as an Azure device would by hand: client id = device id,
username `{host}/{device}/?api-version=...`, password = a SAS token signed over
quote(uri, safe="") (spec §2.1, §3.2). MQTT 3.1.1, TLS with the hub's CA.
"""

from __future__ import annotations

import concurrent.futures
import json
import queue
import subprocess

import paho.mqtt.client as mqtt
import pytest

from helpers import WAIT_S, app_props, get_matching, invoke, parse_property_bag, system_props


def _mosquitto_args(hub, device, password=None):
    return [
        "-h", hub.ip, "-p", str(hub.mqtt_port), "--cafile", str(hub.ca_file),
        "-i", device.device_id, "-u", device.mqtt_username,
        "-P", password if password is not None else device.sas_token(),
        "-V", "mqttv311", "-q", "1",
    ]


def test_mosquitto_pub_telemetry(hub, devices, spoke, since):
    device = devices.create("mpub")
    topic = f"devices/{device.device_id}/messages/events/%24.mid=mq-1&%24.ct=text%2Fplain&color=dark%20blue"
    proc = subprocess.run(
        ["mosquitto_pub", *_mosquitto_args(hub, device), "-t", topic, "-m", "from mosquitto"],
        capture_output=True, text=True, timeout=WAIT_S,
    )
    assert proc.returncode == 0, proc.stderr
    event = spoke.events_by_message_id(device.device_id, since, ["mq-1"])["mq-1"]
    assert event["payload"] == "from mosquitto"
    assert system_props(event)["content_type"] == "text/plain"
    assert app_props(event) == {"color": "dark blue"}


def test_mosquitto_sub_receives_c2d(hub, devices, spoke):
    device = devices.create("msub")
    # Queued first, delivered when the subscription arrives: no race with the subscriber.
    spoke.c2d_send(device.device_id, "to mosquitto", {"color": "red"}, message_id="mq-c2d")
    proc = subprocess.run(
        [
            "mosquitto_sub", *_mosquitto_args(hub, device),
            "-t", f"devices/{device.device_id}/messages/devicebound/#",
            "-C", "1", "-W", str(int(WAIT_S)), "-F", "%t\t%p",
        ],
        capture_output=True, text=True, timeout=WAIT_S + 10,
    )
    assert proc.returncode == 0, proc.stderr
    topic, payload = proc.stdout.rstrip("\n").split("\t", 1)
    assert payload == "to mosquitto"
    prefix = f"devices/{device.device_id}/messages/devicebound/"
    assert topic.startswith(prefix)
    props = parse_property_bag(topic[len(prefix):])
    assert props.get("color") == "red"
    assert props.get("$.mid") == "mq-c2d"


def test_mosquitto_wrong_password_refused(hub, devices):
    device = devices.create("mbad")
    proc = subprocess.run(
        ["mosquitto_pub", *_mosquitto_args(hub, device, password="SharedAccessSignature sr=x&sig=y&se=1"),
         "-t", f"devices/{device.device_id}/messages/events/", "-m", "nope"],
        capture_output=True, text=True, timeout=WAIT_S,
    )
    assert proc.returncode != 0
    assert "refused" in (proc.stdout + proc.stderr).lower()


class PahoDevice:
    """paho-mqtt 1.6.1 connected as a device with a SAS password; no auto-reconnect."""

    def __init__(self, hub, device, transport: str = "tcp") -> None:
        self.client = mqtt.Client(
            client_id=device.device_id, clean_session=False, protocol=mqtt.MQTTv311, transport=transport
        )
        self.client.tls_set(ca_certs=str(hub.ca_file))
        self.client.username_pw_set(device.mqtt_username, device.sas_token())
        if transport == "websockets":
            self.client.ws_set_options(path="/$iothub/websocket")
        self.connack: queue.Queue[int] = queue.Queue()
        self.subacks: queue.Queue[tuple[int, tuple]] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client.on_connect = lambda c, u, flags, rc: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, granted: self.subacks.put((mid, granted))
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        port = 443 if transport == "websockets" else hub.mqtt_port
        self.client.connect(hub.ip, port, keepalive=60)
        self.client.loop_start()
        assert self.connack.get(timeout=WAIT_S) == 0

    def subscribe(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        assert get_matching(self.subacks, lambda s: s[0] == mid)[1] == (1,)

    def publish(self, topic: str, payload: bytes | str) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def next_message(self, topic_prefix: str) -> mqtt.MQTTMessage:
        return get_matching(self.messages, lambda m: m.topic.startswith(topic_prefix))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(params=["tcp", "websockets"])
def paho_device(request, hub, devices):
    device = devices.create("paho-" + request.param[:2])
    client = PahoDevice(hub, device, transport=request.param)
    yield device, client
    client.close()


def test_paho_telemetry_c2d_method_twin(paho_device, registry, spoke, since):
    device, paho = paho_device
    d = device.device_id

    paho.publish(f"devices/{d}/messages/events/%24.mid=paho-1&k%201=v%2F1", b'{"n": 1}')
    event = spoke.events_by_message_id(d, since, ["paho-1"])["paho-1"]
    assert app_props(event) == {"k 1": "v/1"}
    assert event["payload"] == {"n": 1}

    paho.subscribe(f"devices/{d}/messages/devicebound/#")
    spoke.c2d_send(d, "to paho", {"x": "y z"}, message_id="paho-c2d")
    msg = paho.next_message(f"devices/{d}/messages/devicebound/")
    assert msg.payload == b"to paho"
    assert parse_property_bag(msg.topic.split("/devicebound/", 1)[1]).get("x") == "y z"

    paho.subscribe("$iothub/methods/POST/#")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(invoke, registry, d, "paho_method", {"q": 1})
        req = paho.next_message("$iothub/methods/POST/paho_method/")
        assert json.loads(req.payload) == {"q": 1}
        rid = parse_property_bag(req.topic.split("?", 1)[1])["$rid"]
        paho.publish(f"$iothub/methods/res/201/?$rid={rid}", json.dumps({"answer": 42}))
        result = future.result(timeout=WAIT_S)
    assert (result.status, result.payload) == (201, {"answer": 42})

    paho.subscribe("$iothub/twin/res/#")
    paho.publish("$iothub/twin/PATCH/properties/reported/?$rid=r1", json.dumps({"paho": True}))
    res = paho.next_message("$iothub/twin/res/")
    assert res.topic.startswith("$iothub/twin/res/204/?")
    query = parse_property_bag(res.topic.split("?", 1)[1])
    assert query["$rid"] == "r1"
    assert int(query["$version"]) >= 2
    paho.publish("$iothub/twin/GET/?$rid=r2", b"")
    res = paho.next_message("$iothub/twin/res/200/")
    assert parse_property_bag(res.topic.split("?", 1)[1])["$rid"] == "r2"
    doc = json.loads(res.payload)
    assert doc["reported"]["paho"] is True
    assert isinstance(doc["desired"]["$version"], int)
    assert registry.get_twin(d).properties.reported["paho"] is True
