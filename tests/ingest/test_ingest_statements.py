"""What a Soda scan costs in statements, and that the results it stores are the rows it answers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult
from tests.conftest import T0, World


def nightly_scan(night: int, tables: int, checks: int) -> dict[str, Any]:
    """A Soda Core 3.x upload of `checks` checks spread over `tables` tables, one night after T0."""
    at = (T0 + dt.timedelta(days=night)).isoformat()
    return {
        "type": "sodaCoreInsertScanResults",
        "definitionName": "nightly",
        "defaultDataSource": "lake",
        "dataTimestamp": at,
        "scanStartTimestamp": at,
        "scanEndTimestamp": at,
        "checks": [
            {
                "identity": f"check-{c}",
                "name": f"row_count > {c}",
                "definition": f"checks for table_{c % tables}:\n  row_count > {c}",
                "location": {"filePath": "checks.yml", "line": c + 2},
                "dataSource": "lake",
                "table": f"table_{c % tables}",
                "outcome": "fail" if c % 3 == 0 else "pass",
                "diagnostics": {"value": c + night},
            }
            for c in range(checks)
        ],
        "metrics": [],
        "logs": [],
    }


def soda_client(world: World) -> tuple[Client, str]:
    client = Client()
    key_id, secret = world.keys["admin"]
    login = client.post(
        "/api/command",
        {"type": "login", "apiKeyId": key_id, "apiKeySecret": secret},
        content_type="application/json",
    )
    return client, login.json()["token"]


def statements_of_a_second_night(world: World, tables: int, checks: int) -> int:
    client, token = soda_client(world)
    first = client.post(
        "/api/command", {**nightly_scan(1, tables, checks), "token": token}, content_type="application/json"
    )
    assert first.status_code == 200, first.content
    with CaptureQueriesContext(connection) as captured:
        second = client.post(
            "/api/command",
            {**nightly_scan(2, tables, checks), "token": token},
            content_type="application/json",
        )
    assert second.status_code == 200, second.content
    assert len(second.json()["checks"]) == checks
    return len(captured)


def test_a_scan_over_eight_tables_costs_the_statements_of_a_scan_over_one(world: World) -> None:
    one_table = statements_of_a_second_night(world, tables=1, checks=3)

    eight_tables = statements_of_a_second_night(world, tables=8, checks=40)

    assert eight_tables == one_table


def test_the_answer_names_each_checks_dataset_by_its_data_source(world: World) -> None:
    client, token = soda_client(world)

    answer = client.post(
        "/api/command", {**nightly_scan(1, 3, 6), "token": token}, content_type="application/json"
    ).json()

    assert sorted({d["dqn"] for check in answer["checks"] for d in check["datasets"]}) == [
        "lake/table_0",
        "lake/table_1",
        "lake/table_2",
    ]


def test_each_result_a_scan_answers_is_the_row_it_stored(world: World) -> None:
    checks = [catalog_ingest.CheckInput(name=f"check {n}") for n in range(3)]
    results = [
        catalog_ingest.ResultInput(
            data_source="warehouse",
            dataset="orders" if n % 2 else "customers",
            check=checks[n % 3],
            outcome=("pass", "warn", "fail")[n % 3],
            value=None if n == 4 else n / 3,
            diagnostics={"n": n, "text": "é ü"},
            data_timestamp=T0 + dt.timedelta(hours=n) if n > 3 else None,
        )
        for n in range(7)
    ]

    scan, stored = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(data_timestamp=T0, results=results), by=world.admin
    )

    rows = list(CheckResult.objects.filter(scan=scan).order_by("id"))
    assert [r.pk for r in stored] == [r.pk for r in rows]
    for sent, answered, row in zip(results, stored, rows, strict=True):
        assert (row.check_ref_id, row.dataset_id) == (answered.check_ref_id, answered.dataset_id)
        assert (row.outcome, row.value, row.diagnostics) == (sent.outcome, sent.value, sent.diagnostics)
        assert row.data_timestamp == (sent.data_timestamp or T0)
        assert row.dataset.name == sent.dataset
        assert row.check_ref.name == sent.check.name
    assert len({row.created_at for row in rows}) == 1
    assert not any(r._state.adding for r in stored)


def test_a_scan_whose_results_are_refused_stores_none_of_them(world: World) -> None:
    client, token = soda_client(world)
    body = nightly_scan(1, 2, 4)
    body["checks"][-1]["outcome"] = "exploded"

    response = client.post(
        "/api/command", json.dumps({**body, "token": token}), content_type="application/json"
    )

    assert response.status_code == 400
    assert not CheckResult.objects.filter(scan__definition_name="nightly").exists()


def test_a_scan_of_metrics_alone_stores_them_and_no_result(world: World) -> None:
    scan, stored = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[],
            measurements=[
                catalog_ingest.MeasurementInput(identity="metric-row-count", metric_name="row_count", value=3)
            ],
        ),
        by=world.admin,
    )

    assert stored == []
    assert not CheckResult.objects.filter(scan=scan).exists()
    assert [m.value for m in scan.measurements.all()] == [3]
