"""Direct methods: service invoke (REST) -> device (MQTT) -> response (spec §3.9, §5.4).

Mirrors the SDK's e2e test_methods: method `this_is_my_method_name`, device
status 299, with and without request and response payloads.
"""

from __future__ import annotations

import pytest
from msrest.exceptions import HttpOperationError

from helpers import WAIT_S, http_status, invoke, serve_methods

METHOD = "this_is_my_method_name"


@pytest.mark.parametrize("request_payload", [{"MethodRequest": METHOD, "n": [1, 2]}, None], ids=["req-payload", "no-req-payload"])
@pytest.mark.parametrize("response_payload", [{"MethodResponse": "ok", "v": 1.5}, None], ids=["resp-payload", "no-resp-payload"])
def test_method_round_trip(registry, devices, clients, request_payload, response_payload):
    device = devices.create("meth")
    client = clients.device(device)
    requests_q = serve_methods(client, 299, response_payload)

    result = invoke(registry, device.device_id, METHOD, request_payload)

    request = requests_q.get(timeout=WAIT_S)
    assert request.name == METHOD
    if request_payload is None:
        # The SDK sends `"payload": ""`; the device sees nothing meaningful.
        assert not request.payload
    else:
        assert request.payload == request_payload
    assert result.status == 299
    assert result.payload == response_payload


@pytest.mark.parametrize("payload", ["a string", 42, [1, "two", None], True], ids=["str", "int", "list", "bool"])
def test_method_scalar_payloads(registry, devices, clients, payload):
    device = devices.create("scalar")
    client = clients.device(device)
    requests_q = serve_methods(client, 200, payload)
    result = invoke(registry, device.device_id, "echo", payload)
    assert requests_q.get(timeout=WAIT_S).payload == payload
    assert result.status == 200
    assert result.payload == payload


def test_method_to_offline_device_is_404(registry, devices):
    device = devices.create("offline")
    with pytest.raises(HttpOperationError) as err:
        invoke(registry, device.device_id, METHOD, {"x": 1})
    assert http_status(err.value) == 404


def test_method_to_unknown_device_is_404(registry):
    with pytest.raises(HttpOperationError) as err:
        invoke(registry, "compat-no-such-device", METHOD, None)
    assert http_status(err.value) == 404


def test_method_timeout_is_504(registry, devices, clients):
    device = devices.create("silent")
    client = clients.device(device)
    seen = []
    client.on_method_request_received = seen.append  # never answers
    with pytest.raises(HttpOperationError) as err:
        invoke(registry, device.device_id, "slow", None, response_timeout=5)
    assert http_status(err.value) == 504
    assert [r.name for r in seen] == ["slow"]
