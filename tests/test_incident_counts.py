"""Counts per status come from kept tallies; they must always equal counting the incidents themselves."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import httpx
import pytest

from quell.accounts.models import DatasetRole, User, UserGroup
from quell.catalog import services as catalog
from quell.catalog.models import CheckResult, Dataset
from quell.incidents import queries as incident_queries
from quell.incidents import search as title_search
from quell.incidents import services as incidents
from quell.incidents import tallies
from quell.incidents.models import OPEN_STATUSES, Incident, IncidentTally, Severity, Status
from tests.conftest import ClientFor, World, push
from tests.test_concurrency import at_once
from tests.test_write_statements import assert_counters_are_exact

STATUSES = list(Status.values)


def counted(
    user: User, dataset_ids: list[int] | None = None, severities: list[str] | None = None
) -> dict[str, int]:
    """What COUNT(*) over the incidents the user can see says, per status."""
    filters = incident_queries.IncidentFilters(dataset_ids=dataset_ids or [], severities=severities or [])
    return incident_queries.count_by(incident_queries.list_incidents(filters, by=user), "status")


def tallied(
    user: User, dataset_ids: list[int] | None = None, severities: list[str] | None = None
) -> dict[str, int]:
    filters = incident_queries.IncidentFilters(dataset_ids=dataset_ids or [], severities=severities or [])
    counts = incident_queries.status_counts(filters, by=user)
    assert not counts.at_least
    return counts.counts


def assert_tallies_match_counting(world: World, datasets: list[Dataset]) -> None:
    for name in ("admin", "manager", "editor", "viewer", "outsider"):
        user = world.user(name)
        assert tallied(user) == counted(user), name
        for dataset in datasets:
            assert tallied(user, [dataset.pk]) == counted(user, [dataset.pk]), (name, dataset.name)
        assert tallied(user, [d.pk for d in datasets]) == counted(user, [d.pk for d in datasets]), name
        for severities in (["critical"], ["minor", "major"]):
            assert tallied(user, severities=severities) == counted(user, severities=severities), name
            assert tallied(user, [datasets[0].pk], severities) == counted(
                user, [datasets[0].pk], severities
            ), name
        open_ones = incident_queries.list_incidents(
            incident_queries.IncidentFilters(statuses=list(OPEN_STATUSES)), by=user
        )
        assert incident_queries.open_by_severity(by=user) == incident_queries.count_by(
            open_ones, "severity"
        ), name


def more_failing_results(world: World) -> tuple[list[Dataset], list[CheckResult]]:
    """Failing results in a third dataset (public), so incidents can span one, two or three datasets."""
    (payments_fail,) = push(world.admin, "warehouse", "payments", ("row_count > 0", "fail", 0))
    results = [world.orders_fail, world.orders_fail_2, world.customers_fail, payments_fail]
    return [world.orders, world.customers, payments_fail.dataset], results


def test_counts_equal_counting_after_many_random_changes(world: World) -> None:
    datasets, results = more_failing_results(world)
    rng = random.Random(6)
    made: list[Incident] = []

    for step in range(120):
        action = rng.choice(("create", "create", "status", "attach"))
        if action == "create" or not made:
            chosen = rng.sample(results, rng.randint(1, 2))
            status = rng.choice(STATUSES)
            made.append(
                incidents.create_incident(
                    by=world.admin,
                    title=f"Step {step}",
                    check_result_ids=[r.pk for r in chosen],
                    status=status,
                    resolution_notes="Fixed." if status == Status.RESOLVED else "",
                    allow_duplicate=True,  # random incidents share results
                )
            )
        elif action == "status":
            incident = rng.choice(made)
            incidents.update_incident(
                incident.pk,
                by=world.admin,
                status=rng.choice(STATUSES),
                severity=rng.choice(Severity.values),
                resolution_notes="Fixed.",
            )
        else:
            incident = rng.choice(made)
            incidents.attach_check_results(incident.pk, [rng.choice(results).pk], by=world.admin)
        if step % 20 == 19:
            assert_tallies_match_counting(world, datasets)

    assert_tallies_match_counting(world, datasets)
    assert_counters_are_exact()
    # Some incidents span datasets, so the test covers counting them once.
    assert Incident.objects.filter(datasets__in=datasets).distinct().count() < sum(
        Incident.objects.filter(datasets=d).count() for d in datasets
    )


def test_a_rebuild_gives_the_same_counts_as_keeping_them(world: World) -> None:
    datasets, results = more_failing_results(world)
    for n, result in enumerate(results):
        incidents.create_incident(
            by=world.admin,
            title=f"Kept {n}",
            check_result_ids=[result.pk, results[0].pk],
            allow_duplicate=True,
        )
    kept = {
        (row.dataset_set_id is None, row.everyone, row.status, row.severity, row.count)
        for row in IncidentTally.objects.all()
        if row.count
    }

    tallies.rebuild()

    rebuilt = {
        (row.dataset_set_id is None, row.everyone, row.status, row.severity, row.count)
        for row in IncidentTally.objects.all()
    }
    assert rebuilt == kept
    assert_counters_are_exact()
    assert_tallies_match_counting(world, datasets)


def test_counts_stay_exact_when_changes_arrive_at_the_same_moment(
    client_for: ClientFor, world: World
) -> None:
    datasets, results = more_failing_results(world)
    editor, manager, admin = client_for("editor"), client_for("manager"), client_for("admin")
    created = [
        admin.post(
            "/incidents",
            json={"title": f"Race {n}", "checkResultIds": [results[n % 2].pk], "allowDuplicate": True},
        ).json()["id"]
        for n in range(4)
    ]
    rng = random.Random(7)

    for round_ in range(5):
        calls: list[Callable[[], httpx.Response]] = [
            partial(manager.patch, f"/incidents/{created[0]}", json={"status": rng.choice(STATUSES[:3])}),
            partial(editor.patch, f"/incidents/{created[1]}", json={"status": rng.choice(STATUSES[:3])}),
            partial(
                admin.post,
                f"/incidents/{created[2]}/checkResults",
                json={"checkResultIds": [results[2 + round_ % 2].pk]},
            ),
            partial(
                manager.post,
                "/incidents",
                json={"title": f"New {round_}", "checkResultIds": [results[0].pk], "allowDuplicate": True},
            ),
            partial(admin.patch, f"/incidents/{created[3]}", json={"status": rng.choice(STATUSES[:3])}),
        ]
        responses: list[httpx.Response] = at_once(calls)
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]

    assert_tallies_match_counting(world, datasets)
    assert_counters_are_exact()


def test_counts_of_a_title_search_count_the_matching_incidents_not_the_newest_ones_up_to_their_cap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The search runs inside a subquery (where the table has another alias); a filter that named
    # the outer table counted the newest incidents instead of the matching ones.
    monkeypatch.setattr(title_search, "SEARCH_COUNT_CAP", 3)
    for n in range(5):
        incidents.create_incident(
            by=world.admin,
            title=f"Pump {n} stalled",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )
    for n in range(5):
        incidents.create_incident(
            by=world.admin,
            title=f"Late load {n}",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )

    capped = incident_queries.status_counts(incident_queries.IncidentFilters(search="pump"), by=world.admin)
    exact = incident_queries.status_counts(
        incident_queries.IncidentFilters(search="stalled 4"), by=world.admin
    )
    # Other filters count up to the larger COUNT_CAP, one status at a time.
    by_lead = incident_queries.status_counts(
        incident_queries.IncidentFilters(lead_ids=[world.admin.pk]), by=world.admin
    )

    # Past the cap, the counts are lower bounds over the first SEARCH_COUNT_CAP + 1 matches, and
    # claim no more than the cap.
    assert capped.counts == {Status.REPORTED: 3}
    assert capped.total() == (3, False)
    assert capped.at_least == set(STATUSES)
    assert exact.counts == {Status.REPORTED: 1}
    assert not exact.at_least
    assert by_lead.counts[Status.REPORTED] >= 10
    assert not by_lead.at_least


def responsibilities(world: World, *, everyone_views: bool) -> list[catalog.ResponsibilityInput]:
    """The orders dataset's responsibilities, with or without the Everyone group as a Viewer."""
    roles = dict(DatasetRole.objects.values_list("name", "pk"))
    items = [
        catalog.ResponsibilityInput("user", world.manager.pk, roles["Manager"]),
        catalog.ResponsibilityInput("user", world.editor.pk, roles["Editor"]),
    ]
    if everyone_views:
        items.append(
            catalog.ResponsibilityInput(
                "userGroup", UserGroup.objects.get(is_everyone=True).pk, roles["Viewer"]
            )
        )
    return items


