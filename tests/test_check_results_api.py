"""GET /api/v1/checks/{id}/results: a check's results newest first, built from rows (rows_response).

The suite turns on settings.API_CHECK_RESPONSES, so every answer here is also checked against what
ninja would have written from its schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult
from tests.conftest import T0, World


def api(world: World, name: str = "editor") -> Client:
    client = Client()
    client.force_login(world.user(name))
    return client


def push_night(
    world: World, day: int, outcome: str, value: float | None, diagnostics: dict[str, Any]
) -> None:
    catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0 + dt.timedelta(days=day, microseconds=123_456),
            results=[
                catalog_ingest.ResultInput(
                    data_source="warehouse",
                    dataset="orders",
                    check=catalog_ingest.CheckInput(name="row_count > 0"),
                    outcome=outcome,
                    value=value,
                    diagnostics=diagnostics,
                )
            ],
        ),
        by=world.admin,
    )


@pytest.fixture
def nights(world: World) -> list[CheckResult]:
    """Four more nights of the orders row count: no value, a whole value, text to escape, nesting."""
    push_night(world, 1, "pass", None, {})
    push_night(world, 2, "warn", 7.0, {"value": 7, "note": 'a "quoted" <b>word</b> é'})
    push_night(world, 3, "fail", 0.25, {"blocks": [{"file": None}], "fail": {"lessThan": 1}})
    push_night(world, 4, "pass", 12345678.5, {"nan": None, "ok": True})
    return list(CheckResult.objects.filter(check_ref=world.orders_fail.check_ref).order_by("-data_timestamp"))


def test_a_checks_results_come_newest_first_with_every_field(world: World, nights: list[CheckResult]) -> None:
    check = world.orders_fail.check_ref

    page = api(world).get(f"/api/v1/checks/{check.pk}/results").json()

    assert [r["id"] for r in page["content"]] == [r.pk for r in nights]
    newest = page["content"][0]
    assert newest == {
        "id": nights[0].pk,
        "checkId": check.pk,
        "checkName": "row_count > 0",
        "datasetId": world.orders.pk,
        "datasetName": "orders",
        "scanId": nights[0].scan_id,
        "outcome": "pass",
        "value": 12345678.5,
        "dataTimestamp": "2026-11-05T06:00:00.123Z",
        "diagnostics": {"nan": None, "ok": True},
    }
    assert page["content"][-1]["value"] == 0.0
    assert page["content"][3]["value"] is None
    assert (page["totalElements"], page["totalPages"], page["first"], page["last"]) == (5, 1, True, True)


def test_a_result_reads_the_same_in_its_checks_results_and_in_its_scans_results(
    world: World, nights: list[CheckResult]
) -> None:
    client = api(world)
    by_check = client.get(f"/api/v1/checks/{world.orders_fail.check_ref_id}/results").json()["content"]

    for result in by_check:
        by_scan = client.get(f"/api/v1/scans/{result['scanId']}/results").json()["content"]
        assert result in by_scan


def test_the_results_page_by_number_and_size_and_filter_by_outcome(
    world: World, nights: list[CheckResult]
) -> None:
    client = api(world)
    url = f"/api/v1/checks/{world.orders_fail.check_ref_id}/results"

    pages = [client.get(url, {"size": 2, "page": n}).json() for n in range(4)]
    failing = client.get(url, {"outcome": ["fail", "warn"]}).json()

    assert [[r["id"] for r in p["content"]] for p in pages] == [
        [nights[0].pk, nights[1].pk],
        [nights[2].pk, nights[3].pk],
        [nights[4].pk],
        [],
    ]
    assert [(p["first"], p["last"], p["number"], p["size"]) for p in pages] == [
        (True, False, 0, 2),
        (False, False, 1, 2),
        (False, True, 2, 2),
        (False, True, 3, 2),
    ]
    assert {(p["totalElements"], p["totalPages"]) for p in pages} == {(5, 3)}
    assert [r["outcome"] for r in failing["content"]] == ["fail", "warn", "fail"]
    assert failing["totalElements"] == 3


def test_someone_who_cannot_see_the_dataset_is_told_the_check_does_not_exist(world: World) -> None:
    response = api(world, "outsider").get(f"/api/v1/checks/{world.orders_fail.check_ref_id}/results")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def statements_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, {"size": 366}).status_code == 200
    return len(captured)


def test_forty_nights_of_results_cost_the_statements_of_one(world: World) -> None:
    client = api(world)
    url = f"/api/v1/checks/{world.orders_fail.check_ref_id}/results"
    client.get(url)
    one_night = statements_of(client, url)
    for day in range(1, 40):
        push_night(world, day, "pass", float(day), {"value": day})

    forty_nights = statements_of(client, url)

    assert forty_nights == one_night
    assert len(client.get(url, {"size": 366}).json()["content"]) == 40
