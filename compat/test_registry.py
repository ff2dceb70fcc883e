"""Identity registry CRUD through azure-iot-hub's IoTHubRegistryManager (spec §5.2, §5.3).

Covers pitfalls 6 (device PUT answers 200) and 9 (empty keys -> generated keys).
"""

from __future__ import annotations

import base64

import pytest
from msrest.exceptions import HttpOperationError

from helpers import Identity, http_status, random_key, unique_id


def _assert_generated_key(key: str) -> None:
    assert isinstance(key, str) and len(key) == 44, key
    assert len(base64.b64decode(key, validate=True)) == 32


def test_create_with_generated_keys_then_get_list_delete(registry, devices):
    device_id = unique_id("reg")
    created = registry.create_device_with_sas(device_id, None, None, "enabled")
    devices.created.append(device_id)

    assert created.device_id == device_id
    assert created.status == "enabled"
    assert created.authentication.type == "sas"
    keys = created.authentication.symmetric_key
    _assert_generated_key(keys.primary_key)
    _assert_generated_key(keys.secondary_key)
    assert keys.primary_key != keys.secondary_key
    assert created.etag

    fetched = registry.get_device(device_id)
    assert fetched.device_id == device_id
    assert fetched.authentication.symmetric_key.primary_key == keys.primary_key
    assert fetched.authentication.symmetric_key.secondary_key == keys.secondary_key
    assert fetched.connection_state == "Disconnected"

    assert device_id in {d.device_id for d in registry.get_devices()}

    registry.delete_device(device_id)
    with pytest.raises(HttpOperationError) as err:
        registry.get_device(device_id)
    assert http_status(err.value) == 404
    with pytest.raises(HttpOperationError) as err:
        registry.delete_device(device_id)
    assert http_status(err.value) == 404


def test_generated_keys_authenticate_both(devices, clients, hub):
    device = devices.create("keys")
    clients.device(device).disconnect()
    secondary = Identity(hub.hostname, device.device_id, device.secondary_key, device.primary_key)
    client = clients.device(secondary)
    assert client.connected


def test_create_with_given_keys_keeps_them(registry, devices):
    device_id = unique_id("given")
    pk, sk = random_key(), random_key()
    created = registry.create_device_with_sas(device_id, pk, sk, "enabled")
    devices.created.append(device_id)
    assert created.authentication.symmetric_key.primary_key == pk
    assert created.authentication.symmetric_key.secondary_key == sk


def test_create_existing_device_conflicts(registry, devices):
    device = devices.create("dup")
    with pytest.raises(HttpOperationError) as err:
        registry.create_device_with_sas(device.device_id, None, None, "enabled")
    assert http_status(err.value) == 409


def test_update_status_and_keys(registry, devices):
    device = devices.create("upd")
    new_pk, new_sk = random_key(), random_key()
    updated = registry.update_device_with_sas(device.device_id, "*", new_pk, new_sk, "disabled")
    assert updated.status == "disabled"
    fetched = registry.get_device(device.device_id)
    assert fetched.status == "disabled"
    assert fetched.authentication.symmetric_key.primary_key == new_pk

    # With the current etag instead of the wildcard (spec §0, pitfall 7).
    again = registry.update_device_with_sas(device.device_id, fetched.etag, new_pk, new_sk, "enabled")
    assert again.status == "enabled"


def test_update_with_stale_etag_fails(registry, devices):
    device = devices.create("etag")
    stale = registry.get_device(device.device_id).etag
    registry.update_device_with_sas(device.device_id, "*", random_key(), random_key(), "enabled")
    with pytest.raises(HttpOperationError) as err:
        registry.update_device_with_sas(device.device_id, stale, random_key(), random_key(), "enabled")
    assert http_status(err.value) == 412


def test_ids_with_special_characters(registry, devices):
    """The SDK percent-encodes path segments; the hub decodes them (spec §5.1)."""
    device_id = f"cmp.{unique_id('x')[-8:]}-a:b_c@d(e)!f,g=h'i*j%k$l"
    created = registry.create_device_with_sas(device_id, None, None, "enabled")
    devices.created.append(device_id)
    assert created.device_id == device_id
    assert registry.get_device(device_id).device_id == device_id
    registry.delete_device(device_id)
    with pytest.raises(HttpOperationError) as err:
        registry.get_device(device_id)
    assert http_status(err.value) == 404


@pytest.mark.parametrize("bad", ["a+b", "a#b", "a b", "a/b"])
def test_ids_with_mqtt_wildcards_or_separators_are_refused(registry, bad):
    """Azure's current id rules exclude `+` and `#` (MQTT wildcards, invalid in topic names),
    spaces and `/`; the hub answers 400 instead of creating an id no device could use."""
    with pytest.raises(HttpOperationError) as err:
        registry.create_device_with_sas(bad, None, None, "enabled")
    assert http_status(err.value) == 400


def test_modules_crud(registry, devices):
    device = devices.create("modparent")
    module = devices.create_module(device)
    _assert_generated_key(module.primary_key)
    _assert_generated_key(module.secondary_key)

    fetched = registry.get_module(device.device_id, module.module_id)
    assert fetched.module_id == module.module_id
    assert fetched.device_id == device.device_id
    assert module.module_id in {m.module_id for m in registry.get_modules(device.device_id)}

    registry.delete_module(device.device_id, module.module_id)
    with pytest.raises(HttpOperationError) as err:
        registry.get_module(device.device_id, module.module_id)
    assert http_status(err.value) == 404


def test_cli_device_lifecycle(spoke, registry, clients, hub):
    """`spoke device create ID`, `spoke device connection-string ID`, `spoke device delete ID`."""
    device_id = unique_id("cli")
    spoke.run("device", "create", device_id)
    try:
        assert registry.get_device(device_id).device_id == device_id
        cs = spoke.run("device", "connection-string", device_id).stdout.strip()
        assert cs.startswith(f"HostName={hub.hostname};DeviceId={device_id};SharedAccessKey=")
        assert not cs.endswith(";")
        key = cs.split("SharedAccessKey=", 1)[1]
        client = clients.device(Identity(hub.hostname, device_id, key, ""))
        assert client.connected
        client.disconnect()
    finally:
        spoke.run("device", "delete", device_id, check=False)
    with pytest.raises(HttpOperationError) as err:
        registry.get_device(device_id)
    assert http_status(err.value) == 404
