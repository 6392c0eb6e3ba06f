"""What Quell does by itself when results arrive (quell.automation): folding, rules that open, recover
and reopen incidents, mutes; through the REST push, as any tool sends results."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from quell.accounts.models import Organization
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import Check, CheckResult
from quell.incidents import services as incident_services
from quell.incidents.models import (
    EventKind,
    Incident,
    IncidentCheck,
    IncidentRule,
    Mute,
    ResolutionReason,
    Status,
    TimelineEvent,
)
from tests.conftest import ClientFor, World
from tests.test_concurrency import at_once

DAY0 = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)


def push(
    client: httpx.Client, outcome: str, day: int, *, check: str = "row_count > 0", dataset: str = "events"
) -> int:
    """Push one result of `check` on lake/`dataset`, of data time DAY0 + `day` days; its id."""
    body = {
        "dataTimestamp": (DAY0 + dt.timedelta(days=day)).isoformat(),
        "results": [
            {
                "dataSource": "lake",
                "dataset": dataset,
                "check": {"name": check},
                "outcome": outcome,
                "value": 1,
            }
        ],
    }
    response = client.post("/checkResults", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["results"][0]["id"])


def rule(name: str = "Every failure", **fields: Any) -> IncidentRule:
    return IncidentRule.objects.create(name=name, position=IncidentRule.objects.count(), **fields)


def incidents_of(check_name: str) -> list[Incident]:
    return list(
        Incident.objects.filter(covered_checks__check_ref__name=check_name)
        .distinct()
        .order_by("created_at", "id")
    )


def linked(incident: Incident) -> list[int]:
    return sorted(incident.links.values_list("check_result_id", flat=True))


def kinds(incident: Incident) -> list[str]:
    return list(incident.timeline.order_by("created_at", "id").values_list("kind", flat=True))


# --- Opening, folding, recovering ------------------------------------------------------------------


def test_fail_fail_warn_pass_pass_makes_one_incident_that_resolves_itself_as_recovered(
    client_for: ClientFor, world: World
) -> None:
    every = rule(resolve_after_passes=2)
    editor = client_for("editor")

    fail_1 = push(editor, "fail", 0)
    (incident,) = incidents_of("row_count > 0")
    assert incident.rule == every
    assert incident.reporter.is_system
    assert incident.reporter.name == "Quell"
    # The editor created lake/events by pushing to it, so they manage it: its first Manager leads.
    assert incident.lead == world.editor
    assert incident.title == "row_count > 0 failed on events"
    assert linked(incident) == [fail_1]

    fail_2 = push(editor, "fail", 1)
    warn = push(editor, "warn", 2)
    incident.refresh_from_db()
    assert incidents_of("row_count > 0") == [incident]
    assert linked(incident) == [fail_1, fail_2, warn]
    assert incident.status == Status.REPORTED
    assert incident.passing_since is None

    pass_1 = push(editor, "pass", 3)
    incident.refresh_from_db()
    assert incident.status == Status.REPORTED
    assert incident.passing_since == DAY0 + dt.timedelta(days=3)
    pass_2 = push(editor, "pass", 4)

    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED
    assert incident.resolution_reason == ResolutionReason.RECOVERED
    assert "Every failure" in incident.resolution_notes
    assert f"#{pass_1}, #{pass_2}" in incident.resolution_notes
    assert linked(incident) == [fail_1, fail_2, warn]
    # The check passed again once (after the warn): one "passed" event, not one per pass.
    assert kinds(incident).count(EventKind.CHECK_PASSED) == 1
    resolved = incident.timeline.get(field="status", new_value=Status.RESOLVED)
    assert resolved.actor is not None
    assert resolved.actor.is_system
    assert resolved.rule_name == "Every failure"


def test_the_api_shows_the_rule_and_a_person_cannot_resolve_as_recovered(
    client_for: ClientFor, world: World
) -> None:
    every = rule()
    editor = client_for("editor")
    push(editor, "fail", 0)
    (incident,) = incidents_of("row_count > 0")

    shown = editor.get(f"/incidents/{incident.pk}").json()
    refused = editor.post(
        f"/incidents/{incident.pk}",
        json={"status": "resolved", "resolutionReason": "recovered", "resolutionNotes": "by hand"},
    )

    assert shown["rule"] == {"id": every.pk, "name": "Every failure"}
    assert refused.status_code in (400, 422), refused.text
    assert refused.json()["code"] == "resolution_reason_reserved"


def test_a_failure_within_reopen_within_days_reopens_the_recovered_incident_with_its_number(
    client_for: ClientFor, world: World
) -> None:
    rule(resolve_after_passes=1, reopen_within_days=7)
    editor = client_for("editor")
    push(editor, "fail", 0)
    push(editor, "pass", 1)
    (incident,) = incidents_of("row_count > 0")
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED

    again = push(editor, "fail", 2)

    (reopened,) = incidents_of("row_count > 0")
    assert reopened.pk == incident.pk
    assert reopened.number == incident.number
    assert reopened.status == Status.REPORTED
    assert reopened.resolution_reason == ""
    assert again in linked(reopened)
    assert EventKind.REOPENED in kinds(reopened)


def test_a_failure_after_reopen_within_days_opens_a_new_incident(client_for: ClientFor, world: World) -> None:
    rule(resolve_after_passes=1, reopen_within_days=1)
    editor = client_for("editor")
    push(editor, "fail", 0)
    push(editor, "pass", 1)
    (first,) = incidents_of("row_count > 0")
    Incident.objects.filter(pk=first.pk).update(resolved_at=timezone.now() - dt.timedelta(days=2))

    push(editor, "fail", 2)

    assert [i.status for i in incidents_of("row_count > 0")] == [Status.RESOLVED, Status.REPORTED]


def test_consecutive_waits_for_that_many_failures_in_a_row_and_links_them_all(
    client_for: ClientFor, world: World
) -> None:
    rule(consecutive=2, outcomes=["warn", "fail"])
    editor = client_for("editor")

    warn = push(editor, "warn", 0)
    assert incidents_of("row_count > 0") == []
    fail = push(editor, "fail", 1)

    (incident,) = incidents_of("row_count > 0")
    assert linked(incident) == [warn, fail]


def test_a_warning_opens_nothing_under_a_rule_for_failures(client_for: ClientFor, world: World) -> None:
    rule()
    push(client_for("editor"), "warn", 0)
    assert incidents_of("row_count > 0") == []


def test_rules_are_tried_in_order_and_the_first_that_matches_acts(
    client_for: ClientFor, world: World
) -> None:
    rule("Elsewhere", dataset_scoped=True).datasets.set([world.customers])
    rule("Critical tables", severity="critical", title_template="[{dataSource}] {check} {outcome}")
    rule("Last", severity="minor")

    push(client_for("editor"), "fail", 0)

    (incident,) = incidents_of("row_count > 0")
    assert incident.rule is not None
    assert incident.rule.name == "Critical tables"
    assert incident.severity == "critical"
    assert incident.title == "[lake] row_count > 0 fail"


def test_check_attributes_must_all_match(world: World) -> None:
    rule(check_attributes={"domain": "sales", "tier": "1"})
    _, (no_tier,) = _ingest(world, "lake", "events", "a", attributes={"domain": "sales"})
    _, (both,) = _ingest(world, "lake", "events", "b", attributes={"domain": "sales", "tier": 1})

    assert incidents_of("a") == []
    assert [i.rule_id for i in incidents_of("b")] != []
    assert linked(incidents_of("b")[0]) == [both.pk]
    assert no_tier.outcome == "fail"


def test_a_rule_whose_datasets_were_all_deleted_matches_nothing(client_for: ClientFor, world: World) -> None:
    scoped = rule(dataset_scoped=True)
    scoped.datasets.set([])
    push(client_for("editor"), "fail", 0)
    assert incidents_of("row_count > 0") == []


def test_disabled_rules_do_nothing(client_for: ClientFor, world: World) -> None:
    rule(enabled=False)
    push(client_for("editor"), "fail", 0)
    assert incidents_of("row_count > 0") == []


def test_the_rules_lead_leads_when_they_may_and_the_first_manager_otherwise(world: World) -> None:
    # The manager holds Manage incidents on orders; the viewer does not.
    rule(lead=world.viewer, dataset_scoped=True).datasets.set([world.orders])
    _ingest(world, "warehouse", "orders", "row_count > 0", at_day=1)
    (incident,) = [i for i in incidents_of("row_count > 0") if i.rule_id]
    assert incident.lead == world.manager

    IncidentRule.objects.update(lead=world.admin)
    _ingest(world, "warehouse", "orders", "freshness(updated_at) < 1d", at_day=1)
    (second,) = [i for i in incidents_of("freshness(updated_at) < 1d") if i.rule_id]
    assert second.lead == world.admin


def _ingest(
    world: World,
    source: str,
    dataset: str,
    check: str,
    *,
    outcome: str = "fail",
    at_day: int = 0,
    attributes: dict[str, Any] | None = None,
) -> tuple[Any, list[CheckResult]]:
    return catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=DAY0 + dt.timedelta(days=at_day),
            results=[
                catalog_ingest.ResultInput(
                    data_source=source,
                    dataset=dataset,
                    check=catalog_ingest.CheckInput(name=check, attributes=attributes or {}),
                    outcome=outcome,
                    value=1,
                )
            ],
        ),
        by=world.admin,
    )


# --- Folding ---------------------------------------------------------------------------------------


def test_a_new_failure_of_a_check_in_a_hand_made_incident_is_attached_to_it(world: World) -> None:
    incident = incident_services.create_incident(
        by=world.manager, title="Orders are empty", check_result_ids=[world.orders_fail.pk]
    )

    _, (again,) = _ingest(world, "warehouse", "orders", "row_count > 0", at_day=1)

    assert linked(incident) == sorted([world.orders_fail.pk, again.pk])
    attached = incident.timeline.get(check_result=again)
    assert attached.actor is not None
    assert attached.actor.is_system
    assert attached.rule_name == ""
    incident.refresh_from_db()
    assert incident.version == 2


def test_folding_goes_to_the_newest_open_incident_of_the_check(world: World) -> None:
    older = incident_services.create_incident(
        by=world.manager, title="Old", check_result_ids=[world.orders_fail.pk]
    )
    newer = incident_services.create_incident(
        by=world.manager, title="New", check_result_ids=[world.orders_fail.pk], allow_duplicate=True
    )

    _, (again,) = _ingest(world, "warehouse", "orders", "row_count > 0", at_day=1)

    assert again.pk in linked(newer)
    assert again.pk not in linked(older)


def test_with_folding_off_nothing_is_attached_and_no_rule_opens_a_second_incident(world: World) -> None:
    rule()
    Organization.objects.update(fold_results=False)
    incident = incident_services.create_incident(
        by=world.manager, title="Orders are empty", check_result_ids=[world.orders_fail.pk]
    )

    _ingest(world, "warehouse", "orders", "row_count > 0", at_day=1)

    assert linked(incident) == [world.orders_fail.pk]
    assert incidents_of("row_count > 0") == [incident]


def test_an_older_result_filled_in_later_folds_but_does_not_count_as_the_checks_state(world: World) -> None:
    rule()
    _ingest(world, "lake", "events", "late", outcome="pass", at_day=5)
    _ingest(world, "lake", "events", "late", outcome="fail", at_day=1)
    assert incidents_of("late") == []


# --- Mutes -----------------------------------------------------------------------------------------


def test_a_muted_check_opens_nothing_and_its_results_are_stored(client_for: ClientFor, world: World) -> None:
    rule()
    editor = client_for("editor")
    push(editor, "pass", 0)
    check = Check.objects.get(name="row_count > 0", dataset__name="events")
    Mute.objects.create(check_ref=check, until=timezone.now() + dt.timedelta(days=1), reason="Backfill")

    failed = push(editor, "fail", 1)

    assert incidents_of("row_count > 0") == []
    assert CheckResult.objects.get(pk=failed).outcome == "fail"


def test_a_muted_dataset_neither_folds_nor_recovers(world: World) -> None:
    rule(resolve_after_passes=1)
    _ingest(world, "lake", "events", "c", at_day=0)
    (incident,) = incidents_of("c")
    Mute.objects.create(dataset=incident.datasets.get(), until=timezone.now() + dt.timedelta(days=1))

    _, (fail,) = _ingest(world, "lake", "events", "c", at_day=1)
    _ingest(world, "lake", "events", "c", outcome="pass", at_day=2)

    incident.refresh_from_db()
    assert fail.pk not in linked(incident)
    assert incident.status == Status.REPORTED


def test_a_mute_that_has_ended_mutes_nothing(world: World) -> None:
    rule()
    _ingest(world, "lake", "events", "c", outcome="pass", at_day=0)
    Mute.objects.create(check_ref=Check.objects.get(name="c"), until=timezone.now() - dt.timedelta(minutes=1))
    _ingest(world, "lake", "events", "c", at_day=1)
    assert len(incidents_of("c")) == 1


# --- Transactions and concurrency --------------------------------------------------------------------


def test_a_scan_that_rolls_back_opens_nothing(world: World) -> None:
    rule()

    def ingest_then_fail() -> None:
        with transaction.atomic():
            _ingest(world, "lake", "events", "c")
            raise RuntimeError("the caller's transaction fails after the ingest")

    with pytest.raises(RuntimeError):
        ingest_then_fail()

    assert Incident.objects.count() == 0
    assert not Check.objects.filter(name="c").exists()


def test_ten_parallel_pushes_of_a_new_failing_check_open_one_incident(
    client_for: ClientFor, world: World
) -> None:
    rule()
    editor = client_for("editor")

    responses = at_once([partial(editor.post, "/checkResults", json=_body("fresh")) for _ in range(10)])

    assert sorted(r.status_code for r in responses) == [201] * 10, [r.text for r in responses]
    (incident,) = incidents_of("fresh")
    # The first push opened it; the other nine folded into it.
    assert len(linked(incident)) == 10
    assert IncidentCheck.objects.filter(check_ref__name="fresh").count() == 1
    assert TimelineEvent.objects.filter(incident=incident, kind=EventKind.CREATED).count() == 1


def test_ten_parallel_pushes_of_a_failing_check_with_folding_off_still_open_one_incident(
    client_for: ClientFor, world: World
) -> None:
    rule()
    Organization.objects.update(fold_results=False)
    editor = client_for("editor")

    at_once([partial(editor.post, "/checkResults", json=_body("fresh")) for _ in range(10)])

    (incident,) = incidents_of("fresh")
    assert len(linked(incident)) == 1


def _body(check: str) -> dict[str, Any]:
    return {
        "dataTimestamp": DAY0.isoformat(),
        "results": [{"dataSource": "lake", "dataset": "events", "check": {"name": check}, "outcome": "fail"}],
    }


def test_a_rule_still_waiting_for_consecutive_failures_lets_a_later_rule_act(
    client_for: ClientFor, world: World
) -> None:
    rule("Twice in a row", consecutive=2)
    rule("Anything", severity="minor")

    push(client_for("editor"), "fail", 0)

    (incident,) = incidents_of("row_count > 0")
    assert incident.rule is not None
    assert incident.rule.name == "Anything"
