"""Soda Core 3.5.6, unmodified, scans DuckDB tables and publishes into a live Quell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quell.accounts.models import Organization
from quell.catalog import services as catalog
from quell.catalog.models import Check, CheckResult, FailedRowsSample, Measurement, Scan
from quell.incidents.models import Incident, IncidentRule
from tests.conftest import ClientFor, World
from tests.ingest.conftest import make_duckdb, run_in

CHECKS = """
checks for orders:
  - row_count > 0
  - change for row_count < 50
  - change percent for row_count < 50%
  - missing_count(customer_id) = 0:
      name: No missing customers
      attributes:
        domain: sales
  - duplicate_count(order_id) = 0
  - max(amount):
      warn: when > 500
      fail: when > 1000
  - schema:
      fail:
        when required column missing: [order_id, amount]
  - freshness(updated_at) < 1d
"""

ORDERS = [
    "create or replace table orders(order_id integer, customer_id integer, status varchar, "
    "amount decimal(7,1), updated_at timestamp)",
    "insert into orders values (1, 10, 'paid', 100, now()), (2, null, 'shipped', 700, now()), "
    "(2, 12, 'paid', 50, now()), (3, 13, 'paid', 20, now())",
]


class Scanner:
    """One working directory with a DuckDB file, Soda's configuration and a checks file."""

    def __init__(self, venv: Path, workdir: Path, url: str, key: tuple[str, str]) -> None:
        self.venv = venv
        self.workdir = workdir
        self.database = workdir / "shop.duckdb"
        host, port = url.removeprefix("http://").split(":")
        (workdir / "configuration.yml").write_text(
            f"data_source shop:\n  type: duckdb\n  path: {self.database}\n"
            f"soda_cloud:\n  host: {host}\n  port: {port}\n  scheme: http\n"
            f"  api_key_id: {key[0]}\n  api_key_secret: {key[1]}\n"
        )
        (workdir / "checks.yml").write_text(CHECKS)

    def sql(self, *statements: str) -> None:
        make_duckdb(self.venv, self.database, *statements)

    def scan(self) -> tuple[int, str]:
        done = run_in(
            self.venv, "soda", "scan", "-d", "shop", "-c", "configuration.yml", "checks.yml", cwd=self.workdir
        )
        return done.returncode, done.stdout + done.stderr


@pytest.fixture
def scanner(soda3: Path, tmp_path: Path, live_server: Any, world: World) -> Scanner:
    catalog.create_check_attribute_definition(
        by=world.admin, name="domain", attribute_type="singleselect", allowed_values=["sales", "finance"]
    )
    found = Scanner(soda3, tmp_path, live_server.url, world.keys["editor"])
    found.sql(*ORDERS)
    return found


def soda_scans() -> list[Scan]:
    return list(Scan.objects.filter(source="soda-core").order_by("id"))


def results_by_name(scan_id: int) -> dict[str, CheckResult]:
    return {
        r.check_ref.name: r for r in CheckResult.objects.filter(scan_id=scan_id).select_related("check_ref")
    }


def test_a_scan_publishes_its_checks_results_and_values(scanner: Scanner, client_for: ClientFor) -> None:
    code, output = scanner.scan()

    # 2 = some checks failed; 3 or 4 would mean errors or results that were not sent.
    assert code == 2, output
    assert "results not sent" not in output.lower()
    assert "Error while executing Soda Cloud" not in output
    api = client_for("editor")
    datasets = api.get("/datasets", params={"datasourceName": "shop"}).json()["content"]
    assert [d["name"] for d in datasets] == ["orders"]
    checks = {
        c["name"]: c for c in api.get("/checks", params={"datasetId": datasets[0]["id"]}).json()["content"]
    }
    assert {name: c["evaluationStatus"] for name, c in checks.items()} == {
        "row_count > 0": "pass",
        "No missing customers": "fail",
        "duplicate_count(order_id) = 0": "fail",
        "max(amount) warn when > 500 fail when > 1000": "warn",
        "Schema Check": "pass",
        "freshness(updated_at) < 1d": "pass",
    }
    assert checks["No missing customers"]["attributes"] == {"domain": "sales"}
    assert checks["No missing customers"]["column"] == "customer_id"
    values = {
        name: api.get(f"/checks/{c['id']}/results").json()["content"][0]["value"]
        for name, c in checks.items()
    }
    assert values["row_count > 0"] == 4
    assert values["No missing customers"] == 1
    assert values["duplicate_count(order_id) = 0"] == 1
    assert values["max(amount) warn when > 500 fail when > 1000"] == 700
    assert values["freshness(updated_at) < 1d"] is not None


