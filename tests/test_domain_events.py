"""Services record typed domain events in their transaction; the tallies and the integrations' outbox react
to them there, and a reaction that fails takes the change back with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction

from quell.catalog import services as catalog
from quell.catalog.events import ResponsibilitiesChanged, ResultsIngested
from quell.catalog.models import CheckResult, Scan
from quell.incidents import reactions as tally_reactions
from quell.incidents import services as incidents
from quell.incidents.events import IncidentChanged, IncidentCreated
from quell.incidents.models import Incident, IncidentTally, Status, TimelineEvent
from quell.integrations import reactions as outbox_reactions
from quell.integrations import services as integration_services
from quell.integrations.models import Event, Integration
from quell.lib import events
from quell.lib.events import DomainEvent, EventOutsideTransaction
from tests.conftest import World, push


class Spy:
    """Collects the events of one type that were recorded while it listened."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.seen.append(event)


def listening(event_type: type[DomainEvent]) -> tuple[Spy, Any]:
    spy = Spy()
    return spy, events.subscribed(event_type, spy)


def webhook(world: World, settings: Any) -> Integration:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1"]
    integration, _ = integration_services.create_integration(
        by=world.admin, name="Hook", kind="webhook", url="http://127.0.0.1:9/quell"
    )
    return integration


def test_the_tallies_and_the_outbox_are_subscribed_at_start_up() -> None:
    assert tally_reactions.count_the_new_incidents in events.handlers_of(IncidentCreated)
    assert outbox_reactions.announce_the_new_incidents in events.handlers_of(IncidentCreated)
    assert tally_reactions.move_the_incidents_between_tallies in events.handlers_of(IncidentChanged)
    assert outbox_reactions.announce_the_changes in events.handlers_of(IncidentChanged)
    assert outbox_reactions.announce_the_evaluation in events.handlers_of(ResultsIngested)
    assert tally_reactions.recount_who_sees_the_dataset in events.handlers_of(ResponsibilitiesChanged)


def test_creating_an_incident_records_what_was_created(world: World) -> None:
    spy, listen = listening(IncidentCreated)
    with listen:
        incident = incidents.create_incident(
            by=world.editor, title="Orders empty", check_result_ids=[world.orders_fail.pk]
        )

    (event,) = spy.seen
    assert event.incident.pk == incident.pk
    assert event.dataset_ids == frozenset({world.orders.pk})
    assert [r.pk for r in event.results] == [world.orders_fail.pk]
    assert event.by == world.editor


def test_changing_an_incident_records_what_it_was_before(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders empty", check_result_ids=[world.orders_fail.pk]
    )
    spy, listen = listening(IncidentChanged)
    with listen:
        incidents.update_incident(incident.pk, by=world.editor, status="fixing", severity="critical")

    (event,) = spy.seen
    assert (event.status_before, event.severity_before) == ("reported", "major")
    assert (event.incident.status, event.incident.severity) == ("fixing", "critical")
    assert sorted(change.field for change in event.changes) == ["severity", "status"]
    assert event.dataset_ids_before == event.dataset_ids == frozenset({world.orders.pk})


def test_attaching_results_records_the_datasets_before_and_after(world: World) -> None:
    incident = incidents.create_incident(
        by=world.admin, title="Orders empty", check_result_ids=[world.orders_fail.pk]
    )
    spy, listen = listening(IncidentChanged)
    with listen:
        incidents.attach_check_results(incident.pk, [world.customers_fail.pk], by=world.admin)
        # Attaching what is already linked changes nothing and records nothing.
        incidents.attach_check_results(incident.pk, [world.customers_fail.pk], by=world.admin)

    (event,) = spy.seen
    assert event.dataset_ids_before == frozenset({world.orders.pk})
    assert event.dataset_ids == frozenset({world.orders.pk, world.customers.pk})
    assert [r.pk for r in event.added_results] == [world.customers_fail.pk]
    assert list(event.changes) == []


def test_storing_results_records_the_scan_and_its_results(world: World) -> None:
    spy, listen = listening(ResultsIngested)
    with listen:
        (result,) = push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0))

    (event,) = spy.seen
    assert [r.pk for r in event.results] == [result.pk]
    assert event.scan.pk == result.scan_id