def test_counts_follow_a_dataset_that_everyone_comes_to_see_and_stops_seeing(world: World) -> None:
    datasets, results = more_failing_results(world)
    # Incidents on orders alone (private), on customers alone (public) and on both.
    for n, chosen in enumerate(
        ([results[0]], [results[1]], [results[2]], [results[0], results[2]], [results[3]])
    ):
        incidents.create_incident(
            by=world.admin, title=f"Spread {n}", check_result_ids=[r.pk for r in chosen], allow_duplicate=True
        )
    incidents.update_incident(Incident.objects.get(title="Spread 0").pk, by=world.admin, status=Status.FIXING)
    assert tallied(world.outsider) == {"reported": 3}
    assert_tallies_match_counting(world, datasets)

    catalog.set_responsibilities(
        world.orders.pk, responsibilities(world, everyone_views=True), by=world.admin
    )

    assert tallied(world.outsider) == {"reported": 4, "fixing": 1}
    assert_tallies_match_counting(world, datasets)
    assert_counters_are_exact()

    # Changes while orders is public, then orders private again: the viewer is no longer named on it.
    incidents.update_incident(
        Incident.objects.get(title="Spread 1").pk,
        by=world.admin,
        status=Status.RESOLVED,
        resolution_notes="Fixed.",
    )
    catalog.set_responsibilities(
        world.orders.pk, responsibilities(world, everyone_views=False), by=world.admin
    )

    assert tallied(world.outsider) == {"reported": 3}
    assert tallied(world.viewer) == {"reported": 3}
    assert_tallies_match_counting(world, datasets)
    assert_counters_are_exact()


