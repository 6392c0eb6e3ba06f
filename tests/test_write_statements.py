"""The incident writes cost a small, fixed number of statements, and the status counters they keep stay exact.

Each statement is a round trip to the database (a few hundred microseconds to PostgreSQL over TCP),
so the writes are pinned at the number they take today: the counts below are ceilings, listed
statement by statement. Statements are counted as the benchmark counts them (bench/run.py): one
API request through Django's test client, without the API key lookup and transaction control.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from quell.accounts.models import Responsibility
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult, Dataset
from quell.incidents import services as incidents
from quell.incidents.models import (
    OPEN_STATUSES,
    DatasetSet,
    DatasetSetMember,
    Incident,
    IncidentDataset,
    IncidentTally,
    Status,
)
from quell.incidents.tallies import set_key
from quell.integrations.models import Delivery
from tests.conftest import ClientFor, World, push
from tests.integrations.conftest import add_webhook
from tests.test_concurrency import at_once

CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")


def statements(world: World, who: str, method: str, path: str, body: dict[str, Any]) -> tuple[int, list[str]]:
    """The response status and the statements one API request issued (as bench/run.py counts them)."""
    key_id, secret = world.keys[who]
    auth = "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    with CaptureQueriesContext(connection) as captured:
        response = getattr(Client(), method)(
            f"/api/v1{path}", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
        )
    kept = [
        q["sql"]
        for q in captured.captured_queries
        if "accounts_apikey" not in q["sql"] and not q["sql"].lstrip().upper().startswith(CONTROL)
    ]
    return response.status_code, kept


def assert_at_most(count: int, issued: list[str]) -> None:
    assert len(issued) <= count, "\n".join([f"{len(issued)} statements, expected at most {count}:", *issued])


def an_incident(world: World, *results: CheckResult, by: str = "editor") -> Incident:
    return incidents.create_incident(
        by=world.user(by), title="Orders are missing", check_result_ids=[r.pk for r in results]
    )


# --- Statement counts -------------------------------------------------------------------------------


def test_creating_an_incident_takes_twelve_statements(world: World) -> None:
    an_incident(world, world.orders_fail)  # its combination of datasets is known from now on

    status, issued = statements(
        world, "admin", "post", "/incidents", {"title": "Again", "checkResultIds": [world.orders_fail_2.pk]}
    )

    assert status == 201
    # The results, the number, the incident, its dataset, the org-wide counter, the dataset set's
    # counter (the set looked up inside it), the dataset's open incident count, the links, the
    # timeline, the checks it covers (for the rules), the integrations that might want to hear of
    # it, and the API's read of external links. Nothing is read back.
    assert_at_most(12, issued)


def test_an_incident_on_a_new_combination_of_datasets_adds_only_the_sets_rows(world: World) -> None:
    an_incident(world, world.orders_fail)

    status, issued = statements(
        world,
        "admin",
        "post",
        "/incidents",
        {"title": "Both", "checkResultIds": [world.orders_fail_2.pk, world.customers_fail.pk]},
    )

    assert status == 201
    # Twelve as above, plus the set (after reading whether Everyone can view one of its datasets),
    # its members and its counter by id once the lookup found no set. (Both datasets' open incident
    # counts change in one statement.)
    assert_at_most(16, issued)


def test_a_member_creating_an_incident_adds_only_the_permission_checks(world: World) -> None:
    an_incident(world, world.orders_fail)

    status, issued = statements(
        world, "editor", "post", "/incidents", {"title": "Again", "checkResultIds": [world.orders_fail_2.pk]}
    )

    assert status == 201
    # Twelve as for an admin, plus the editor's groups (the results are read with a probe of each
    # one's dataset, see permissions.only_viewable) and their permissions on the results' datasets.
    assert_at_most(14, issued)


def test_attaching_a_result_of_a_dataset_the_incident_has_takes_twelve_statements(world: World) -> None:
    incident = an_incident(world, world.orders_fail)

    status, issued = statements(
        world,
        "admin",
        "post",
        f"/incidents/{incident.pk}/checkResults",
        {"checkResultIds": [world.orders_warn.pk]},
    )

    assert status == 200
    # The incident (locked; its lead and reporter by a read of their own, see
    # services._incident_for_change), the results, the links and datasets it has (one statement), the
    # link, the timeline, the version, the checks it covers, the integrations, then its datasets and
    # results for the answer and the API's read of external links.
    assert_at_most(12, issued)


def test_attaching_a_result_of_another_dataset_moves_the_incident_to_that_set(world: World) -> None:
    incident = an_incident(world, world.orders_fail)
    an_incident(world, world.orders_fail_2, world.customers_fail, by="admin")  # the set exists

    status, issued = statements(
        world,
        "admin",
        "post",
        f"/incidents/{incident.pk}/checkResults",
        {"checkResultIds": [world.customers_fail.pk]},
    )

    assert status == 200
    # Twelve as above, plus the new dataset, both sets in one lookup, both counters in one upsert,
    # and the new dataset's open incident count.
    assert_at_most(16, issued)


def test_changing_the_status_takes_eleven_statements(world: World) -> None:
    incident = an_incident(world, world.orders_fail)

    status, issued = statements(
        world, "admin", "patch", f"/incidents/{incident.pk}", {"status": "investigating"}
    )

    assert status == 200
    # The incident, its lead and reporter, its datasets, the org-wide counters and the set's (one
    # upsert each), the row, the timeline, the integrations, the answer's datasets and results, the
    # external links.
    assert_at_most(11, issued)


def test_resolving_also_takes_one_off_its_datasets_open_incident_count(world: World) -> None:
    incident = an_incident(world, world.orders_fail)

    status, issued = statements(
        world,
        "admin",
        "patch",
        f"/incidents/{incident.pk}",
        {"status": "resolved", "resolutionNotes": "Reloaded."},
    )

    assert status == 200
    # Eleven as for any status change, plus the datasets' open incident counts.
    assert_at_most(12, issued)
    assert_counters_are_exact()


def test_the_answer_of_a_create_is_the_incident_as_read_afterwards(world: World) -> None:
    # The create answers from what it wrote instead of reading it back: it must be the same JSON.
    # (An editor may manage incidents on orders only, so they start one from orders alone.)
    for who, results in (
        ("admin", [world.customers_fail, world.orders_warn, world.orders_fail]),
        ("editor", [world.orders_fail_2, world.orders_warn]),
    ):
        key_id, secret = world.keys[who]
        client = Client(
            HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()
        )
        # The editor's results share orders_warn with the admin's incident: a separate one, on purpose.
        body = {"title": "Both", "checkResultIds": [result.pk for result in results], "allowDuplicate": True}

        created = client.post("/api/v1/incidents", json.dumps(body), content_type="application/json")
        read = client.get(f"/api/v1/incidents/{created.json()['id']}")

        assert created.status_code == 201
        assert created.json() == read.json(), who


# --- Counters -----------------------------------------------------------------------------------------


def datasets_everyone_views() -> set[int]:
    return set(
        Responsibility.objects.filter(group__is_everyone=True, role__view_dataset=True).values_list(
            "dataset_id", flat=True
        )
    )


def counted_from_incidents() -> Counter[tuple[str | None, str, str]]:
    """What the counters should say: per status and severity, org-wide (None), for Everyone
    ("everyone": the incidents with a dataset the Everyone group can view) and per exact
    combination of datasets."""
    datasets: dict[int, set[int]] = {}
    for incident_id, dataset_id in IncidentDataset.objects.values_list("incident_id", "dataset_id"):
        datasets.setdefault(incident_id, set()).add(dataset_id)
    public = datasets_everyone_views()
    expected: Counter[tuple[str | None, str, str]] = Counter()
    for incident_id, status, severity in Incident.objects.values_list("id", "status", "severity"):
        expected[(None, status, severity)] += 1
        expected[(set_key(datasets[incident_id]), status, severity)] += 1
        if datasets[incident_id] & public:
            expected[("everyone", status, severity)] += 1
    return expected


def kept_counters() -> Counter[tuple[str | None, str, str]]:
    keys = dict(DatasetSet.objects.values_list("pk", "key"))
    kept: Counter[tuple[str | None, str, str]] = Counter()
    rows = IncidentTally.objects.values_list("dataset_set_id", "everyone", "status", "severity", "count")
    for set_id, everyone, status, severity, count in rows:
        if count:
            kept[(keys[set_id] if set_id else "everyone" if everyone else None, status, severity)] = count
    return kept


def counted_per_dataset() -> dict[int, tuple[int, int, int]]:
    """What each dataset's own counts should say: checks, checks failing now, open incidents."""
    counts = {pk: [0, 0, 0] for pk in Dataset.objects.values_list("pk", flat=True)}
    for dataset_id, outcome in Check.objects.values_list("dataset_id", "last_outcome"):
        counts[dataset_id][0] += 1
        counts[dataset_id][1] += outcome in FAILING_OUTCOMES
    for dataset_id in IncidentDataset.objects.filter(incident__status__in=OPEN_STATUSES).values_list(
        "dataset_id", flat=True
    ):
        counts[dataset_id][2] += 1
    return {pk: (checks, failing, open_) for pk, (checks, failing, open_) in counts.items()}


