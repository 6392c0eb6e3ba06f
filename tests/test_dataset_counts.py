"""Each dataset keeps its own counts (checks, checks failing now, open incidents) equal to counting its
rows, through scans, incident changes and scans arriving at the same moment, and the home page's
"failing without an open incident" is read from them."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from functools import partial

import httpx
from django.core.management import call_command

from quell.catalog.models import CheckResult, Dataset
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import Status
from tests.conftest import T0, ClientFor, World, push
from tests.test_concurrency import at_once
from tests.test_write_statements import assert_counters_are_exact


def counts(dataset: Dataset) -> tuple[int, int, int]:
    dataset.refresh_from_db()
    return dataset.check_count, dataset.failing_check_count, dataset.open_incident_count


def scan_at(world: World, at: dt.datetime, *results: tuple[str, str]) -> list[CheckResult]:
    """A scan of warehouse/orders with data of time `at`: (check name, outcome) pairs."""
    return push(world.admin, "warehouse", "orders", *((name, outcome, 1) for name, outcome in results), at=at)


def quiet_ids(world: World, who: str = "admin") -> list[int]:
    return [d.pk for d in incident_queries.datasets_needing_attention(by=world.user(who))]


def test_a_scan_counts_a_new_datasets_checks_and_those_that_warn_or_fail(world: World) -> None:
    push(world.admin, "lake", "events", ("fresh", "pass", 1), ("nulls", "warn", 3), ("rows", "fail", 0))

    assert counts(Dataset.objects.get(name="events")) == (3, 2, 0)
    assert_counters_are_exact()


def test_a_check_that_passes_again_no_longer_counts_as_failing(world: World) -> None:
    # The world's orders has four checks, three of them failing or warning.
    before = counts(world.orders)

    scan_at(world, T0 + dt.timedelta(days=1), ("row_count > 0", "pass"))

    assert counts(world.orders) == (before[0], before[1] - 1, before[2])
    assert_counters_are_exact()


def test_an_older_scan_arriving_late_changes_no_count(world: World) -> None:
    scan_at(world, T0 + dt.timedelta(days=1), ("row_count > 0", "pass"))
    before = counts(world.orders)

    # Its results are stored, but the checks' newest outcomes stay those of the newer scan.
    scan_at(world, T0 - dt.timedelta(days=1), ("row_count > 0", "fail"))

    assert counts(world.orders) == before
    assert_counters_are_exact()


def test_opening_resolving_and_reopening_incidents_moves_each_datasets_open_count(world: World) -> None:
    admin = world.admin
    both = incidents.create_incident(
        by=admin, title="Both", check_result_ids=[world.orders_fail.pk, world.customers_fail.pk]
    )
    done = incidents.create_incident(
        by=admin,
        title="Already fixed",
        check_result_ids=[world.orders_warn.pk],
        status=Status.RESOLVED,
        resolution_notes="Reloaded.",
    )
    assert (counts(world.orders)[2], counts(world.customers)[2]) == (1, 1)

    incidents.update_incident(both.pk, by=admin, status=Status.FIXING)  # still open: no change
    assert (counts(world.orders)[2], counts(world.customers)[2]) == (1, 1)
    incidents.update_incident(both.pk, by=admin, status=Status.RESOLVED, resolution_notes="Fixed.")
    assert (counts(world.orders)[2], counts(world.customers)[2]) == (0, 0)
    incidents.update_incident(done.pk, by=admin, status=Status.INVESTIGATING)
    incidents.attach_check_results(done.pk, [world.customers_fail.pk], by=admin)  # open: customers gains one
    assert (counts(world.orders)[2], counts(world.customers)[2]) == (1, 1)
    assert_counters_are_exact()


def test_the_home_page_lists_a_failing_dataset_until_an_incident_is_open_on_it(world: World) -> None:
    assert world.orders.pk in quiet_ids(world)

    incident = incidents.create_incident(
        by=world.admin, title="Orders", check_result_ids=[world.orders_fail.pk]
    )
    assert world.orders.pk not in quiet_ids(world)

    incidents.update_incident(incident.pk, by=world.admin, status=Status.RESOLVED, resolution_notes="Done.")
    assert world.orders.pk in quiet_ids(world)

    passing = ("row_count > 0", "missing_count(id) = 0", "freshness(updated_at) < 1d")
    scan_at(world, T0 + dt.timedelta(days=1), *((name, "pass") for name in passing))
    assert world.orders.pk not in quiet_ids(world)


def test_the_home_page_lists_only_datasets_the_caller_can_view(world: World) -> None:
    # The outsider holds nothing on orders; everyone may view customers.
    assert world.orders.pk not in quiet_ids(world, "outsider")
    assert world.customers.pk in quiet_ids(world, "outsider")
    assert world.orders.pk in quiet_ids(world, "viewer")


def test_the_home_page_puts_the_most_failing_checks_first(world: World) -> None:
    push(world.admin, "lake", "events", *((f"check {n}", "fail", 0) for n in range(5)))

    listed = list(incident_queries.datasets_needing_attention(by=world.admin))

    assert listed[0].name == "events"
    assert [d.failing_check_count for d in listed] == sorted(
        (d.failing_check_count for d in listed), reverse=True
    )


def test_scans_of_one_dataset_at_the_same_moment_leave_its_counts_exact(
    client_for: ClientFor, world: World
) -> None:
    # Each scan changes different checks of the same dataset: a recount that did not wait for the
    # other scan to commit would miss its changes (PostgreSQL; SQLite runs one write at a time).
    clients = [client_for("editor"), client_for("manager"), client_for("admin")]
    for round_ in range(4):
        calls: list[Callable[[], httpx.Response]] = [
            partial(
                client.post,
                "/checkResults",
                json={
                    "dataTimestamp": (T0 + dt.timedelta(days=round_ + 1)).isoformat(),
                    "results": [
                        {
                            "dataSource": "warehouse",
                            "dataset": "orders",
                            "check": {"name": f"scan {side} check {n}"},
                            "outcome": ("pass", "warn", "fail")[(n + round_ + side) % 3],
                            "value": n,
                        }
                        for n in range(30)
                    ],
                },
            )
            for side, client in enumerate(clients)
        ]

        responses = at_once(calls)

        assert [r.status_code for r in responses] == [201] * len(calls), [r.text for r in responses]
        assert_counters_are_exact()
    assert counts(world.orders)[0] == 4 + 3 * 30


def test_recount_repairs_counts_written_behind_quells_back(world: World) -> None:
    incidents.create_incident(by=world.admin, title="Orders", check_result_ids=[world.orders_fail.pk])
    Dataset.objects.update(check_count=7, failing_check_count=-1, open_incident_count=99)

    call_command("recount", stdout=io.StringIO())

    assert_counters_are_exact()


def test_the_api_answers_each_datasets_counts(client_for: ClientFor, world: World) -> None:
    admin = world.admin
    incidents.create_incident(by=admin, title="Open", check_result_ids=[world.orders_fail.pk])
    incidents.create_incident(
        by=admin,
        title="Resolved",
        check_result_ids=[world.orders_warn.pk, world.customers_fail.pk],
        status=Status.RESOLVED,
        resolution_notes="Reloaded.",
    )

    listed = {d["name"]: d for d in client_for("admin").get("/datasets").json()["content"]}
    one = client_for("viewer").get(f"/datasets/{world.orders.pk}").json()

    counted = {
        name: (d["checkCount"], d["incidentCount"], d["openIncidentCount"]) for name, d in listed.items()
    }
    assert counted == {"orders": (4, 2, 1), "customers": (1, 1, 0)}
    assert (one["checkCount"], one["incidentCount"], one["openIncidentCount"]) == (4, 2, 1)
    # The outsider lists only what they can view, with the same counts.
    seen = client_for("outsider").get("/datasets").json()["content"]
    assert [(d["name"], d["incidentCount"], d["openIncidentCount"]) for d in seen] == [("customers", 1, 0)]
