"""Twin queries: POST /devices/query -> JSON array + x-ms-item-type (spec §0 pitfall 10, §5.5)."""

from __future__ import annotations

import uuid

from azure.iot.hub.models import QuerySpecification, Twin


def _query(registry, sql: str):
    return registry.query_iot_hub(QuerySpecification(query=sql))


def test_query_by_tags(registry, devices):
    group = "g" + uuid.uuid4().hex[:10]
    a, b, c = devices.create("qa"), devices.create("qb"), devices.create("qc")
    registry.update_twin(a.device_id, Twin(tags={"group": group, "floor": 1, "site": {"city": "Oslo"}}), "*")
    registry.update_twin(b.device_id, Twin(tags={"group": group, "floor": 3, "site": {"city": "Bergen"}}), "*")
    registry.update_twin(c.device_id, Twin(tags={"group": "other-" + group, "floor": 3}), "*")

    result = _query(registry, f"SELECT * FROM devices WHERE tags.group = '{group}'")
    assert result.type == "twin"
    assert {t.device_id for t in result.items} == {a.device_id, b.device_id}
    by_id = {t.device_id: t for t in result.items}
    assert by_id[a.device_id].tags["site"] == {"city": "Oslo"}

    result = _query(registry, f"SELECT * FROM devices WHERE tags.group = '{group}' AND tags.floor > 2")
    assert [t.device_id for t in result.items] == [b.device_id]

    result = _query(registry, f"SELECT * FROM devices WHERE tags.group = '{group}' AND tags.site.city = 'Oslo'")
    assert [t.device_id for t in result.items] == [a.device_id]

    result = _query(registry, f"SELECT * FROM devices WHERE tags.group IN ['{group}', 'other-{group}'] AND tags.floor = 3")
    assert {t.device_id for t in result.items} == {b.device_id, c.device_id}

    result = _query(registry, f"SELECT * FROM devices WHERE tags.group = 'nobody-{group}'")
    assert result.items == []


def test_query_by_reported_property(registry, devices, clients):
    marker = "fw-" + uuid.uuid4().hex[:10]
    device = devices.create("qrep")
    client = clients.device(device)
    client.patch_twin_reported_properties({"firmware": marker})
    result = _query(registry, f"SELECT * FROM devices WHERE properties.reported.firmware = '{marker}'")
    assert [t.device_id for t in result.items] == [device.device_id]
    assert result.items[0].properties.reported["firmware"] == marker


def test_query_count(registry, devices):
    group = "c" + uuid.uuid4().hex[:10]
    for _ in range(3):
        d = devices.create("qcount")
        registry.update_twin(d.device_id, Twin(tags={"group": group}), "*")
    result = _query(registry, f"SELECT COUNT() AS total FROM devices WHERE tags.group = '{group}'")
    assert result.type == "raw"
    assert len(result.items) == 1
    assert result.items[0].additional_properties == {"total": 3}