def kept_per_dataset() -> dict[int, tuple[int, int, int]]:
    return {
        pk: (checks, failing, open_)
        for pk, checks, failing, open_ in Dataset.objects.values_list(
            "pk", "check_count", "failing_check_count", "open_incident_count"
        )
    }


def assert_counters_are_exact() -> None:
    assert kept_counters() == counted_from_incidents()
    assert kept_per_dataset() == counted_per_dataset()
    members: dict[int, set[int]] = {}
    for set_id, dataset_id in DatasetSetMember.objects.values_list("dataset_set_id", "dataset_id"):
        members.setdefault(set_id, set()).add(dataset_id)
    public = datasets_everyone_views()
    for set_id, key, is_public in DatasetSet.objects.values_list("pk", "key", "public"):
        assert set_key(members[set_id]) == key
        assert is_public == bool(members[set_id] & public), key


def test_counters_stay_exact_through_creates_status_changes_and_attaches(world: World) -> None:
    (payments_fail,) = push(world.admin, "warehouse", "payments", ("row_count > 0", "fail", 0))
    admin = world.admin
    assert not IncidentTally.objects.exists()

    # The first incident ever: its org-wide counter and its set are both new.
    first = incidents.create_incident(
        by=admin, title="First", check_result_ids=[world.orders_fail.pk], status=Status.INVESTIGATING
    )
    assert_counters_are_exact()
    second = incidents.create_incident(by=admin, title="Second", check_result_ids=[world.customers_fail.pk])
    assert_counters_are_exact()
    # A status no incident had yet: a new org-wide row and a new row of the set.
    incidents.update_incident(first.pk, by=admin, status=Status.FIXING)
    assert_counters_are_exact()
    # A dataset the incident did not have: it moves to a brand-new set, orders and customers.
    incidents.attach_check_results(first.pk, [world.customers_fail.pk], by=admin)
    assert_counters_are_exact()
    # The same combination again, now an existing set, in another status.
    incidents.attach_check_results(second.pk, [world.orders_warn.pk], by=admin)
    assert_counters_are_exact()
    # Resolving, reopening, a three-dataset incident and results already linked (no change).
    incidents.update_incident(second.pk, by=admin, status=Status.RESOLVED, resolution_notes="Reloaded.")
    incidents.create_incident(
        by=admin,
        title="Third",
        check_result_ids=[world.orders_fail_2.pk, world.customers_fail.pk, payments_fail.pk],
        status=Status.RESOLVED,
        resolution_notes="Gone by itself.",
        allow_duplicate=True,  # customers_fail is in the first, still open
    )
    assert_counters_are_exact()
    incidents.update_incident(second.pk, by=admin, status=Status.REPORTED)
    incidents.attach_check_results(first.pk, [world.orders_fail.pk], by=admin)
    incidents.update_incident(first.pk, by=admin, title="Renamed", severity="critical")
    assert_counters_are_exact()
    # One org-wide row per status and severity met: the four statuses as major, fixing as critical.
    assert IncidentTally.objects.filter(dataset_set=None, everyone=False).count() == 5


