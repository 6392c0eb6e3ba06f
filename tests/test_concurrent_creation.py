"""Writers that create the same named thing at the same moment converge on one row.

Parallel scans into a new data source are normal (one per warehouse schema, started by one
scheduler). On PostgreSQL the second INSERT of a name waits for the first writer and then fails its
unique constraint; each of these requests must still end well: the pushes as if the name had
existed, the creations the caller asked for twice with one 201 and 409s.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import httpx

from quell.accounts.models import Responsibility, User
from quell.catalog.models import Check, CheckAttributeDefinition, Dataset, DataSource, Scan
from tests.conftest import ClientFor, World
from tests.ingest.conftest import Soda, captured_upload
from tests.test_concurrency import at_once

WRITERS = 10
WHEN = "2026-11-02T06:00:00Z"


def push(client: httpx.Client, data_source: str, dataset: str) -> httpx.Response:
    result = {
        "dataSource": data_source,
        "dataset": dataset,
        "check": {"name": "row_count > 0"},
        "outcome": "fail",
    }
    return client.post("/checkResults", json={"dataTimestamp": WHEN, "results": [result]})


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def test_parallel_first_pushes_into_a_new_data_source_all_land_in_one_dataset(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")

    responses = at_once([partial(push, editor, "lake", "events") for _ in range(WRITERS)])

    assert statuses(responses) == [201] * WRITERS, [r.text for r in responses]
    assert DataSource.objects.filter(name="lake").count() == 1
    events = Dataset.objects.get(data_source__name="lake", name="events")
    assert {r.json()["results"][0]["datasetId"] for r in responses} == {events.pk}
    assert Check.objects.filter(dataset=events).count() == 1
    assert Scan.objects.filter(datasets=events).count() == WRITERS
    # The dataset got its starting responsibilities once, from the push that created it.
    holders = Responsibility.objects.filter(dataset=events).values_list(
        "group__name", "user__email", "role__name"
    )
    assert sorted((group or user, role) for group, user, role in holders) == [
        ("Everyone", "Viewer"),
        ("editor@example.com", "Manager"),
    ]


def test_parallel_first_pushes_of_one_table_each_share_the_new_data_source(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")

    responses = at_once([partial(push, editor, "lake", f"schema_{n}.events") for n in range(WRITERS)])

    assert statuses(responses) == [201] * WRITERS, [r.text for r in responses]
    assert DataSource.objects.filter(name="lake").count() == 1
    assert Dataset.objects.filter(data_source__name="lake").count() == WRITERS


def test_parallel_first_pushes_of_a_new_dataset_in_an_existing_data_source_land_in_one_dataset(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")

    responses = at_once([partial(push, editor, "warehouse", "shipments") for _ in range(WRITERS)])

    assert statuses(responses) == [201] * WRITERS, [r.text for r in responses]
    assert Dataset.objects.filter(data_source__name="warehouse", name="shipments").count() == 1
    assert DataSource.objects.filter(name="warehouse").count() == 1


def test_parallel_soda_uploads_into_a_new_data_source_all_land_in_one_dataset(
    live_server: Any, world: World
) -> None:
    body = copy.deepcopy(captured_upload("soda-core-3.5.6-upload.json")["sodaCoreInsertScanResults"]["body"])
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        soda = Soda(http, world.keys["editor"])
        tokens = [soda.login() for _ in range(8)]

        # Scans of eight schedules: the same body twice would be one scan sent again.
        responses = at_once(
            [
                partial(soda.command, body | {"definitionName": f"schedule {n}"}, token)
                for n, token in enumerate(tokens)
            ]
        )

    assert statuses(responses) == [200] * 8, [r.text for r in responses]
    assert DataSource.objects.filter(name="shop").count() == 1
    orders = Dataset.objects.get(data_source__name="shop", name="orders")
    assert Scan.objects.filter(datasets=orders).count() == 8
    assert Check.objects.filter(dataset=orders).count() == 6


def test_of_parallel_creations_of_one_user_one_answers_201_and_the_rest_409(
    client_for: ClientFor, world: World
) -> None:
    admin = client_for("admin")

    responses = at_once(
        [partial(admin.post, "/users", json={"email": "new@example.com"}) for _ in range(WRITERS)]
    )

    assert statuses(responses) == [201] + [409] * (WRITERS - 1), [r.text for r in responses]
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert {(body["code"], body["message"]) for body in refusals} == {
        ("email_taken", "There is already a user new@example.com.")
    }
    assert User.objects.filter(email="new@example.com").count() == 1


def test_of_parallel_definitions_of_one_check_attribute_one_answers_201_and_the_rest_409(
    client_for: ClientFor, world: World
) -> None:
    admin = client_for("admin")
    definition = {"name": "pipeline_stage", "type": "text"}

    responses = at_once([partial(admin.post, "/checkAttributes", json=definition) for _ in range(WRITERS)])

    assert statuses(responses) == [201] + [409] * (WRITERS - 1), [r.text for r in responses]
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert {(body["code"], body["message"]) for body in refusals} == {
        ("name_taken", "There is already an attribute named pipeline_stage.")
    }
    assert CheckAttributeDefinition.objects.filter(name="pipeline_stage").count() == 1


def test_creating_a_user_whose_email_is_taken_answers_409(client_for: ClientFor, world: World) -> None:
    response = client_for("admin").post("/users", json={"email": "Editor@example.com"})

    assert response.status_code == 409
    assert response.json() == {
        "code": "email_taken",
        "message": "There is already a user editor@example.com.",
        "field": "email",
    }
