"""Pushing check results from any tool: POST /checkResults."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from django.conf import LazySettings

from quell.accounts.models import Organization
from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from tests.conftest import ClientFor, World

WHEN = "2026-11-02T06:00:00Z"


def result(
    dataset: str,
    check: str,
    outcome: str = "fail",
    value: float | None = 1,
    data_source: str = "lake",
    identity: str | None = None,
) -> dict[str, Any]:
    return {
        "dataSource": data_source,
        "dataset": dataset,
        "check": {"name": check} if identity is None else {"name": check, "identity": identity},
        "outcome": outcome,
        "value": value,
    }


def push(client: httpx.Client, *results: dict[str, Any], **extra: Any) -> httpx.Response:
    return client.post("/checkResults", json={"dataTimestamp": WHEN, "results": list(results), **extra})


def counts() -> dict[str, int]:
    """How many rows ingestion could have written, to show that a refused push wrote none."""
    return {
        model.__name__: model.objects.count() for model in (DataSource, Dataset, Check, CheckResult, Scan)
    }


def test_a_push_creates_the_data_source_the_dataset_and_the_checks(
    client_for: ClientFor, world: World
) -> None:
    response = push(
        client_for("editor"),
        result("events", "row_count > 0", "pass", 120),
        result("events", "missing_count(user_id) = 0", "warn", 4),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    events = Dataset.objects.get(data_source__name="lake", name="events")
    scan = Scan.objects.get(pk=body["scanId"])
    assert scan.created_by == world.editor
    stored = {r.pk: r for r in CheckResult.objects.filter(scan=scan)}
    assert [r["id"] for r in body["results"]] == sorted(stored)
    for item in body["results"]:
        assert item["datasetId"] == events.pk
        assert item["checkId"] == stored[item["id"]].check_ref_id
    assert sorted(Check.objects.filter(dataset=events).values_list("name", flat=True)) == [
        "missing_count(user_id) = 0",
        "row_count > 0",
    ]
    assert [r.outcome for r in sorted(stored.values(), key=lambda r: r.pk)] == ["pass", "warn"]


def test_results_for_an_existing_dataset_join_it(client_for: ClientFor, world: World) -> None:
    response = push(client_for("editor"), result("orders", "row_count > 0", data_source="warehouse"))

    assert response.status_code == 201, response.text
    assert response.json()["results"][0]["datasetId"] == world.orders.pk
    assert response.json()["results"][0]["checkId"] == world.orders_fail.check_ref_id
    assert DataSource.objects.count() == 1


def test_a_second_push_to_the_same_check_adds_to_its_history(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    first = push(editor, result("events", "row_count > 0", "fail", 0)).json()["results"][0]

    second = push(editor, result("events", "row_count > 0", "pass", 90)).json()["results"][0]

    assert second["checkId"] == first["checkId"]
    assert second["id"] != first["id"]
    history = editor.get(f"/checks/{first['checkId']}/results").json()["content"]
    assert {r["id"] for r in history} == {first["id"], second["id"]}
    assert Check.objects.get(pk=first["checkId"]).last_outcome == "pass"


def test_the_same_check_name_on_another_dataset_is_another_check(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")

    pushed = push(editor, result("events", "row_count > 0"), result("sessions", "row_count > 0")).json()

    first, second = pushed["results"]
    assert first["checkId"] != second["checkId"]
    assert first["datasetId"] != second["datasetId"]


def test_a_check_with_an_identity_keeps_its_history_when_renamed(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    first = push(editor, result("events", "rows > 0", identity="c-1"))

    renamed = push(editor, result("events", "row_count > 0", identity="c-1"))

    assert first.status_code == renamed.status_code == 201, renamed.text
    check_id = first.json()["results"][0]["checkId"]
    assert renamed.json()["results"][0]["checkId"] == check_id
    assert Check.objects.get(pk=check_id).name == "row_count > 0"


# --- All or nothing -------------------------------------------------------------------------------


def test_one_bad_outcome_among_many_refuses_the_whole_push(client_for: ClientFor, world: World) -> None:
    before = counts()

    response = push(
        client_for("editor"),
        result("events", "a", "pass"),
        result("events", "b", "fail"),
        result("sessions", "c", "broken"),
        result("sessions", "d", "warn"),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "outcome" in response.json()["message"]
    assert counts() == before


def test_one_value_that_is_not_a_finite_number_refuses_the_whole_push(
    client_for: ClientFor, world: World
) -> None:
    # JSON has no NaN, but Python's parser takes one; the service refuses it.
    body = {
        "dataTimestamp": WHEN,
        "results": [result("events", "a", "pass", 1), result("events", "b", "fail", float("nan"))],
    }
    before = counts()

    response = client_for("editor").post(
        "/checkResults", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "results[1].value"
    assert counts() == before


def test_a_user_without_manage_checks_on_an_existing_dataset_is_refused_and_nothing_is_written(
    client_for: ClientFor, world: World
) -> None:
    before = counts()

    # The new source and dataset come first and would be created before orders is reached.
    response = push(
        client_for("viewer"),
        result("signups", "row_count > 0", data_source="crm"),
        result("a_new_table", "row_count > 0", data_source="warehouse"),
        result("orders", "row_count > 0", data_source="warehouse"),
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert counts() == before
    assert not DataSource.objects.filter(name="crm").exists()
    assert not Dataset.objects.filter(name="a_new_table").exists()


def test_a_user_who_cannot_see_a_dataset_cannot_push_to_it(client_for: ClientFor, world: World) -> None:
    before = counts()

    response = push(client_for("outsider"), result("orders", "row_count > 0", data_source="warehouse"))

    assert response.status_code == 403
    assert "orders" in response.json()["message"]
    assert counts() == before


def test_a_retry_with_the_same_idempotency_key_stores_nothing_new(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    results = [result("events", "row_count > 0"), result("events", "freshness < 1d", "warn")]
    first = push(editor, *results, idempotencyKey="scan-2026-11-02")
    after_first = counts()

    retry = push(editor, *results, idempotencyKey="scan-2026-11-02")

    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert counts() == after_first


def test_a_different_idempotency_key_is_a_different_scan(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    first = push(editor, result("events", "row_count > 0"), idempotencyKey="one")

    second = push(editor, result("events", "row_count > 0"), idempotencyKey="two")

    assert second.json()["scanId"] != first.json()["scanId"]
    assert second.json()["results"][0]["checkId"] == first.json()["results"][0]["checkId"]


# --- Creating datasets ----------------------------------------------------------------------------


def test_a_new_dataset_gives_everyone_the_default_role_and_the_pusher_manager(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")

    dataset_id = push(editor, result("events", "row_count > 0")).json()["results"][0]["datasetId"]

    responsibilities = editor.get(f"/datasets/{dataset_id}/responsibilities").json()["content"]
    assert [(r["type"], r["name"], r["roleName"]) for r in responsibilities] == [
        ("userGroup", "Everyone", "Viewer"),
        ("user", "editor@example.com", "Manager"),
    ]
    assert editor.get(f"/datasets/{dataset_id}").json()["owner"]["email"] == "editor@example.com"
    assert client_for("outsider").get(f"/datasets/{dataset_id}").status_code == 200


def test_without_a_default_role_new_datasets_are_private(client_for: ClientFor, world: World) -> None:
    cleared = client_for("admin").put("/organization", json={"defaultDatasetRoleId": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["defaultDatasetRoleId"] is None
    editor = client_for("editor")

    dataset_id = push(editor, result("events", "row_count > 0")).json()["results"][0]["datasetId"]

    responsibilities = editor.get(f"/datasets/{dataset_id}/responsibilities").json()["content"]
    assert [(r["type"], r["name"], r["roleName"]) for r in responsibilities] == [
        ("user", "editor@example.com", "Manager")
    ]
    assert client_for("outsider").get(f"/datasets/{dataset_id}").status_code == 404
    assert client_for("viewer").get(f"/datasets/{dataset_id}").status_code == 404


def test_users_may_not_create_datasets_when_the_organisation_says_so(
    client_for: ClientFor, world: World
) -> None:
    Organization.objects.filter(pk=1).update(users_can_create_datasets=False)
    before = counts()

    response = push(client_for("editor"), result("events", "row_count > 0"))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert counts() == before


def test_when_users_may_not_create_datasets_they_may_still_push_to_existing_ones(
    client_for: ClientFor, world: World
) -> None:
    Organization.objects.filter(pk=1).update(users_can_create_datasets=False)

    response = push(client_for("editor"), result("orders", "row_count > 0", data_source="warehouse"))

    assert response.status_code == 201, response.text


def test_admins_may_create_datasets_whatever_the_organisation_says(
    client_for: ClientFor, world: World
) -> None:
    Organization.objects.filter(pk=1).update(users_can_create_datasets=False)

    response = push(client_for("admin"), result("events", "row_count > 0"))

    assert response.status_code == 201, response.text


# --- Bad requests ---------------------------------------------------------------------------------


def test_malformed_json_is_a_bad_request(client_for: ClientFor, world: World) -> None:
    response = client_for("editor").post(
        "/checkResults", content=b'{"dataTimestamp": ', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert set(response.json()) >= {"code", "message"}
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"dataTimestamp": WHEN, "results": "not a list"}, id="results-not-a-list"),
        pytest.param({"dataTimestamp": "yesterday", "results": [result("events", "a")]}, id="bad-timestamp"),
        pytest.param({"results": [result("events", "a")]}, id="no-timestamp"),
        pytest.param(
            {"dataTimestamp": WHEN, "results": [result("events", "a") | {"value": "high"}]}, id="value"
        ),
        pytest.param(
            {"dataTimestamp": WHEN, "results": [result("events", "a") | {"check": "a"}]}, id="check"
        ),
        pytest.param(
            {"dataTimestamp": WHEN, "results": [result("events", "a") | {"dataset": 7}]}, id="dataset"
        ),
        pytest.param({"dataTimestamp": WHEN, "results": []}, id="no-results"),
        pytest.param([result("events", "a")], id="body-not-an-object"),
    ],
)
def test_values_of_the_wrong_type_are_a_bad_request(client_for: ClientFor, world: World, body: Any) -> None:
    before = counts()

    response = client_for("editor").post("/checkResults", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert response.json()["message"]
    assert counts() == before


def test_a_body_over_the_size_limit_is_refused_with_413(
    client_for: ClientFor, world: World, settings: LazySettings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    before = counts()

    response = push(client_for("editor"), *(result("events", f"check {n}") for n in range(50)))

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert counts() == before


def test_a_body_under_the_size_limit_is_accepted(
    client_for: ClientFor, world: World, settings: LazySettings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000

    response = push(client_for("editor"), result("events", "row_count > 0"))

    assert response.status_code == 201, response.text


def test_anonymous_callers_cannot_push(client_for: ClientFor, world: World) -> None:
    before = counts()

    response = push(client_for("anonymous"), result("events", "row_count > 0"))

    assert response.status_code == 401
    assert counts() == before


def test_an_idempotency_key_is_private_to_the_user_who_sent_it(client_for: ClientFor, world: World) -> None:
    body = {
        "dataTimestamp": "2026-11-02T06:00:00Z",
        "idempotencyKey": "nightly-2026-11-02",
        "results": [
            {
                "dataSource": "warehouse",
                "dataset": "orders",
                "check": {"name": "row_count > 0"},
                "outcome": "fail",
            }
        ],
    }
    first = client_for("editor").post("/checkResults", json=body)
    assert first.status_code == 201, first.text
    # The outsider may not push to orders at all: the editor's key must not hand them the editor's scan.
    stranger = client_for("outsider").post("/checkResults", json=body)
    assert stranger.status_code == 403
    again = client_for("editor").post("/checkResults", json=body)
    assert again.json() == first.json()