def test_counters_stay_exact_when_two_incidents_start_a_new_combination_at_once(
    client_for: ClientFor, world: World
) -> None:
    # Both requests find no set and no counter row: one creates them, the other waits for it
    # (PostgreSQL), then uses the set and adds to the row instead of failing.
    admin, other_admin = client_for("admin"), client_for("admin")
    for round_ in range(4):
        results = [
            push(world.admin, "warehouse", f"table_{round_}_{side}", ("row_count > 0", "fail", 0))[0].pk
            for side in ("a", "b")
        ]
        # Two incidents of the same results on purpose: whichever commits second would otherwise be
        # refused as a duplicate of the first, or not, depending on who got there first.
        body = {"title": f"Round {round_}", "checkResultIds": results, "allowDuplicate": True}
        calls: list[Callable[[], httpx.Response]] = [
            partial(client.post, "/incidents", json=body) for client in (admin, other_admin)
        ]

        responses = at_once(calls)

        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    assert_counters_are_exact()
    assert DatasetSet.objects.count() == 4


def test_an_event_for_three_integrations_notes_their_three_tasks_in_one_update(world: World) -> None:
    incident = an_incident(world, world.orders_fail)
    for name in ("first", "second", "third"):
        add_webhook(world, f"https://hooks.example.com/{name}", name=name)

    status, issued = statements(
        world,
        "admin",
        "post",
        f"/incidents/{incident.pk}/checkResults",
        {"checkResultIds": [world.orders_warn.pk]},
    )

    assert status == 200
    assert len([sql for sql in issued if sql.startswith('UPDATE "integrations_delivery"')]) == 1
    tasks = {task.pk: task.args_kwargs["args"] for task in DBTaskResult.objects.all()}
    deliveries = list(Delivery.objects.all())
    assert len(deliveries) == 3
    for delivery in deliveries:
        assert tasks[delivery.task_id] == [delivery.pk]