def test_a_dataset_that_no_incident_names_changes_no_counter(world: World) -> None:
    incidents.create_incident(
        by=world.admin, title="On customers", check_result_ids=[world.customers_fail.pk]
    )
    before = list(
        IncidentTally.objects.order_by("pk").values_list("dataset_set_id", "everyone", "status", "count")
    )

    catalog.set_responsibilities(
        world.orders.pk, responsibilities(world, everyone_views=True), by=world.admin
    )

    after = list(
        IncidentTally.objects.order_by("pk").values_list("dataset_set_id", "everyone", "status", "count")
    )
    assert after == before
    assert_tallies_match_counting(world, [world.orders, world.customers])


def test_counts_stay_exact_when_everyone_gains_and_loses_a_dataset_during_incident_changes(
    client_for: ClientFor, world: World
) -> None:
    datasets, results = more_failing_results(world)
    manager, admin = client_for("manager"), client_for("admin")
    created = [
        admin.post(
            "/incidents",
            json={"title": f"Race {n}", "checkResultIds": [results[n % 3].pk], "allowDuplicate": True},
        ).json()["id"]
        for n in range(3)
    ]
    roles = dict(DatasetRole.objects.values_list("name", "pk"))
    everyone = UserGroup.objects.get(is_everyone=True).pk
    named = [
        {"type": "user", "userId": world.manager.pk, "roleId": roles["Manager"]},
        {"type": "user", "userId": world.editor.pk, "roleId": roles["Editor"]},
    ]
    rng = random.Random(8)

    for round_ in range(6):
        public = round_ % 2 == 0
        body = named + (
            [{"type": "userGroup", "userGroupId": everyone, "roleId": roles["Viewer"]}] if public else []
        )
        calls: list[Callable[[], httpx.Response]] = [
            partial(admin.post, f"/datasets/{world.orders.pk}/responsibilities", json=body),
            partial(manager.patch, f"/incidents/{created[0]}", json={"status": rng.choice(STATUSES[:3])}),
            partial(
                admin.post,
                f"/incidents/{created[1]}/checkResults",
                json={"checkResultIds": [results[(round_ + 1) % 4].pk]},
            ),
            partial(
                manager.post,
                "/incidents",
                json={"title": f"New {round_}", "checkResultIds": [results[0].pk], "allowDuplicate": True},
            ),
            partial(admin.patch, f"/incidents/{created[2]}", json={"status": rng.choice(STATUSES[:3])}),
        ]
        responses: list[httpx.Response] = at_once(calls)
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]

    assert_tallies_match_counting(world, datasets)
    assert_counters_are_exact()
    assert_counters_are_exact()
