"""The rules open, fold into and resolve many incidents of one scan together (quell.automation with
the incident services' batch writes and the batched reactions of quell.lib.events): every incident
is as if opened or changed alone, and the statements do not grow with how many there are."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quell.accounts.models import DatasetRole, Responsibility, UserGroup
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult, Dataset
from quell.incidents import services as incident_services
from quell.incidents.events import IncidentCreated
from quell.incidents.models import (
    EventKind,
    Incident,
    IncidentCheck,
    IncidentRule,
    ResolutionReason,
    Status,
)
from quell.integrations.models import Event, EventType
from quell.lib import events
from quell.lib.errors import Forbidden, Unprocessable
from tests.conftest import World, make_user
from tests.test_domain_events import webhook
from tests.test_incident_counts import assert_tallies_match_counting

DAY0 = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
CHECKS = [f"check {n}" for n in range(1, 7)]


def scan(world: World, outcomes: dict[tuple[str, str], str], *, day: int) -> list[CheckResult]:
    """One scan of warehouse/<dataset> checks: (dataset, check) -> outcome, at DAY0 + `day` days."""
    _, stored = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=DAY0 + dt.timedelta(days=day),
            results=[
                catalog_ingest.ResultInput(
                    data_source="warehouse",
                    dataset=dataset,
                    check=catalog_ingest.CheckInput(name=check),
                    outcome=outcome,
                    value=1,
                )
                for (dataset, check), outcome in outcomes.items()
            ],
        ),
        by=world.admin,
    )
    return stored


def spread(checks: list[str], outcome: str) -> dict[tuple[str, str], str]:
    """The checks alternately on orders and customers, each with this outcome."""
    return {("orders" if n % 2 else "customers", check): outcome for n, check in enumerate(checks)}


def every_failure(**fields: Any) -> IncidentRule:
    return IncidentRule.objects.create(name="Every failure", position=0, **fields)


class RolledBack(Exception):
    pass


def statements_of(change: Callable[[], object]) -> int:
    """How many statements `change` issues, undone afterwards so the next one starts from the same place."""
    with CaptureQueriesContext(connection) as captured:
        try:
            with transaction.atomic():
                change()
                raise RolledBack
        except RolledBack:
            pass
    return len(captured)


def test_one_scan_opens_an_incident_for_each_failing_check_as_if_each_were_opened_alone(
    world: World,
) -> None:
    every_failure()

    failed = scan(world, spread(CHECKS, "fail"), day=0)

    opened = list(Incident.objects.filter(rule__isnull=False).order_by("number"))
    assert len(opened) == len(CHECKS)
    numbers = [incident.number for incident in opened]
    assert numbers == list(range(numbers[0], numbers[0] + len(CHECKS)))
    by_result = {result.pk: result for result in failed}
    for incident in opened:
        (link,) = incident.links.all()
        result = by_result[link.check_result_id]
        assert incident.title == f"{result.check_ref.name} failed on {result.dataset.name}"
        assert list(incident.datasets.values_list("pk", flat=True)) == [result.dataset_id]
        assert list(
            IncidentCheck.objects.filter(incident=incident).values_list("check_ref_id", flat=True)
        ) == [result.check_ref_id]
        timeline = list(incident.timeline.order_by("id").values_list("kind", "rule_name"))
        assert timeline == [
            (EventKind.CREATED, "Every failure"),
            (EventKind.RESULT_ATTACHED, "Every failure"),
        ]
        assert incident.reporter.is_system
        assert incident.lead is not None
        assert not incident.lead.is_system
    for dataset in (world.orders, world.customers):
        dataset.refresh_from_db()
        assert (
            dataset.open_incident_count
            == Incident.objects.filter(datasets=dataset, status__in=[Status.REPORTED]).count()
        )
    assert_tallies_match_counting(world, [world.orders, world.customers])


def test_one_scan_resolves_each_recovered_incident_with_its_own_note(world: World) -> None:
    every_failure(resolve_after_passes=1)
    scan(world, spread(CHECKS, "fail"), day=0)

    passed = scan(world, spread(CHECKS, "pass"), day=1)

    resolved = list(Incident.objects.filter(rule__isnull=False))
    assert len(resolved) == len(CHECKS)
    result_of_check = {result.check_ref_id: result.pk for result in passed}
    for incident in resolved:
        assert incident.status == Status.RESOLVED
        assert incident.resolution_reason == ResolutionReason.RECOVERED
        assert incident.version == 2
        (check_id,) = IncidentCheck.objects.filter(incident=incident).values_list("check_ref_id", flat=True)
        assert f"#{result_of_check[check_id]}" in incident.resolution_notes
        changes = incident.timeline.filter(kind=EventKind.CHANGED).order_by("id")
        assert [(e.field, e.new_value, e.rule_name) for e in changes] == [
            ("status", Status.RESOLVED, "Every failure"),
            ("resolutionNotes", incident.resolution_notes, "Every failure"),
            ("resolutionReason", ResolutionReason.RECOVERED, "Every failure"),
        ]
    for dataset in Dataset.objects.filter(pk__in=[world.orders.pk, world.customers.pk]):
        assert (
            dataset.open_incident_count
            == Incident.objects.filter(
                datasets=dataset, status__in=[Status.REPORTED, Status.INVESTIGATING, Status.FIXING]
            ).count()
        )
    assert_tallies_match_counting(world, [world.orders, world.customers])


def test_each_incident_opened_or_folded_into_together_is_announced_to_the_integrations(
    world: World, settings: Any
) -> None:
    webhook(world, settings)
    every_failure()

    scan(world, spread(CHECKS[:3], "fail"), day=0)
    scan(world, spread(CHECKS[:3], "fail"), day=1)

    created = Event.objects.filter(type=EventType.INCIDENT_CREATED)
    updated = Event.objects.filter(type=EventType.INCIDENT_UPDATED)
    opened = sorted(Incident.objects.values_list("pk", flat=True))
    assert len(opened) == 3
    assert sorted(created.values_list("incident_id", flat=True)) == opened
    assert all(event.payload["changedByRule"]["name"] == "Every failure" for event in created)
    assert sorted(updated.values_list("incident_id", flat=True)) == opened
    assert all(len(event.payload["addedCheckResults"]) == 1 for event in updated)


def test_a_reaction_refusing_one_opening_leaves_the_others_opened(world: World) -> None:
    every_failure()

    def refuse_check_2(created: IncidentCreated) -> None:
        if created.incident.title.startswith("check 2 "):
            raise Unprocessable("Not this one.")

    with events.subscribed(IncidentCreated, refuse_check_2):
        stored = scan(world, spread(CHECKS[:4], "fail"), day=0)

    assert len(stored) == 4
    titles = sorted(Incident.objects.values_list("title", flat=True))
    assert titles == [
        "check 1 failed on customers",
        "check 3 failed on customers",
        "check 4 failed on orders",
    ]
    assert_tallies_match_counting(world, [world.orders, world.customers])


@pytest.mark.parametrize(
    ("setup", "few", "many"),
    [
        pytest.param(
            lambda world: scan(world, spread(CHECKS, "pass"), day=0),
            lambda world: scan(world, spread(CHECKS[:2], "fail"), day=1),
            lambda world: scan(world, spread(CHECKS, "fail"), day=1),
            id="opening",
        ),
        pytest.param(
            lambda world: scan(world, spread(CHECKS, "fail"), day=0),
            lambda world: scan(world, spread(CHECKS[:2], "fail"), day=1),
            lambda world: scan(world, spread(CHECKS, "fail"), day=1),
            id="folding",
        ),
        pytest.param(
            lambda world: scan(world, spread(CHECKS, "fail"), day=0),
            lambda world: scan(world, spread(CHECKS[:2], "pass"), day=1),
            lambda world: scan(world, spread(CHECKS, "pass"), day=1),
            id="recovering",
        ),
    ],
)
def test_the_statements_of_a_scan_do_not_grow_with_the_incidents_it_touches(
    world: World,
    setup: Callable[[World], object],
    few: Callable[[World], object],
    many: Callable[[World], object],
) -> None:
    every_failure(resolve_after_passes=1)
    setup(world)

    assert statements_of(lambda: many(world)) == statements_of(lambda: few(world))


def test_a_teams_first_active_member_by_name_leads_and_a_manager_without_view_is_passed_over(
    world: World,
) -> None:
    every_failure()
    team = UserGroup.objects.create(name="Orders team")
    asleep = make_user("aaron@example.com")
    asleep.is_active = False
    asleep.save()
    bea, cal = make_user("bea@example.com"), make_user("cal@example.com")
    team.members.add(asleep, bea, cal)
    blind = DatasetRole.objects.create(name="Manage without view", view_dataset=False, manage_incidents=True)
    Responsibility.objects.filter(dataset=world.orders).delete()
    # In order: a person whose role lacks View (and who holds nothing else), then the team.
    Responsibility.objects.create(dataset=world.orders, user=world.viewer, role=blind)
    Responsibility.objects.create(dataset=world.orders, group=team, role=world.role("Manager"))
    Responsibility.objects.create(dataset=world.orders, user=world.manager, role=world.role("Manager"))

    scan(world, {("orders", "check 1"): "fail"}, day=0)

    (incident,) = Incident.objects.filter(rule__isnull=False)
    assert incident.lead == bea


def test_a_role_without_view_still_leads_when_another_responsibility_grants_view(world: World) -> None:
    every_failure()
    blind = DatasetRole.objects.create(name="Manage without view", view_dataset=False, manage_incidents=True)
    Responsibility.objects.filter(dataset=world.orders).delete()
    Responsibility.objects.create(dataset=world.orders, user=world.viewer, role=blind)
    Responsibility.objects.create(dataset=world.orders, user=world.viewer, role=world.role("Viewer"))
    Responsibility.objects.create(dataset=world.orders, user=world.manager, role=world.role("Manager"))

    scan(world, {("orders", "check 1"): "fail"}, day=0)

    (incident,) = Incident.objects.filter(rule__isnull=False)
    assert incident.lead == world.viewer


def test_people_cannot_open_or_resolve_incidents_as_quell_does(world: World) -> None:
    rule = every_failure(resolve_after_passes=1)
    opening = incident_services.Opening(
        rule=rule, title="By hand", description="", lead=world.manager, results=[world.orders_fail]
    )

    for name in ("admin", "manager", "outsider"):
        with pytest.raises(Forbidden, match="Only Quell itself"):
            incident_services.open_incidents([opening], by=world.user(name))
    incident = incident_services.create_incident(
        by=world.manager, title="Orders empty", check_result_ids=[world.orders_fail.pk]
    )
    for name in ("admin", "manager", "outsider"):
        with pytest.raises(Forbidden, match="Only Quell itself"):
            incident_services.resolve_as_recovered({incident.pk: (rule, "Passed.")}, by=world.user(name))

    assert Incident.objects.filter(rule__isnull=False).count() == 0
    incident.refresh_from_db()
    assert incident.status == Status.REPORTED
