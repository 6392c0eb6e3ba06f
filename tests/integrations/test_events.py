"""Events are recorded with the change that causes them, for the integrations that asked for them."""

from __future__ import annotations

import pytest
from django.conf import LazySettings
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from quell.incidents import services as incidents
from quell.integrations.models import Delivery, Event
from quell.lib.errors import Invalid
from tests.conftest import World, push
from tests.integrations.conftest import Receiver, add_webhook, drain


class Boom(Exception):
    pass


def test_a_rolled_back_incident_change_records_and_sends_nothing(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)

    def create_then_fail() -> None:
        with transaction.atomic():
            incidents.create_incident(by=world.editor, title="Never", check_result_ids=[world.orders_fail.pk])
            raise Boom

    with pytest.raises(Boom):
        create_then_fail()

    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    assert not DBTaskResult.objects.exists()
    drain()
    assert receiver.requests == []


def test_a_refused_update_records_nothing(world: World, receiver: Receiver, fast: LazySettings) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Real", check_result_ids=[world.orders_fail.pk]
    )
    add_webhook(world, receiver.url)
    with pytest.raises(Invalid):
        incidents.update_incident(incident.pk, by=world.editor, status="resolved")
    assert not Event.objects.exists()


def test_each_change_of_state_sends_one_update_saying_what_changed(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Real", check_result_ids=[world.orders_fail.pk]
    )
    add_webhook(world, receiver.url)
    incidents.update_incident(incident.pk, by=world.editor, status="investigating", lead_id=world.manager.pk)
    drain()

    (request,) = receiver.wait_for(1)
    body = request.json()
    assert body["event"] == "incidentUpdated"
    assert body["type"] == "incident.updated"
    assert body["incident"]["status"] == "investigating"
    changes = {change["field"]: change for change in body["changes"]}
    assert changes["status"]["old"] == "reported"
    assert changes["status"]["new"] == "investigating"
    assert changes["lead"]["old"]["email"] == "editor@example.com"
    assert changes["lead"]["new"]["email"] == "manager@example.com"
    assert body["changedBy"]["email"] == "editor@example.com"


def test_resolving_sends_the_reason_in_the_incident_and_among_the_changes(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Real", check_result_ids=[world.orders_fail.pk]
    )
    add_webhook(world, receiver.url)
    incidents.update_incident(
        incident.pk,
        by=world.editor,
        status="resolved",
        resolution_notes="Planned maintenance.",
        resolution_reason="expected",
    )
    drain()

    body = receiver.wait_for(1)[0].json()
    assert body["incident"]["resolutionReason"] == "expected"
    changes = {change["field"]: change for change in body["changes"]}
    assert (changes["resolutionReason"]["old"], changes["resolutionReason"]["new"]) == (None, "expected")


def test_an_open_incident_is_sent_without_a_reason(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)
    incidents.create_incident(by=world.editor, title="Real", check_result_ids=[world.orders_fail.pk])
    drain()

    body = receiver.wait_for(1)[0].json()
    assert body["event"] == "incidentCreated"
    assert body["incident"]["resolutionReason"] is None


def test_changing_only_the_reason_of_a_resolved_incident_sends_an_update(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    incident = incidents.create_incident(
        by=world.editor,
        title="Real",
        check_result_ids=[world.orders_fail.pk],
        status="resolved",
        resolution_notes="Reloaded.",
    )
    add_webhook(world, receiver.url)
    incidents.update_incident(incident.pk, by=world.editor, resolution_reason="falsePositive")
    drain()

    body = receiver.wait_for(1)[0].json()
    assert body["event"] == "incidentUpdated"
    assert body["incident"]["resolutionReason"] == "falsePositive"
    assert body["changes"] == [{"field": "resolutionReason", "old": "fixed", "new": "falsePositive"}]


def test_a_title_or_description_edit_alone_sends_nothing(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Real", check_result_ids=[world.orders_fail.pk]
    )
    add_webhook(world, receiver.url)
    incidents.update_incident(incident.pk, by=world.editor, title="Better title", description="More words")
    assert not Event.objects.exists()


def test_attaching_results_sends_an_update_naming_them(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Real", check_result_ids=[world.orders_fail.pk]
    )
    add_webhook(world, receiver.url)
    incidents.attach_check_results(incident.pk, [world.orders_warn.pk], by=world.editor)
    drain()

    body = receiver.wait_for(1)[0].json()
    assert body["event"] == "incidentUpdated"
    assert body["addedCheckResults"] == [world.orders_warn.pk]
    assert {r["id"] for r in body["incident"]["checkResults"]} == {world.orders_fail.pk, world.orders_warn.pk}


def test_dataset_and_severity_filters_choose_who_hears_of_an_incident(
    world: World, fast: LazySettings
) -> None:
    customers_only, _ = add_webhook(
        world, "http://127.0.0.1:9/a", name="customers", dataset_ids=[world.customers.pk]
    )
    critical_only, _ = add_webhook(world, "http://127.0.0.1:9/b", name="critical", min_severity="critical")
    everything, _ = add_webhook(world, "http://127.0.0.1:9/c", name="all")
    created_only, _ = add_webhook(world, "http://127.0.0.1:9/d", name="created", events=["incidentCreated"])

    incident = incidents.create_incident(
        by=world.editor, title="Major", check_result_ids=[world.orders_fail.pk]
    )
    assert set(Delivery.objects.values_list("integration", flat=True)) == {everything.pk, created_only.pk}

    Delivery.objects.all().delete()
    incidents.update_incident(incident.pk, by=world.editor, severity="critical")
    assert set(Delivery.objects.values_list("integration", flat=True)) == {everything.pk, critical_only.pk}

    Delivery.objects.all().delete()
    incidents.attach_check_results(incident.pk, [world.customers_fail.pk], by=world.admin)
    assert set(Delivery.objects.values_list("integration", flat=True)) == {
        everything.pk,
        critical_only.pk,
        customers_only.pk,
    }


def test_ingested_warn_and_fail_results_send_one_check_evaluation_per_dataset(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url, events=["checkEvaluation"])
    fails_only, _ = add_webhook(
        world, receiver.url, events=["checkEvaluation"], min_outcome="fail", name="fails"
    )
    push(
        world.admin,
        "warehouse",
        "orders",
        ("row_count > 0", "fail", 0),
        ("valid", "pass", 1),
        ("late", "warn", 2),
    )
    push(world.admin, "warehouse", "customers", ("dupes", "warn", 3))
    drain()

    bodies = [(r.json(), r) for r in receiver.wait_for(3)]
    assert all(
        body["event"] == "checkEvaluation" and body["type"] == "check.evaluation" for body, _ in bodies
    )
    by_dataset = sorted(
        (body["checkResults"][0]["datasets"][0]["name"], sorted(x["outcome"] for x in body["checkResults"]))
        for body, _ in bodies
    )
    assert by_dataset == [("customers", ["warn"]), ("orders", ["fail"]), ("orders", ["fail", "warn"])]
    assert Delivery.objects.filter(integration=fails_only).count() == 1


def test_a_scan_of_passing_results_sends_nothing(world: World, fast: LazySettings) -> None:
    add_webhook(world, "http://127.0.0.1:9/", events=["checkEvaluation"])
    push(world.admin, "warehouse", "orders", ("valid", "pass", 1))
    assert not Event.objects.exists()
