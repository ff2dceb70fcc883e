"""Edge deployments applied to one device (`applyConfigurationContent`, spec §5.6): through
the service SDK and through `spoke deployment apply`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.iot.hub import IoTHubConfigurationManager
from azure.iot.hub.models import ConfigurationContent
from msrest.exceptions import HttpOperationError

from helpers import http_status, unique_id

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
