from __future__ import annotations
from tests.conftest import ClientFor, World
from django.conf import LazySettings as SettingsWrapper

def test_probe(client_for: ClientFor, world: World, settings: SettingsWrapper) -> None:
    c = client_for("editor")
    r = c.post("/checkResults", content=b"{not json", headers={"content-type": "application/json"})
    print("malformed", r.status_code, r.text)
    r = c.post("/checkResults", json={"dataTimestamp": "x", "results": "no"})
    print("types", r.status_code, r.text)
    r = c.post("/checkResults", content=b'{"dataTimestamp": "2026-11-01T00:00:00Z", "results": [{"dataSource": "a", "dataset": "b", "check": {"name": "c"}, "outcome": "pass", "value": NaN}]}', headers={"content-type": "application/json"})
    print("nan", r.status_code, r.text)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = c.post("/checkResults", json={"dataTimestamp": "2026-11-01T00:00:00Z", "results": [{"dataSource": "a", "dataset": "b", "check": {"name": "c"*5000}, "outcome": "pass"}]})
    print("big", r.status_code, r.text)
    r = c.post("/incidents", json={"title": "x", "checkResultIds": [world.orders_fail.pk]})
    i = r.json()
    r = c.patch(f"/incidents/{i['id']}", json={"title": "y", "version": 5})
    print("conflict", r.status_code, r.text)
    r = c.get(f"/incidents/{i['id']}/timeline")
    print("tl", r.status_code, r.text)
    r = client_for("viewer").post(f"/incidents/{i['id']}/comments", json={"text": ""})
    print("viewer empty", r.status_code, r.text)
