"""REST refusals: malformed JSON and bad credentials get a clear error and change nothing.

Malformed or ill-typed bodies -> 400 with an Azure-like error body
(`{"Message": "ErrorCode:...;...", ...}`, spec §5.1); missing, wrong or expired
service tokens -> 401. Other clients are unaffected (the healthy device).
"""

from __future__ import annotations

import json
import time

import pytest
from azure.iot.hub.models import Twin, TwinProperties

from helpers import json_body, random_key, unique_id


@pytest.fixture(autouse=True)
def other_clients_unaffected(healthy):
    yield
    healthy.check()


def _assert_400_with_message(resp) -> None:
    assert resp.status_code == 400, f"{resp.status_code}: {resp.text}"
    body = json_body(resp)
    assert isinstance(body, dict) and isinstance(body.get("Message"), str) and body["Message"], resp.text


MALFORMED = {
    "truncated": b'{"deviceId": "x", "status": ',
    "not-json": b"this is not json",
    "trailing-garbage": b'{"a": 1} xyz',
    "invalid-utf8": b'{"deviceId": "\xff\xfe"}',
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_create_device_malformed_json(rest, name):
    device_id = unique_id("badjson")
    resp = rest.request("PUT", f"/devices/{device_id}", MALFORMED[name])
    _assert_400_with_message(resp)
    assert rest.request("GET", f"/devices/{device_id}").status_code == 404


@pytest.mark.parametrize(
    "body",
    ["[]", '"a string"', '{"deviceId": 5}', '{"status": "sideways"}', '{"authentication": {"type": "sas", "symmetricKey": {"primaryKey": "not base64!"}}}'],
    ids=["array", "string", "id-not-string", "bad-status", "bad-key"],
)
def test_create_device_ill_typed_json(rest, body):
    device_id = unique_id("badtype")
    doc = json.loads(body)
    if isinstance(doc, dict) and "deviceId" not in doc:
        doc["deviceId"] = device_id
    resp = rest.request("PUT", f"/devices/{device_id}", json.dumps(doc))
    _assert_400_with_message(resp)
    assert rest.request("GET", f"/devices/{device_id}").status_code == 404


def test_create_device_id_mismatch(rest):
    device_id = unique_id("mismatch")
    resp = rest.request("PUT", f"/devices/{device_id}", json.dumps({"deviceId": device_id + "-other"}))
    _assert_400_with_message(resp)


def test_twin_patch_malformed_leaves_twin_unchanged(rest, registry, devices):
    device = devices.create("badtwin")
    registry.update_twin(device.device_id, Twin(properties=TwinProperties(desired={"k": 1})), "*")
    before = registry.get_twin(device.device_id).properties.desired["$version"]
    resp = rest.request("PATCH", f"/twins/{device.device_id}", b'{"properties": {"desired": {"k": ', headers={"If-Match": '"*"'})
    _assert_400_with_message(resp)
    desired = registry.get_twin(device.device_id).properties.desired
    assert desired["$version"] == before and desired["k"] == 1


def test_twin_patch_reported_from_service_is_400(rest, devices):
    device = devices.create("svcreported")
    resp = rest.request(
        "PATCH", f"/twins/{device.device_id}", json.dumps({"properties": {"reported": {"x": 1}}}), headers={"If-Match": '"*"'}
    )
    _assert_400_with_message(resp)


def test_method_invoke_malformed(rest, devices):
    device = devices.create("badmethod")
    _assert_400_with_message(rest.request("POST", f"/twins/{device.device_id}/methods", b'{"methodName": '))
    _assert_400_with_message(rest.request("POST", f"/twins/{device.device_id}/methods", json.dumps({"payload": {}})))


def test_query_malformed(rest):
    _assert_400_with_message(rest.request("POST", "/devices/query", b'{"query": '))
    _assert_400_with_message(rest.request("POST", "/devices/query", json.dumps({"query": "SELEKT * FROM devices"})))
    _assert_400_with_message(rest.request("POST", "/devices/query", json.dumps({"query": "SELECT * FROM devices WHERE ("})))


def test_missing_token_is_401(rest, devices):
    device = devices.create("noauth")
    assert rest.request("GET", f"/devices/{device.device_id}", token=None).status_code == 401


def test_wrong_key_is_401(rest, devices):
    device = devices.create("wrongsvc")
    resp = rest.request("GET", f"/devices/{device.device_id}", token=rest.token(key=random_key()))
    assert resp.status_code == 401
    resp = rest.request("PUT", f"/devices/{unique_id('nope')}", json.dumps({}), token=rest.token(key=random_key()))
    assert resp.status_code == 401


def test_expired_service_token_is_401(rest, devices):
    device = devices.create("expsvc")
    resp = rest.request("GET", f"/devices/{device.device_id}", token=rest.token(expiry=int(time.time()) - 60))
    assert resp.status_code == 401


def test_device_token_cannot_use_service_api(rest, devices):
    device = devices.create("devtok")
    resp = rest.request("GET", "/devices", token=device.sas_token())
    assert resp.status_code == 401