def test_a_check_keeps_soda_identity_and_its_history_across_scans(
    scanner: Scanner, client_for: ClientFor
) -> None:
    scanner.scan()
    scanner.sql("delete from orders where customer_id is null")

    scanner.scan()

    check = Check.objects.get(name="No missing customers")
    assert len(check.identity) == 8
    history = client_for("editor").get(f"/checks/{check.pk}/results").json()["content"]
    assert [r["outcome"] for r in history] == ["pass", "fail"]


def test_change_over_time_checks_evaluate_on_the_second_scan_from_quells_history(scanner: Scanner) -> None:
    code, output = scanner.scan()
    (first,) = soda_scans()
    assert "change for row_count < 50" not in results_by_name(first.pk), output
    scanner.sql("insert into orders values (4, 14, 'paid', 10, now()), (5, 15, 'paid', 10, now())")

    code, output = scanner.scan()

    _, second = soda_scans()
    results = results_by_name(second.pk)
    assert results["change for row_count < 50"].value == 2, output
    assert results["change for row_count < 50"].outcome == "pass"
    assert results["change percent for row_count < 50%"].value == 50
    assert results["change percent for row_count < 50%"].outcome == "fail"
    assert code == 2


def test_metrics_are_kept_as_measurements_of_their_dataset(scanner: Scanner) -> None:
    scanner.scan()

    row_count = Measurement.objects.get(metric_name="row_count")
    assert row_count.value == 4
    assert row_count.dataset is not None
    assert row_count.dataset.name == "orders"
    assert results_by_name(soda_scans()[0].pk)["row_count > 0"].measurement == row_count


def test_failed_row_samples_are_stored_with_the_failing_result(
    scanner: Scanner, client_for: ClientFor
) -> None:
    scanner.scan()

    missing = results_by_name(soda_scans()[0].pk)["No missing customers"]
    samples = client_for("editor").get(f"/checkResults/{missing.pk}/failedRows").json()["samples"]
    assert len(samples) == 1
    assert samples[0]["rows"][0][:3] == [2, None, "shipped"]
    assert [c["name"] for c in samples[0]["columns"]] == [
        "order_id",
        "customer_id",
        "status",
        "amount",
        "updated_at",
    ]
    assert samples[0]["totalRowCount"] == 1


def test_with_samples_disabled_the_client_is_told_and_sends_none(scanner: Scanner) -> None:
    Organization.objects.filter(pk=1).update(collect_failed_rows=False)

    code, output = scanner.scan()

    assert code == 2, output
    assert not FailedRowsSample.objects.exists()
    assert results_by_name(soda_scans()[0].pk)["No missing customers"].outcome == "fail"


def test_the_scan_is_listed_with_its_logs(scanner: Scanner, client_for: ClientFor, world: World) -> None:
    scanner.scan()
    api = client_for("editor")
    dataset_id = api.get("/datasets", params={"datasourceName": "shop"}).json()["content"][0]["id"]

    scans = api.get("/scans", params={"datasetId": dataset_id}).json()["content"]

    assert len(scans) == 1
    assert scans[0]["definitionName"] == "Soda Core CLI"
    assert scans[0]["state"] == "completedWithFailures"
    assert scans[0]["client"] == "SodaCore/3.5.6"
    assert scans[0]["resultCounts"] == {"pass": 3, "warn": 1, "fail": 2, "other": 0}
    logs = api.get(f"/scans/{scans[0]['id']}/logs").json()["content"]
    assert any("Scan summary" in line["message"] for line in logs)


def test_an_incident_can_be_opened_from_a_failed_result(scanner: Scanner, client_for: ClientFor) -> None:
    scanner.scan()
    failed = results_by_name(soda_scans()[0].pk)["duplicate_count(order_id) = 0"]

    response = client_for("editor").post(
        "/incidents", json={"title": "Duplicate orders", "severity": "major", "checkResultIds": [failed.pk]}
    )

    assert response.status_code == 201, response.text
    assert response.json()["checkResults"][0]["checkName"] == "duplicate_count(order_id) = 0"


def test_a_scan_run_twice_folds_its_second_failure_into_the_incident_the_first_opened(
    scanner: Scanner, client_for: ClientFor
) -> None:
    IncidentRule.objects.create(
        name="Sales checks", check_attributes={"domain": "sales"}, severity="critical"
    )

    first, output = scanner.scan()
    second, output_2 = scanner.scan()

    assert (first, second) == (2, 2), output + output_2
    # Only "No missing customers" has the attribute domain: sales; it failed in both scans.
    (incident,) = Incident.objects.all()
    assert incident.rule is not None
    assert incident.rule.name == "Sales checks"
    assert incident.severity == "critical"
    results = list(incident.check_results.select_related("check_ref").order_by("id"))
    assert [r.check_ref.name for r in results] == ["No missing customers"] * 2
    assert len({r.scan_id for r in results}) == 2
    shown = client_for("editor").get(f"/incidents/{incident.pk}").json()
    assert shown["rule"]["name"] == "Sales checks"
