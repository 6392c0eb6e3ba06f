"""Soda's protocol message by message, with the shapes real clients send (captured in fixtures/soda)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from quell.accounts.models import ApiKey, Organization, User
from quell.catalog import ingest as catalog_ingest
from quell.catalog import services as catalog
from quell.catalog.models import (
    Check,
    CheckResult,
    ContractUpload,
    Dataset,
    DataSource,
    FailedRowsSample,
    Measurement,
    Scan,
)
from quell.ingest.models import SodaToken
from tests.conftest import World
from tests.ingest.conftest import SodaFor, captured_upload

V3 = captured_upload("soda-core-3.5.6-upload.json")
V4 = captured_upload("soda-core-4.28.0-upload.json")


def v3_insert(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(V3["sodaCoreInsertScanResults"]["body"])
    body.pop("token")
    body.update(changes)
    return body


def v4_insert(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(V4["sodaCoreInsertScanResults"]["body"])
    body.pop("token")
    body.update(changes)
    return body


def counts() -> dict[str, int]:
    """Rows an upload could write, to show that a refused one wrote none."""
    models = (DataSource, Dataset, Check, CheckResult, Scan, Measurement, FailedRowsSample, ContractUpload)
    return {model.__name__: model.objects.count() for model in models}


def history_query(
    kind: str, column: str, identity: str, *extra: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A 3.x history query as `soda/cloud/soda_cloud.py` builds it."""
    equals = {
        "type": "equals",
        "left": {"type": "columnValue", "columnName": column},
        "right": {"type": "string", "value": identity},
    }
    return {"type": kind, "filter": {"type": "and", "andExpressions": [equals, *extra]}, **fields}


def time_bound(kind: str, moment: dt.datetime) -> dict[str, Any]:
    return {
        "type": kind,
        "left": {"type": "columnValue", "columnName": "measurement.dataTime"},
        "right": {"type": "time", "scanTime": False, "time": moment.isoformat()},
    }


# --- Login and tokens -----------------------------------------------------------------------------


def test_login_with_an_api_key_answers_a_token(soda_for: SodaFor) -> None:
    soda = soda_for("editor")

    token = soda.login()

    assert SodaToken.objects.get().user.email == "editor@example.com"
    assert soda.query({"type": "sodaCoreCloudConfiguration"}, token).status_code == 200