def test_replacing_responsibilities_records_it(world: World) -> None:
    spy, listen = listening(ResponsibilitiesChanged)
    with listen:
        catalog.set_responsibilities(world.customers.pk, [], by=world.admin)

    (event,) = spy.seen
    assert event.dataset_id == world.customers.pk


def fails(event: Any) -> None:
    raise RuntimeError("a reaction failed")


def snapshot() -> tuple[list[Any], list[Any], int, int]:
    tallies = sorted(
        IncidentTally.objects.values_list("dataset_set_id", "status", "severity", "count"), key=str
    )
    incidents_now = sorted(Incident.objects.values_list("pk", "status", "severity", "version"))
    return tallies, incidents_now, TimelineEvent.objects.count(), Event.objects.count()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda world, incident: incidents.create_incident(
                by=world.admin, title="Another", check_result_ids=[world.orders_warn.pk]
            ),
            id="create",
        ),
        pytest.param(
            lambda world, incident: incidents.update_incident(
                incident.pk, by=world.admin, status=Status.RESOLVED, resolution_notes="Fixed."
            ),
            id="update",
        ),
        pytest.param(
            lambda world, incident: incidents.attach_check_results(
                incident.pk, [world.customers_fail.pk], by=world.admin
            ),
            id="attach",
        ),
    ],
)
def test_a_reaction_that_fails_takes_the_whole_change_back(
    change: Callable[[World, Incident], object], world: World, settings: Any
) -> None:
    webhook(world, settings)
    incident = incidents.create_incident(
        by=world.admin, title="Orders empty", check_result_ids=[world.orders_fail.pk]
    )
    before = snapshot()
    # Without the failing reaction the outbox would have had an event to deliver.
    assert before[3] == 1

    with (
        events.subscribed(IncidentCreated, fails),
        events.subscribed(IncidentChanged, fails),
        pytest.raises(RuntimeError, match="a reaction failed"),
    ):
        change(world, incident)

    # The incident, its tallies, its timeline and the outbox are as they were: nothing half-written.
    assert snapshot() == before


def test_a_failing_reaction_to_stored_results_stores_none_of_them(world: World) -> None:
    stored = (CheckResult.objects.count(), Scan.objects.count())

    with events.subscribed(ResultsIngested, fails), pytest.raises(RuntimeError):
        push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0))

    assert (CheckResult.objects.count(), Scan.objects.count()) == stored


@dataclass(frozen=True)
class Noticed(DomainEvent):
    what: str


@pytest.mark.django_db(transaction=True)
def test_an_event_recorded_outside_a_transaction_is_refused() -> None:
    spy, listen = listening(Noticed)
    with listen:
        with pytest.raises(EventOutsideTransaction, match="Noticed"):
            events.record(Noticed("outside"))
        with transaction.atomic():
            events.record(Noticed("inside"))

    assert [event.what for event in spy.seen] == ["inside"]


@dataclass(frozen=True)
class Heard(DomainEvent):
    what: str


@pytest.mark.django_db(transaction=True)
def test_events_recorded_together_reach_a_batch_handler_at_once_and_the_others_one_by_one() -> None:
    calls: list[tuple[str, list[str]]] = []

    def one_by_one(event: Noticed) -> None:
        calls.append(("one", [event.what]))

    def all_at_once(batch: list[Noticed]) -> None:
        calls.append(("all", [event.what for event in batch]))

    def heard(batch: list[Heard]) -> None:
        calls.append(("heard", [event.what for event in batch]))

    with (
        events.subscribed(Noticed, all_at_once, batch=True),
        events.subscribed(Noticed, one_by_one),
        events.subscribed(Heard, heard, batch=True),
    ):
        with transaction.atomic():
            events.record_all([Noticed("a"), Heard("x"), Noticed("b")])
            events.record(Noticed("c"))
        with pytest.raises(EventOutsideTransaction, match="Noticed"):
            events.record_all([Noticed("outside")])
        events.record_all([])  # nothing to record is not an error, even outside a transaction

    # Per type in the order the types first appear, each handler in the order it was registered.
    assert calls == [
        ("all", ["a", "b"]),
        ("one", ["a"]),
        ("one", ["b"]),
        ("heard", ["x"]),
        ("all", ["c"]),
        ("one", ["c"]),
    ]
    assert events.handlers_of(Noticed) == []
