"""Edge deployments applied to one device (`applyConfigurationContent`, spec §5.6): through
the service SDK and through `spoke deployment apply`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.iot.hub import IoTHubConfigurationManager
from azure.iot.hub.models import ConfigurationContent
from msrest.exceptions import HttpOperationError

from helpers import device_sas_token, http_status, unique_id

MANIFEST = Path(__file__).parent / "fixtures" / "deployment.json"


@pytest.fixture
def edge_device(registry, devices):
    device_id = unique_id("edge")
    registry.create_device_with_sas(device_id, None, None, "enabled", iot_edge=True)
    devices.created.append(device_id)
    return device_id


def test_edge_devices_get_system_modules(registry, edge_device):
    modules = {m.module_id for m in registry.get_modules(edge_device)}
    assert {"$edgeAgent", "$edgeHub"} <= modules


def test_apply_configuration_through_the_service_sdk(hub, registry, edge_device):
    manifest = json.loads(MANIFEST.read_text())
    configurations = IoTHubConfigurationManager.from_connection_string(hub.service_connstr)
    configurations.apply_configuration_on_edge_device(
        edge_device, ConfigurationContent(modules_content=manifest["modulesContent"])
    )
    agent = registry.get_module_twin(edge_device, "$edgeAgent")
    assert agent.properties.desired["schemaVersion"] == "1.1"
    assert set(agent.properties.desired["modules"]) == {"sensor", "filter"}
    edge_hub = registry.get_module_twin(edge_device, "$edgeHub")
    assert "sensorToFilter" in edge_hub.properties.desired["routes"]


def test_apply_with_the_cli_reaches_modules_created_later(registry, spoke, edge_device):
    spoke.run("deployment", "apply", edge_device, "--manifest", str(MANIFEST))
    registry.create_module_with_sas(edge_device, "filter", "IotEdge", None, None)
    twin = registry.get_module_twin(edge_device, "filter")
    assert twin.properties.desired["threshold"] == 30


def test_apply_to_a_device_that_is_not_an_edge_device_is_400(rest, devices):
    device = devices.create("notedge")
    body = json.dumps({"modulesContent": {"$edgeAgent": {"properties.desired": {}}}})
    response = rest.request("POST", f"/devices/{device.device_id}/applyConfigurationContent", body)
    assert response.status_code == 400
    assert "not an IoT Edge device" in response.json()["Message"]


def _device_token(hub, device_id: str, key: str) -> str:
    return device_sas_token(hub.hostname, device_id, key)


def test_an_edge_device_manages_its_own_modules_with_its_own_token(hub, rest, registry, edge_device):
    key = registry.get_device(edge_device).authentication.symmetric_key.primary_key
    token = _device_token(hub, edge_device, key)
    body = json.dumps({"moduleId": "sensor", "managedBy": "IotEdge", "authentication": {"type": "sas", "symmetricKey": {}}})
    created = rest.request("PUT", f"/devices/{edge_device}/modules/sensor", body, token=token)
    assert created.status_code == 200, created.text
    assert created.json()["managedBy"] == "IotEdge"
    listed = rest.request("GET", f"/devices/{edge_device}/modules", token=token)
    assert {m["moduleId"] for m in listed.json()} >= {"$edgeAgent", "$edgeHub", "sensor"}
    deleted = rest.request("DELETE", f"/devices/{edge_device}/modules/sensor", token=token,
                           headers={"If-Match": '"*"'})
    assert deleted.status_code == 204


def test_device_tokens_reach_no_further(hub, rest, registry, devices, edge_device):
    plain = devices.create("plainmods")
    plain_token = _device_token(hub, plain.device_id, plain.primary_key)
    refused = rest.request("GET", f"/devices/{plain.device_id}/modules", token=plain_token)
    assert refused.status_code == 401, "only edge devices manage their modules"
    key = registry.get_device(edge_device).authentication.symmetric_key.primary_key
    edge_token = _device_token(hub, edge_device, key)
    other = rest.request("GET", f"/devices/{plain.device_id}/modules", token=edge_token)
    assert other.status_code == 401, "an edge device cannot reach another device's modules"
    registry_call = rest.request("GET", f"/devices/{edge_device}", token=edge_token)
    assert registry_call.status_code == 401, "device tokens do not open the registry"
