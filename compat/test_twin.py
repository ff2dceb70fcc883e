"""Device twins: desired (service -> device) and reported (device -> service).

Spec §3.8 (MQTT twin topics; `$version` in the desired patch body), §4 (merge
rules: objects merge, null deletes; versions), §5.2 (REST twin calls).
"""

from __future__ import annotations

import pytest
from azure.iot.hub.models import Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from helpers import get_matching, http_status, receive_desired


def _desired(registry, device_id, patch):
    return registry.update_twin(device_id, Twin(properties=TwinProperties(desired=patch)), "*")


def _strip_meta(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("$")}


def test_desired_patch_reaches_device_with_version(registry, devices, clients):
    device = devices.create("desired")
    client = clients.device(device)
    patches = receive_desired(client)  # returns once subscribed (SUBACK)

    before = registry.get_twin(device.device_id).properties.desired["$version"]
    _desired(registry, device.device_id, {"foo": 1, "nested": {"a": 1, "b": 2}})
    patch = get_matching(patches, lambda p: "foo" in p)
    assert patch["foo"] == 1
    assert patch["nested"] == {"a": 1, "b": 2}
    assert isinstance(patch["$version"], int) and patch["$version"] == before + 1

    twin = registry.get_twin(device.device_id)
    assert twin.properties.desired["$version"] == patch["$version"]
    assert twin.properties.desired["foo"] == 1

    # Merge: `b` deleted by null, `c` added, `a` kept; `foo` deleted (spec §4).
    _desired(registry, device.device_id, {"foo": None, "nested": {"b": None, "c": 3}})
    patch2 = get_matching(patches, lambda p: "nested" in p and "c" in p["nested"])
    assert patch2["$version"] == patch["$version"] + 1
    assert patch2["foo"] is None
    assert patch2["nested"] == {"b": None, "c": 3}

    desired = registry.get_twin(device.device_id).properties.desired
    assert "foo" not in desired
    assert _strip_meta(desired["nested"]) == {"a": 1, "c": 3}

    # The device's own GET sees the same document and version (spec §3.8).
    device_twin = client.get_twin()
    assert device_twin["desired"]["$version"] == patch2["$version"]
    assert _strip_meta(device_twin["desired"]) == {"nested": {"a": 1, "c": 3}}
    assert "$metadata" not in device_twin["desired"]


def test_reported_patch_reaches_service_and_null_deletes(registry, devices, clients):
    device = devices.create("reported")
    client = clients.device(device)
    start = client.get_twin()["reported"]["$version"]

    client.patch_twin_reported_properties({"bar": 2, "gone": "x", "obj": {"p": 1, "q": 2}})
    reported = registry.get_twin(device.device_id).properties.reported
    assert reported["bar"] == 2 and reported["gone"] == "x"
    assert reported["$version"] == start + 1

    client.patch_twin_reported_properties({"gone": None, "obj": {"q": None}})
    reported = registry.get_twin(device.device_id).properties.reported
    assert reported["bar"] == 2
    assert "gone" not in reported
    assert _strip_meta(reported["obj"]) == {"p": 1}
    assert reported["$version"] == start + 2

    mine = client.get_twin()["reported"]
    assert mine["$version"] == start + 2
    assert _strip_meta(mine) == {"bar": 2, "obj": {"p": 1}}


def test_new_twin_versions(registry, devices):
    device = devices.create("fresh")
    twin = registry.get_twin(device.device_id)
    assert twin.device_id == device.device_id
    assert twin.properties.desired["$version"] == 1
    assert twin.properties.reported["$version"] == 1
    assert twin.etag


def test_tags_update_and_etag_precondition(registry, devices):
    device = devices.create("tags")
    twin = registry.update_twin(device.device_id, Twin(tags={"env": "test", "site": {"floor": 3}}), "*")
    assert twin.tags == {"env": "test", "site": {"floor": 3}}
    etag = twin.etag
    twin = registry.update_twin(device.device_id, Twin(tags={"site": {"floor": None, "room": "b"}}), etag)
    assert twin.tags == {"env": "test", "site": {"room": "b"}}
    with pytest.raises(HttpOperationError) as err:
        registry.update_twin(device.device_id, Twin(tags={"env": "stale"}), etag)
    assert http_status(err.value) == 412
