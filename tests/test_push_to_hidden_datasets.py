"""A push naming a dataset the caller cannot see answers as a refused creation: the name stays hidden.

In the world, warehouse/secret is seen by the admin alone and warehouse/orders is private to the
manager, editor and viewer. The manager and editor push to orders, so they may add datasets to
warehouse; the viewer and the outsider may not, since warehouse holds a dataset hidden from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from quell.accounts.models import Organization, Responsibility
from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from tests.conftest import ClientFor, World, push
from tests.ingest.conftest import Soda

WHEN = "2026-11-02T06:00:00Z"

# role -> (answer to a push to warehouse/secret, answer to a push to the new warehouse/shipments)
ANSWERS = {
    "admin": (201, 201),
    "manager": (403, 201),
    "editor": (403, 201),
    "viewer": (403, 403),
    "outsider": (403, 403),
    "anonymous": (401, 401),
}


@pytest.fixture
def secret(world: World) -> Dataset:
    (result,) = push(world.admin, "warehouse", "secret", ("row_count > 0", "pass", 5))
    Responsibility.objects.filter(dataset=result.dataset).delete()
    return result.dataset


def refused(dataset: str) -> dict[str, str]:
    return {
        "code": "forbidden",
        "message": f"You may not push results to warehouse/{dataset}: "
        "you can see no dataset of that name and may not create one.",
    }


def counts() -> dict[str, int]:
    """Rows a push could write, to show that a refused one wrote none."""
    return {
        model.__name__: model.objects.count() for model in (DataSource, Dataset, Check, CheckResult, Scan)
    }


def rest_push(client: httpx.Client, data_source: str, dataset: str) -> httpx.Response:
    result = {
        "dataSource": data_source,
        "dataset": dataset,
        "check": {"name": "row_count > 0"},
        "outcome": "pass",
    }
    return client.post("/checkResults", json={"dataTimestamp": WHEN, "results": [result]})


def soda_scan(data_source: str, dataset: str) -> dict[str, Any]:
    """A minimal Soda Core 3.x upload of one check on `dataset`."""
    return {
        "type": "sodaCoreInsertScanResults",
        "definitionName": f"scan of {dataset}",
        "defaultDataSource": data_source,
        "dataTimestamp": WHEN,
        "scanStartTimestamp": WHEN,
        "scanEndTimestamp": WHEN,
        "checks": [
            {
                "identity": f"row-count-{dataset}",
                "name": "row_count > 0",
                "definition": f"checks for {dataset}:\n  row_count > 0",
                "location": {"filePath": "checks.yml", "line": 2},
                "dataSource": data_source,
                "table": dataset,
                "outcome": "pass",
                "diagnostics": {"value": 5},
            }
        ],
        "metrics": [],
        "logs": [],
    }


@pytest.fixture
def soda_push(live_server: Any, world: World) -> Iterator[Any]:
    """`soda_push(role, data_source, dataset)` uploads a scan over Soda's protocol as that role."""
    http = httpx.Client(base_url=live_server.url, timeout=60)

    def send(role: str, data_source: str, dataset: str) -> httpx.Response:
        body = soda_scan(data_source, dataset)
        if role == "anonymous":
            return http.post("/api/command", json=body)
        return Soda(http, world.keys[role]).command(body)

    yield send
    http.close()


@pytest.mark.parametrize("role", list(ANSWERS))
def test_a_rest_push_to_a_hidden_dataset_answers_as_a_refused_creation(
    role: str, client_for: ClientFor, secret: Dataset
) -> None:
    client = client_for(role)
    hidden_status, new_status = ANSWERS[role]
    before = counts()

    hidden = rest_push(client, "warehouse", "secret")
    new = rest_push(client, "warehouse", "shipments")

    assert (hidden.status_code, new.status_code) == ANSWERS[role], [hidden.text, new.text]
    if hidden_status == 403:
        assert hidden.json() == refused("secret")
    if new_status == 403:
        assert new.json() == refused("shipments")
        assert counts() == before
    if hidden_status == 401:
        assert hidden.json() == new.json()


@pytest.mark.parametrize("role", list(ANSWERS))
def test_a_soda_upload_to_a_hidden_dataset_answers_as_a_refused_creation(
    role: str, soda_push: Any, secret: Dataset
) -> None:
    soda_ok = 200  # Soda's protocol answers an accepted scan with 200, where REST says 201
    hidden_status, new_status = (soda_ok if status == 201 else status for status in ANSWERS[role])
    before = counts()

    hidden = soda_push(role, "warehouse", "secret")
    new = soda_push(role, "warehouse", "shipments")

    assert (hidden.status_code, new.status_code) == (hidden_status, new_status), [hidden.text, new.text]
    if hidden_status == 403:
        assert hidden.json() == refused("secret")
    if new_status == 403:
        assert new.json() == refused("shipments")
        assert counts() == before
    if hidden_status == 401:
        assert hidden.json() == new.json()


def test_a_data_source_with_nothing_hidden_from_the_pusher_takes_their_new_datasets(
    client_for: ClientFor, world: World
) -> None:
    # Everyone sees warehouse/customers and the viewer sees orders: nothing in warehouse is hidden
    # from the viewer, so a refusal could reveal nothing, and a team may share a data source.
    response = rest_push(client_for("viewer"), "warehouse", "shipments")

    assert response.status_code == 201, response.text


def test_a_data_source_holding_a_dataset_hidden_from_the_pusher_takes_no_new_datasets_from_them(
    client_for: ClientFor, world: World
) -> None:
    # orders is hidden from the outsider: warehouse/orders and warehouse/shipments must answer alike.
    outsider = client_for("outsider")

    responses = [rest_push(outsider, "warehouse", name) for name in ("orders", "shipments")]

    assert [(r.status_code, r.json()) for r in responses] == [
        (403, refused("orders")),
        (403, refused("shipments")),
    ]


def test_a_new_data_source_takes_anyones_new_datasets(client_for: ClientFor, world: World) -> None:
    response = rest_push(client_for("outsider"), "lake", "events")

    assert response.status_code == 201, response.text


def test_when_users_may_not_create_datasets_a_new_name_and_a_hidden_one_answer_alike(
    client_for: ClientFor, world: World, secret: Dataset
) -> None:
    Organization.objects.filter(pk=1).update(users_can_create_datasets=False)
    editor = client_for("editor")

    responses = [rest_push(editor, "warehouse", name) for name in ("secret", "shipments")]

    assert [(r.status_code, r.json()) for r in responses] == [
        (403, refused("secret")),
        (403, refused("shipments")),
    ]
