"""`quell ingest` and /imports: dbt, Great Expectations and Soda results files, on real artifacts.

The dbt and GX artifacts in fixtures/ were made by running those tools on a small shop dataset
with scripts/make_ingest_fixtures.py.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from tests.conftest import OWN_SQLITE_DATA_DIR, ClientFor, World
from tests.ingest.conftest import FIXTURES, captured_upload

DBT = FIXTURES / "dbt"
GX = FIXTURES / "gx"


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count() for model in (DataSource, Dataset, Check, CheckResult, Scan)
    }


def ingest(*args: str) -> str:
    out = StringIO()
    call_command("ingest", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def outcomes_by_check(source: str) -> dict[str, tuple[str, str, float | None]]:
    return {
        r.check_ref.name: (r.dataset.name, r.outcome, r.value)
        for r in CheckResult.objects.filter(scan__source=source).select_related("check_ref", "dataset")
    }


def test_dbt_tests_become_checks_on_the_models_they_test(world: World) -> None:
    output = ingest(
        "dbt", str(DBT / "run_results.json"), str(DBT / "manifest.json"), "--email", "editor@example.com"
    )

    assert "8 results" in output
    assert outcomes_by_check("dbt") == {
        "not_null(id)": ("stg_customers", "pass", 0),
        "unique(id)": ("stg_customers", "pass", 0),
        "accepted_values(status)": ("stg_orders", "fail", 1),
        "not_null(customer_id)": ("stg_orders", "warn", 1),
        "not_null(order_id)": ("stg_orders", "pass", 0),
        "orders_amount_at_most_1000": ("stg_orders", "pass", 0),
        "relationships(customer_id)": ("stg_orders", "fail", 1),
        "unique(order_id)": ("stg_orders", "fail", 1),
    }
    check = Check.objects.get(name="unique(order_id)")
    assert check.identity == "test.shop.unique_stg_orders_order_id.e3b841c71a"
    assert check.column == "order_id"
    assert check.dataset.data_source.name == "shop"
    assert Scan.objects.get(source="dbt").client.startswith("dbt 1.")


def test_importing_the_same_dbt_run_twice_stores_it_once(world: World) -> None:
    args = ("dbt", str(DBT / "run_results.json"), str(DBT / "manifest.json"), "--email", "editor@example.com")
    ingest(*args)

    ingest(*args)

    assert Scan.objects.filter(source="dbt").count() == 1


def test_a_dbt_data_source_can_be_named(world: World) -> None:
    ingest(
        "dbt",
        str(DBT / "run_results.json"),
        str(DBT / "manifest.json"),
        "--data-source",
        "warehouse_prod",
        "--email",
        "editor@example.com",
    )

    assert set(Dataset.objects.filter(data_source__name="warehouse_prod").values_list("name", flat=True)) == {
        "stg_orders",
        "stg_customers",
    }


def test_a_manifest_from_another_project_is_one_clear_error_and_writes_nothing(
    world: World, tmp_path: Path
) -> None:
    manifest = json.loads((DBT / "manifest.json").read_text())
    manifest["nodes"] = {
        k: v for k, v in manifest["nodes"].items() if not k.startswith("test.shop.unique_stg_orders")
    }
    other = tmp_path / "manifest.json"
    other.write_text(json.dumps(manifest))
    before = counts()

    with pytest.raises(CommandError) as raised:
        ingest("dbt", str(DBT / "run_results.json"), str(other), "--email", "editor@example.com")

    assert str(other) in str(raised.value)
    assert "test.shop.unique_stg_orders_order_id.e3b841c71a" in str(raised.value)
    assert counts() == before


def test_a_file_that_is_not_json_is_one_clear_error_naming_it(world: World, tmp_path: Path) -> None:
    broken = tmp_path / "run_results.json"
    broken.write_text('{"results": [')
    before = counts()

    with pytest.raises(CommandError) as raised:
        ingest("dbt", str(broken), str(DBT / "manifest.json"), "--email", "editor@example.com")

    assert str(raised.value).startswith(f"{broken}: is not JSON")
    assert counts() == before


def test_a_run_results_file_that_is_not_dbt_is_one_clear_error(world: World) -> None:
    with pytest.raises(CommandError) as raised:
        ingest(
            "dbt",
            str(GX / "validation_result.json"),
            str(DBT / "manifest.json"),
            "--email",
            "editor@example.com",
        )

    assert str(raised.value).startswith(f"{GX / 'validation_result.json'}: is not a dbt run_results.json")


def test_gx_expectations_become_checks_on_their_data_asset(world: World) -> None:
    output = ingest("gx", str(GX / "validation_result.json"), "--email", "editor@example.com")

    assert "6 results" in output
    assert outcomes_by_check("great_expectations") == {
        "expect_table_row_count_to_be_between": ("orders", "pass", 5),
        "expect_column_values_to_not_be_null(customer_id)": ("orders", "fail", 1),
        "expect_column_values_to_be_unique(order_id)": ("orders", "fail", 2),
        "expect_column_values_to_be_in_set(status)": ("orders", "fail", 1),
        "expect_column_values_to_be_between(amount)": ("orders", "pass", 0),
        # Its severity is "warning", so a failure warns.
        "expect_column_mean_to_be_between(amount)": ("orders", "warn", 180),
    }
    assert Dataset.objects.get(name="orders", data_source__name="shop")


def test_a_gx_checkpoint_result_feeds_the_same_checks_as_a_validation_result(world: World) -> None:
    ingest("gx", str(GX / "validation_result.json"), "--email", "editor@example.com")
    checks_before = Check.objects.count()

    ingest("gx", str(GX / "checkpoint_result.json"), "--email", "editor@example.com")

    assert Check.objects.count() == checks_before
    assert Check.objects.get(name="expect_column_values_to_be_unique(order_id)").results.count() == 2


def test_a_json_file_that_is_no_gx_result_is_one_clear_error(world: World) -> None:
    with pytest.raises(CommandError) as raised:
        ingest("gx", str(DBT / "run_results.json"), "--email", "editor@example.com")

    assert "is neither a validation result" in str(raised.value)


def test_a_soda_results_file_is_stored_like_an_upload(world: World, tmp_path: Path) -> None:
    body = copy.deepcopy(captured_upload("soda-core-3.5.6-upload.json")["sodaCoreInsertScanResults"]["body"])
    for key in ("type", "token"):
        body.pop(key)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(body))

    output = ingest("soda", str(path), "--email", "editor@example.com")

    assert "6 results" in output
    assert Check.objects.get(identity="97b33376").name == "invalid_percent(status) < 5%"
    assert Scan.objects.get(source="soda-core").client == "soda scan -srf"


def test_an_import_as_a_user_without_manage_checks_is_refused(world: World, tmp_path: Path) -> None:
    body = copy.deepcopy(captured_upload("soda-core-3.5.6-upload.json")["sodaCoreInsertScanResults"]["body"])
    body["checks"] = [{**c, "dataSource": "warehouse"} for c in body["checks"]]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(body))
    before = counts()

    with pytest.raises(CommandError, match="Manage checks"):
        ingest("soda", str(path), "--email", "viewer@example.com")

    assert counts() == before


@pytest.mark.one_database(reason=OWN_SQLITE_DATA_DIR)
def test_an_import_shows_a_progress_bar_on_a_terminal(world: World, tmp_path: Path) -> None:
    # A separate installation on SQLite in tmp_path, whichever database the suite runs on.
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_DATABASE")}
    env["QUELL_DATA_DIR"] = str(tmp_path)
    subprocess.run([sys.executable, "-m", "quell", "migrate", "-v0"], env=env, check=True, timeout=300)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "quell",
            "createadmin",
            "--email",
            "ops@example.com",
            "--password",
            "long enough pw",
        ],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    # A pseudo-terminal, so the command believes a person is watching.
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "quell",
            "ingest",
            "gx",
            str(GX / "validation_result.json"),
            "--email",
            "ops@example.com",
        ],
        env=env,
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
        check=False,
    )
    os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 65536):
            shown += chunk
    except OSError:
        pass
    os.close(leader)

    assert done.returncode == 0, shown
    assert b"Storing" in shown
    assert b"6/6" in shown
    assert b"Scan " in done.stdout


# --- The same imports over the REST API -----------------------------------------------------------


def test_dbt_artifacts_can_be_posted_to_the_api(client_for: ClientFor) -> None:
    response = client_for("editor").post(
        "/imports/dbt",
        json={
            "runResults": json.loads((DBT / "run_results.json").read_text()),
            "manifest": json.loads((DBT / "manifest.json").read_text()),
        },
    )

    assert response.status_code == 201, response.text
    assert len(response.json()["results"]) == 8


def test_a_gx_result_can_be_posted_to_the_api(client_for: ClientFor) -> None:
    response = client_for("editor").post(
        "/imports/greatExpectations", json={"result": json.loads((GX / "validation_result.json").read_text())}
    )

    assert response.status_code == 201, response.text
    assert sorted(r["outcome"] for r in response.json()["results"]) == [
        "fail",
        "fail",
        "fail",
        "pass",
        "pass",
        "warn",
    ]


def test_a_malformed_document_posted_to_the_api_is_a_422_naming_it(client_for: ClientFor) -> None:
    before = counts()

    response = client_for("editor").post("/imports/greatExpectations", json={"result": {"statistics": {}}})

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_file"
    assert response.json()["message"].startswith("result:")
    assert counts() == before
