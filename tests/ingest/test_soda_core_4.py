"""Soda Core 4.x, unmodified, verifies a data contract on DuckDB and publishes into a live Quell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quell.catalog.models import Check, CheckResult, Dataset, Scan
from tests.conftest import ClientFor, World
from tests.ingest.conftest import make_duckdb, run_in

CONTRACT = """dataset: crm/main/customers
columns:
  - name: id
    checks:
      - missing:
      - duplicate:
  - name: email
    checks:
      - missing:
  - name: country
    checks:
      - invalid:
          valid_values: [NL, BE, DE]
  - name: updated_at
checks:
  - row_count:
      threshold:
        must_be_greater_than: 10
        level: warn
  - schema:
  - freshness:
      column: updated_at
      threshold:
        unit: hour
        must_be_less_than: 24
"""

CUSTOMERS = [
    "create or replace table customers(id integer, email varchar, country varchar, updated_at timestamp)",
    "insert into customers values (1, 'a@example.com', 'NL', now()), (2, null, 'BE', now()), "
    "(3, 'c@example.com', 'FR', now())",
]

# Soda Core 4.x exit codes: 0 ok, 1 failed checks, 2 warnings only, 3 errors, 4 results not sent.
RESULTS_NOT_SENT = 4


class Verifier:
    def __init__(self, venv: Path, workdir: Path, url: str, key: tuple[str, str]) -> None:
        self.venv = venv
        self.workdir = workdir
        self.database = workdir / "crm.duckdb"
        host, port = url.removeprefix("http://").split(":")
        (workdir / "ds.yml").write_text(
            f"type: duckdb\nname: crm\nconnection:\n  database: {self.database}\n"
        )
        # Soda Core 4.x reads `port` as a string.
        (workdir / "sc.yml").write_text(
            f'soda_cloud:\n  host: {host}\n  port: "{port}"\n  scheme: http\n'
            f"  api_key_id: {key[0]}\n  api_key_secret: {key[1]}\n"
        )
        (workdir / "contract.yml").write_text(CONTRACT)

    def sql(self, *statements: str) -> None:
        make_duckdb(self.venv, self.database, *statements)

    def verify(self) -> tuple[int, str]:
        done = run_in(
            self.venv,
            "soda",
            "contract",
            "verify",
            "-c",
            "contract.yml",
            "-ds",
            "ds.yml",
            "-sc",
            "sc.yml",
            "-p",
            cwd=self.workdir,
        )
        return done.returncode, done.stdout + done.stderr


@pytest.fixture
def verifier(soda4: Path, tmp_path: Path, live_server: Any, world: World) -> Verifier:
    found = Verifier(soda4, tmp_path, live_server.url, world.keys["editor"])
    found.sql(*CUSTOMERS)
    return found


def soda_results() -> dict[str, CheckResult]:
    return {
        r.check_ref.location["checkPath"]: r
        for r in CheckResult.objects.filter(scan__source="soda-core").select_related("check_ref")
    }


def test_a_verification_publishes_its_checks_results_and_values(
    verifier: Verifier, client_for: ClientFor
) -> None:
    code, output = verifier.verify()

    assert code not in (RESULTS_NOT_SENT, 3), output
    assert code == 1, output
    api = client_for("editor")
    datasets = api.get("/datasets", params={"datasourceName": "crm"}).json()["content"]
    assert [d["name"] for d in datasets] == ["main/customers"]
    checks = api.get("/checks", params={"datasetId": datasets[0]["id"]}).json()["content"]
    by_path = {Check.objects.get(pk=c["id"]).location["checkPath"]: c for c in checks}
    assert {path: c["evaluationStatus"] for path, c in by_path.items()} == {
        "columns.id.checks.missing": "pass",
        "columns.id.checks.duplicate": "pass",
        "columns.email.checks.missing": "fail",
        "columns.country.checks.invalid": "fail",
        "checks.row_count": "warn",
        "checks.schema": "pass",
        "checks.freshness": "pass",
    }
    results = soda_results()
    assert results["columns.email.checks.missing"].value == 1
    assert results["checks.row_count"].value == 3
    assert results["checks.schema"].diagnostics["v4"]["type"] == "schema"
    assert by_path["columns.email.checks.missing"]["column"] == "email"
    assert by_path["checks.row_count"]["type"] == "row_count"


def test_the_verified_contract_is_kept_on_the_dataset(verifier: Verifier, client_for: ClientFor) -> None:
    verifier.verify()

    dataset = Dataset.objects.get(data_source__name="crm")
    contract = client_for("editor").get(f"/datasets/{dataset.pk}/contract").json()
    assert contract["contract"] == CONTRACT
    assert contract["filePath"] == "contract.yml"


def test_the_client_is_told_the_scan_id_and_link(verifier: Verifier) -> None:
    _code, output = verifier.verify()

    scan = Scan.objects.get(source="soda-core")
    assert "Results sent to Soda Cloud" in output
    dataset = Dataset.objects.get(data_source__name="crm")
    assert f"/datasets/{dataset.pk}" in output
    assert "4.28.0" in scan.client
    assert scan.data_source is not None
    assert scan.data_source.type == "duckdb"


def test_a_check_keeps_its_identity_and_history_across_verifications(
    verifier: Verifier, client_for: ClientFor
) -> None:
    verifier.verify()
    verifier.sql("update customers set email = 'b@example.com' where id = 2")

    verifier.verify()

    check = Check.objects.get(location__checkPath="columns.email.checks.missing")
    history = client_for("editor").get(f"/checks/{check.pk}/results").json()["content"]
    assert [r["outcome"] for r in history] == ["pass", "fail"]


def test_an_incident_can_be_opened_from_a_failed_result(verifier: Verifier, client_for: ClientFor) -> None:
    verifier.verify()
    failed = soda_results()["columns.country.checks.invalid"]

    response = client_for("editor").post(
        "/incidents", json={"title": "Unknown countries", "severity": "minor", "checkResultIds": [failed.pk]}
    )

    assert response.status_code == 201, response.text
    assert response.json()["datasets"][0]["name"] == "main/customers"