def test_login_with_a_wrong_secret_is_refused_with_401(soda_for: SodaFor, world: World) -> None:
    soda = soda_for("editor")

    response = soda.http.post(
        "/api/command", json={"type": "login", "apiKeyId": world.keys["editor"][0], "apiKeySecret": "wrong"}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert not SodaToken.objects.exists()


def test_login_without_a_secret_is_a_400_naming_it(soda_for: SodaFor, world: World) -> None:
    response = soda_for("editor").http.post("/api/command", json={"type": "login", "apiKeyId": "k"})

    assert response.status_code == 400
    assert "apiKeySecret" in response.json()["message"]


def test_the_captured_login_body_shape_is_accepted(soda_for: SodaFor, world: World) -> None:
    body = {
        **V3["login"]["body"],
        "apiKeyId": world.keys["viewer"][0],
        "apiKeySecret": world.keys["viewer"][1],
    }

    response = soda_for("viewer").http.post("/api/command", json=body)

    assert response.status_code == 200
    assert response.json()["token"]


def test_an_expired_token_gets_401_so_the_client_logs_in_again(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    token = soda.login()
    SodaToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = soda.query({"type": "sodaCoreCloudConfiguration"}, token)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_an_unknown_token_gets_401(soda_for: SodaFor) -> None:
    response = soda_for("editor").query({"type": "sodaCoreCloudConfiguration"}, "made-up-token")

    assert response.status_code == 401


def test_a_request_without_a_token_gets_401(soda_for: SodaFor) -> None:
    response = soda_for("editor").http.post("/api/query", json={"type": "sodaCoreCloudConfiguration"})

    assert response.status_code == 401


def test_revoking_the_api_key_ends_its_tokens(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    token = soda.login()
    ApiKey.objects.filter(key_id=soda.key[0]).update(revoked_at=timezone.now())

    assert soda.query({"type": "whoAmI"}, token).status_code == 401


def test_a_deactivated_users_token_stops_working(soda_for: SodaFor, world: World) -> None:
    soda = soda_for("editor")
    token = soda.login()
    User.objects.filter(pk=world.editor.pk).update(is_active=False)

    assert soda.query({"type": "whoAmI"}, token).status_code == 401


# --- Malformed and unknown messages ---------------------------------------------------------------


def test_an_unknown_type_is_a_400_naming_it_and_writes_nothing(soda_for: SodaFor) -> None:
    before = counts()

    response = soda_for("editor").command({**v3_insert(), "type": "sodaCoreDoSomethingNew"})

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_type"
    assert "sodaCoreDoSomethingNew" in response.json()["message"]
    assert counts() == before


def test_a_query_sent_as_a_command_is_pointed_at_the_query_endpoint(soda_for: SodaFor) -> None:
    response = soda_for("editor").command({"type": "sodaCoreCloudConfiguration"})

    assert response.status_code == 400
    assert response.json()["code"] == "wrong_endpoint"
    assert "/api/query" in response.json()["message"]


def test_a_soda_cloud_only_feature_is_refused_by_name(soda_for: SodaFor) -> None:
    response = soda_for("editor").command({"type": "sodaCorePublishContract", "contract": {}})

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_type"
    assert "sodaCorePublishContract" in response.json()["message"]


@pytest.mark.parametrize(
    ("content", "code"),
    [("{not json", "invalid_json"), ("[1, 2]", "invalid_request"), ('{"token": "x"}', "invalid_request")],
)
def test_a_body_that_is_not_a_typed_json_object_is_a_400(soda_for: SodaFor, content: str, code: str) -> None:
    response = soda_for("editor").http.post(
        "/api/command", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_an_insert_without_a_data_timestamp_is_a_400_naming_it_and_writes_nothing(soda_for: SodaFor) -> None:
    body = v3_insert()
    del body["dataTimestamp"]
    before = counts()

    response = soda_for("editor").command(body)

    assert response.status_code == 400
    assert "dataTimestamp" in response.json()["message"]
    assert counts() == before


def test_one_check_with_an_unknown_outcome_refuses_the_whole_insert(soda_for: SodaFor) -> None:
    body = v3_insert()
    body["checks"][-1]["outcome"] = "exploded"
    before = counts()

    response = soda_for("editor").command(body)

    assert response.status_code == 400
    assert "outcome" in response.json()["message"]
    assert counts() == before


def test_text_with_a_nul_character_is_refused(soda_for: SodaFor) -> None:
    body = v3_insert(definitionName="nightly\x00")

    response = soda_for("editor").command(body)

    assert response.status_code == 400


def test_text_with_an_unpaired_surrogate_is_refused_and_writes_nothing(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    body = {**v3_insert(), "token": soda.login()}
    body["checks"][0]["diagnostics"] = {"note": "half a pair \ud800"}
    before = counts()

    # As a \u escape: JSON text in UTF-8 cannot carry the surrogate itself.
    response = soda.http.post(
        "/api/command", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert "surrogate" in response.json()["message"]
    assert counts() == before


def test_an_escaped_backslash_before_u0000_is_plain_text(soda_for: SodaFor) -> None:
    body = v3_insert(definitionName="nightly \\u0000 \\ud800")

    response = soda_for("editor").command(body)

    assert response.status_code == 200, response.text
    assert Scan.objects.get(pk=int(response.json()["scanId"])).definition_name == "nightly \\u0000 \\ud800"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_body_in_another_json_encoding_is_read_as_before(soda_for: SodaFor, encoding: str) -> None:
    soda = soda_for("editor")
    body = {**v3_insert(definitionName="nächtlich"), "token": soda.login()}

    response = soda.http.post(
        "/api/command",
        content=json.dumps(body, ensure_ascii=False).encode(encoding),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    assert Scan.objects.get(pk=int(response.json()["scanId"])).definition_name == "nächtlich"


# --- Soda Core 3.x ----------------------------------------------------------------------------------


def test_cloud_configuration_says_samples_are_collected(soda_for: SodaFor) -> None:
    body = {k: v for k, v in V3["sodaCoreCloudConfiguration"]["body"].items() if k != "token"}

    response = soda_for("editor").query(body)

    assert response.json() == {"disableCollectingWarehouseData": False}


def test_cloud_configuration_says_when_an_admin_disabled_samples(soda_for: SodaFor, world: World) -> None:
    catalog.update_failed_rows_settings(by=world.admin, collect=False)

    response = soda_for("editor").query({"type": "sodaCoreCloudConfiguration"})

    assert response.json() == {"disableCollectingWarehouseData": True}


def test_available_check_attributes_are_those_an_admin_defined(soda_for: SodaFor, world: World) -> None:
    catalog.create_check_attribute_definition(
        by=world.admin, name="domain", attribute_type="singleselect", allowed_values=["sales", "finance"]
    )
    catalog.create_check_attribute_definition(by=world.admin, name="critical", attribute_type="checkbox")

    response = soda_for("editor").query({"type": "sodaCoreAvailableCheckAttributes"})

    results = {r["name"]: r for r in response.json()["results"]}
    assert results["domain"]["type"] == "singleselect"
    assert results["domain"]["allowedValues"] == ["sales", "finance"]
    assert results["critical"]["allowedValues"] == [True, False]


def test_an_insert_stores_the_scan_its_checks_results_and_metrics(soda_for: SodaFor, world: World) -> None:
    response = soda_for("editor").command(v3_insert())

    assert response.status_code == 200, response.text
    scan = Scan.objects.get(pk=int(response.json()["scanId"]))
    assert scan.definition_name == "Soda Core CLI"
    assert scan.created_by == world.editor
    assert scan.state == "completedWithFailures"
    assert [ds.name for ds in scan.datasets.all()] == ["orders"]
    results = {r.check_ref.name: r for r in scan.results.select_related("check_ref")}
    assert results["invalid_percent(status) < 5%"].value == 25.0
    assert results["invalid_percent(status) < 5%"].check_ref.identity == "97b33376"
    assert results["Schema Check"].outcome == "pass"
    assert results["max(amount) warn when > 500 fail when > 1000"].diagnostics["warn"] == {
        "greaterThan": 500.0
    }
    assert len(scan.logs) == 23
    assert Measurement.objects.filter(scan=scan).count() == 7
    assert {m.dataset.name for m in Measurement.objects.filter(scan=scan) if m.dataset} == {"orders"}


def test_a_retried_insert_of_the_same_scan_stores_it_once(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    first = soda.command(v3_insert())

    again = soda.command(v3_insert())

    assert again.status_code == 200
    assert again.json()["scanId"] == first.json()["scanId"]
    assert Scan.objects.filter(source="soda-core").count() == 1
    assert CheckResult.objects.filter(scan__source="soda-core").count() == 6


def test_an_editor_without_manage_checks_on_an_existing_dataset_is_refused(soda_for: SodaFor) -> None:
    body = v3_insert(defaultDataSource="warehouse")
    for check in body["checks"]:
        check["dataSource"] = "warehouse"
    before = counts()

    response = soda_for("viewer").command(body)

    assert response.status_code == 403
    assert "Manage checks" in response.json()["message"]
    assert counts() == before


def test_a_user_who_cannot_see_an_existing_dataset_is_refused_without_learning_of_it(
    soda_for: SodaFor,
) -> None:
    body = v3_insert()
    for check in body["checks"]:
        check["dataSource"] = "warehouse"
    before = counts()

    response = soda_for("outsider").command(body)

    assert response.status_code == 403
    assert "Manage checks" not in response.json()["message"]
    assert counts() == before


def stored_measurement(world: World, identity: str, value: float, when: dt.datetime) -> None:
    catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=when,
            results=[],
            measurements=[
                catalog_ingest.MeasurementInput(
                    identity=identity,
                    metric_name="row_count",
                    value=value,
                    data_source="warehouse",
                    dataset="orders",
                )
            ],
        ),
        by=world.admin,
    )


ROW_COUNT = "metric-Soda Core CLI-warehouse-orders-row_count"


def test_historic_measurements_answer_newest_first_with_soda_fields(soda_for: SodaFor, world: World) -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for day, value in enumerate([10, 20, 30]):
        stored_measurement(world, ROW_COUNT, value, start + dt.timedelta(days=day))
    stored_measurement(world, ROW_COUNT + "-other", 99, start)

    response = soda_for("editor").query(
        history_query("sodaCoreHistoricMeasurements", "metric.identity", ROW_COUNT, limit=100)
    )

    rows = response.json()["results"]
    assert [r["value"] for r in rows] == [30, 20, 10]
    assert {r["identity"] for r in rows} == {ROW_COUNT}
    assert rows[0]["dataTime"].startswith("2026-11-03T00:00:00")
    assert all(isinstance(r["id"], str) for r in rows)


def test_historic_measurements_respect_the_limit_and_time_bounds(soda_for: SodaFor, world: World) -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for day in range(5):
        stored_measurement(world, ROW_COUNT, day, start + dt.timedelta(days=day))
    soda = soda_for("editor")

    limited = soda.query(history_query("sodaCoreHistoricMeasurements", "metric.identity", ROW_COUNT, limit=2))
    bounded = soda.query(
        history_query(
            "sodaCoreHistoricMeasurements",
            "metric.identity",
            ROW_COUNT,
            time_bound("greaterThanOrEqual", start + dt.timedelta(days=1)),
            time_bound("lessThanOrEqual", start + dt.timedelta(days=2, hours=23)),
        )
    )

    assert [r["value"] for r in limited.json()["results"]] == [4, 3]
    assert [r["value"] for r in bounded.json()["results"]] == [2, 1]


def test_history_of_a_dataset_the_caller_cannot_see_is_not_answered(soda_for: SodaFor, world: World) -> None:
    stored_measurement(world, ROW_COUNT, 10, dt.datetime(2026, 11, 1, tzinfo=dt.UTC))

    response = soda_for("outsider").query(
        history_query("sodaCoreHistoricMeasurements", "metric.identity", ROW_COUNT)
    )

    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_a_history_filter_on_an_unknown_column_is_a_400_naming_it(soda_for: SodaFor) -> None:
    response = soda_for("editor").query(
        history_query(
            "sodaCoreHistoricMeasurements",
            "metric.identity",
            ROW_COUNT,
            {"type": "like", "left": {"type": "columnValue", "columnName": "metric.name"}},
        )
    )

    assert response.status_code == 400
    assert "metric.name" in response.json()["message"]


def test_historic_check_results_link_each_result_to_its_measurement(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    soda.command(v3_insert())

    response = soda.query(
        history_query("sodaCoreHistoricCheckResults", "check.identity", "9a95b989", limit=100)
    )

    (row,) = response.json()["results"]
    assert row["identity"] == "9a95b989"
    assert row["outcome"] == "pass"
    assert row["metrics"] == ["metric-Soda Core CLI-shop-orders-row_count"]
    measurement = Measurement.objects.get(pk=int(row["measurementId"]))
    assert measurement.identity == "metric-Soda Core CLI-shop-orders-row_count"
    assert row["diagnostics"]["value"] == 4


def upload(soda_client: Any, token: str, data: bytes) -> Any:
    return soda_client.http.post(
        "/api/scan/upload",
        content=data,
        headers={
            "Authorization": token,
            "Content-Type": "application/octet-stream",
            "Is-V3": "true",
            "File-Path": "soda_core_cli_20261126_20261126/orders_customer_id_failed_rows.jsonl",
        },
    )


def test_a_sample_upload_answers_a_file_id_and_the_insert_attaches_it(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    token = soda.login()
    uploaded = upload(soda, token, b'[2, null, "shipped", 700.0]\n')
    body = v3_insert()
    block = body["checks"][2]["diagnostics"]["blocks"][0]
    block["file"]["reference"] = {"type": "sodaCloudStorage", "fileId": uploaded.json()["fileId"]}

    soda.command(body, token)

    sample = FailedRowsSample.objects.get()
    assert sample.check_result is not None
    assert sample.check_result.check_ref.name == "No missing customers"
    assert sample.stored_row_count == 1
    assert [c["name"] for c in sample.columns] == ["order_id", "customer_id", "status", "amount"]


def test_a_sample_over_the_size_limit_keeps_only_its_first_whole_rows(soda_for: SodaFor) -> None:
    Organization.objects.filter(pk=1).update(failed_rows_max_bytes=1024)
    soda = soda_for("editor")
    rows = b"".join(json.dumps([n, "x" * 40]).encode() + b"\n" for n in range(100))

    response = upload(soda, soda.login(), rows)

    assert response.status_code == 200
    sample = FailedRowsSample.objects.get(file_id=response.json()["fileId"])
    assert sample.truncated
    assert 0 < sample.stored_row_count < 100
    assert sample.byte_size <= 1024
    assert all(json.loads(line) for line in sample.content.splitlines())


def test_a_sample_upload_is_refused_when_samples_are_disabled(soda_for: SodaFor) -> None:
    Organization.objects.filter(pk=1).update(collect_failed_rows=False)
    soda = soda_for("editor")

    response = upload(soda, soda.login(), b"[1]\n")

    assert response.status_code == 403
    assert response.json()["code"] == "soda_core_uploads_disabled"
    assert not FailedRowsSample.objects.exists()


def test_a_sample_upload_with_a_bad_token_gets_401(soda_for: SodaFor) -> None:
    response = upload(soda_for("editor"), "not-a-token", b"[1]\n")

    assert response.status_code == 401


def test_a_sample_that_is_not_json_lines_is_a_400(soda_for: SodaFor) -> None:
    soda = soda_for("editor")

    response = upload(soda, soda.login(), b"order_id,status\n1,paid\n")

    assert response.status_code == 400
    assert "Line 1" in response.json()["message"]


# --- Soda Core 4.x ----------------------------------------------------------------------------------


def test_who_am_i_answers_for_the_token(soda_for: SodaFor) -> None:
    response = soda_for("editor").query({"type": "whoAmI"})

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "editor@example.com"


def test_datasets_configuration_answers_each_dataset_in_order(soda_for: SodaFor) -> None:
    body = {k: v for k, v in V4["sodaCoreDatasetsConfiguration"]["body"].items() if k != "token"}

    response = soda_for("editor").query(body)

    assert response.json() == {
        "results": [
            {"datasetQualifiedName": "crm4/main/customers", "table": "customers", "collectFailedRows": True}
        ]
    }


def insert_v4(soda: Any, **changes: Any) -> Any:
    token = soda.login()
    contents = V4["sodaCoreUploadContractFile"]["body"]["contents"]
    uploaded = soda.command({"type": "sodaCoreUploadContractFile", "contents": contents}, token)
    assert uploaded.status_code == 200, uploaded.text
    body = v4_insert(**changes)
    body["contract"]["fileId"] = uploaded.json()["fileId"]
    return soda.command(body, token)


def test_a_v4_insert_answers_the_scan_id_link_and_check_ids(soda_for: SodaFor) -> None:
    response = insert_v4(soda_for("editor"))

    assert response.status_code == 200, response.text
    body = response.json()
    scan = Scan.objects.get(pk=int(body["scanId"]))
    dataset = Dataset.objects.get(data_source__name="crm4")
    assert dataset.name == "main/customers"
    assert body["cloudUrl"].endswith(f"/datasets/{dataset.pk}")
    assert len(body["checks"]) == 6
    missing_email = Check.objects.get(identity="348c1958")
    assert {
        "id": str(missing_email.pk),
        "identities": ["348c1958"],
        "datasets": [{"id": str(dataset.pk), "dqn": "crm4/main/customers"}],
    } in body["checks"]
    assert scan.data_source is not None
    assert scan.data_source.type == "duckdb"


def test_a_v4_insert_keeps_the_uploaded_contract_on_the_dataset(soda_for: SodaFor) -> None:
    insert_v4(soda_for("editor"))

    dataset = Dataset.objects.get(data_source__name="crm4")
    assert dataset.contract == V4["sodaCoreUploadContractFile"]["body"]["contents"]
    assert dataset.contract_file_path == "contract.yml"


def test_a_v4_insert_naming_a_contract_never_uploaded_is_a_400_and_writes_nothing(soda_for: SodaFor) -> None:
    before = counts()

    response = soda_for("editor").command(v4_insert())

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_contract"
    assert counts() == before


def test_excluded_and_unevaluated_outcomes_are_kept_as_such(soda_for: SodaFor) -> None:
    body = v4_insert(resultsIngestionMode="partial")
    body["checks"][0]["outcome"] = "excluded"
    body["checks"][1]["outcome"] = "unevaluated"
    del body["contract"]

    soda_for("editor").command(body)

    assert Check.objects.get(identity="46fd1612").last_outcome == "excluded"
    assert Check.objects.get(identity="9766a1fd").last_outcome == "unevaluated"


def test_v4_history_queries_answer_the_shapes_the_client_reads(soda_for: SodaFor, world: World) -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for day in range(3):
        stored_measurement(world, ROW_COUNT, day, start + dt.timedelta(days=day))
    soda = soda_for("editor")

    latest = soda.query(
        {"type": "sodaCoreHistoricMeasurements2", "metricIdentities": [ROW_COUNT], "limit": 1}
    )
    ranged = soda.query(
        {
            "type": "sodaCoreHistoricMeasurements2",
            "metricIdentities": [ROW_COUNT, "metric-nothing"],
            "minScanTime": "2026-11-01T12:00:00.000+00:00",
            "maxScanTime": "2026-11-03T00:00:00.000+00:00",
        }
    )

    assert [(r["identity"], r["value"]) for r in latest.json()["results"]] == [(ROW_COUNT, 2)]
    assert [r["value"] for r in ranged.json()["results"]] == [2, 1]


def test_v4_check_result_history_carries_identity_measurement_and_outcome(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    soda.command(v3_insert())

    response = soda.query(
        {"type": "sodaCoreHistoricCheckResults2", "checkIdentities": ["aa0658cb"], "limit": 10}
    )

    (row,) = response.json()["results"]
    assert row["identity"] == "aa0658cb"
    assert row["outcome"] == "fail"
    assert row["measurementId"] is not None


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({}, "limit"),
        ({"limit": 5, "minScanTime": "2026-11-01T00:00:00.000+00:00"}, "limit"),
        ({"limit": 5, "metricIdentities": [f"m{i}" for i in range(501)]}, "500"),
    ],
)
def test_a_v4_history_query_needs_a_range_or_a_limit_and_at_most_500_identities(
    soda_for: SodaFor, extra: dict[str, Any], problem: str
) -> None:
    body = {"type": "sodaCoreHistoricMeasurements2", "metricIdentities": [ROW_COUNT], **extra}

    response = soda_for("editor").query(body)

    assert response.status_code == 400
    assert problem in response.json()["message"]


def test_marking_a_scan_failed_records_it_with_its_logs(soda_for: SodaFor) -> None:
    soda = soda_for("editor")
    inserted = insert_v4(soda)
    scan_id = inserted.json()["scanId"]
    logs = [
        {
            "level": "error",
            "message": "warehouse unreachable",
            "timestamp": "2026-11-26T15:35:13+00:00",
            "index": 0,
        }
    ]

    response = soda.command({"type": "sodaCoreMarkScanFailed", "scanId": scan_id, "logs": logs})

    assert response.status_code == 200
    scan = Scan.objects.get(pk=int(scan_id))
    assert scan.state == "failed"
    assert scan.logs[-1]["message"] == "warehouse unreachable"


def test_marking_an_unknown_scan_failed_keeps_the_failure_as_a_scan(soda_for: SodaFor, world: World) -> None:
    response = soda_for("editor").command(
        {
            "type": "sodaCoreMarkScanFailed",
            "scanId": "managed-42",
            "logs": [{"level": "error", "message": "boom"}],
        }
    )

    assert response.status_code == 200
    scan = Scan.objects.get(external_id="managed-42")
    assert scan.state == "failed"
    assert scan.created_by == world.editor
