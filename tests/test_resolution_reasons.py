"""Why an incident was resolved: the reasons a person may give, `fixed` for clients that give none,
`recovered` kept for Quell's rules, cleared on reopening, and the lists' filter by reason."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import EventKind, Incident, TimelineEvent
from quell.lib.errors import Invalid, Unprocessable
from tests.conftest import ClientFor, World


def resolved(world: World, reason: str | None = None, *, result: Any = None) -> Incident:
    """An incident of the editor's, resolved (through the service) with `reason`."""
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[(result or world.orders_fail).pk]
    )
    return incidents.update_incident(
        incident.pk,
        by=world.editor,
        status="resolved",
        resolution_notes="Reloaded.",
        resolution_reason=reason,
    )


def reason_events(incident: Incident) -> list[tuple[str, Any, Any]]:
    events = TimelineEvent.objects.filter(incident=incident, field="resolutionReason").order_by("id")
    return [(event.kind, event.old_value, event.new_value) for event in events]


# --- The service ----------------------------------------------------------------------------------


def test_an_open_incident_has_no_reason(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )

    assert incident.resolution_reason == ""


def test_resolving_records_the_reason_given_and_the_timeline_says_who_gave_it(world: World) -> None:
    incident = resolved(world, "noActionNeeded")

    assert Incident.objects.get(pk=incident.pk).resolution_reason == "noActionNeeded"
    event = TimelineEvent.objects.get(incident=incident, field="resolutionReason")
    assert (event.kind, event.actor, event.old_value, event.new_value) == (
        EventKind.CHANGED,
        world.editor,
        None,
        "noActionNeeded",
    )


def test_resolving_without_a_reason_records_fixed(world: World) -> None:
    incident = resolved(world)

    assert Incident.objects.get(pk=incident.pk).resolution_reason == "fixed"
    assert reason_events(incident) == [(EventKind.CHANGED, None, "fixed")]


def test_creating_a_resolved_incident_records_the_reason_or_fixed(world: World) -> None:
    given = incidents.create_incident(
        by=world.editor,
        title="Orders",
        check_result_ids=[world.orders_fail.pk],
        status="resolved",
        resolution_notes="A duplicate of #1.",
        resolution_reason="duplicate",
    )
    left_out = incidents.create_incident(
        by=world.editor,
        title="Orders",
        check_result_ids=[world.orders_fail.pk],
        status="resolved",
        resolution_notes="Reloaded.",
    )

    assert Incident.objects.get(pk=given.pk).resolution_reason == "duplicate"
    assert Incident.objects.get(pk=left_out.pk).resolution_reason == "fixed"


def test_creating_an_open_incident_with_a_reason_is_refused_and_creates_nothing(world: World) -> None:
    with pytest.raises(Invalid) as refused:
        incidents.create_incident(
            by=world.editor,
            title="Orders",
            check_result_ids=[world.orders_fail.pk],
            resolution_reason="fixed",
        )

    assert (refused.value.code, refused.value.field) == (
        "resolution_reason_needs_resolved",
        "resolutionReason",
    )
    assert not Incident.objects.exists()


@pytest.mark.parametrize("status", [None, "investigating"])
def test_a_reason_for_an_incident_that_stays_or_becomes_open_is_refused(
    world: World, status: str | None
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )

    with pytest.raises(Unprocessable) as refused:
        incidents.update_incident(incident.pk, by=world.editor, status=status, resolution_reason="expected")

    assert refused.value.code == "resolution_reason_needs_resolved"
    assert Incident.objects.get(pk=incident.pk).version == 1


def test_a_person_may_not_resolve_as_recovered(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )

    with pytest.raises(Unprocessable) as on_update:
        incidents.update_incident(
            incident.pk,
            by=world.editor,
            status="resolved",
            resolution_notes="Passed.",
            resolution_reason="recovered",
        )
    with pytest.raises(Unprocessable) as on_create:
        incidents.create_incident(
            by=world.editor,
            title="Orders",
            check_result_ids=[world.orders_fail_2.pk],
            status="resolved",
            resolution_notes="Passed.",
            resolution_reason="recovered",
        )

    assert on_update.value.code == on_create.value.code == "resolution_reason_reserved"
    assert Incident.objects.get(pk=incident.pk).status == "reported"
    assert Incident.objects.count() == 1


def test_a_person_may_keep_recovered_but_not_change_another_reason_to_it(world: World) -> None:
    recovered = resolved(world)
    Incident.objects.filter(pk=recovered.pk).update(resolution_reason="recovered")  # as a rule would
    other = resolved(world, "fixed", result=world.orders_fail_2)

    kept = incidents.update_incident(
        recovered.pk, by=world.editor, resolution_reason="recovered", severity="minor"
    )
    with pytest.raises(Unprocessable):
        incidents.update_incident(other.pk, by=world.editor, resolution_reason="recovered")

    assert (kept.severity, kept.resolution_reason) == ("minor", "recovered")
    assert Incident.objects.get(pk=other.pk).resolution_reason == "fixed"


def test_an_unknown_reason_is_refused(world: World) -> None:
    incident = resolved(world)

    with pytest.raises(Invalid) as refused:
        incidents.update_incident(incident.pk, by=world.editor, resolution_reason="gremlins")

    assert refused.value.code == "invalid_resolution_reason"


def test_the_reason_of_a_resolved_incident_may_change_as_a_change_of_its_own(world: World) -> None:
    incident = resolved(world, "fixed")

    changed = incidents.update_incident(incident.pk, by=world.manager, resolution_reason="falsePositive")

    assert changed.resolution_reason == "falsePositive"
    assert changed.version == incident.version + 1
    assert reason_events(incident)[-1] == (EventKind.CHANGED, "fixed", "falsePositive")


def test_reopening_clears_the_reason_and_the_reopening_alone_is_recorded(world: World) -> None:
    incident = resolved(world, "expected")

    reopened = incidents.update_incident(incident.pk, by=world.editor, status="fixing")

    assert Incident.objects.get(pk=incident.pk).resolution_reason == ""
    assert reopened.resolution_reason == ""
    last = TimelineEvent.objects.filter(incident=incident).latest("id")
    assert (last.kind, last.field) == (EventKind.REOPENED, "status")
    assert reason_events(incident) == [(EventKind.CHANGED, None, "expected")]


def test_an_incident_resolved_before_reasons_keeps_none_until_someone_gives_one(world: World) -> None:
    incident = resolved(world)
    Incident.objects.filter(pk=incident.pk).update(resolution_reason="")  # as the upgrade leaves it

    untouched = incidents.update_incident(incident.pk, by=world.editor, title="Orders table was empty")
    given = incidents.update_incident(incident.pk, by=world.editor, resolution_reason="expected")

    assert untouched.resolution_reason == ""
    assert given.resolution_reason == "expected"
    assert reason_events(incident)[-1] == (EventKind.CHANGED, None, "expected")


def test_the_list_query_keeps_the_incidents_resolved_for_the_reasons_given(world: World) -> None:
    fixed = resolved(world, "fixed")
    expected = resolved(world, "expected", result=world.orders_fail_2)
    incidents.create_incident(by=world.editor, title="Open", check_result_ids=[world.orders_warn.pk])

    def chosen(*reasons: str) -> set[int]:
        filters = incident_queries.IncidentFilters(resolution_reasons=list(reasons))
        return {incident.pk for incident in incident_queries.list_incidents(filters, by=world.viewer)}

    assert chosen("expected") == {expected.pk}
    assert chosen("fixed", "expected") == {fixed.pk, expected.pk}
    assert chosen("duplicate") == set()
    counts = incident_queries.status_counts(
        incident_queries.IncidentFilters(resolution_reasons=["fixed"]), by=world.viewer
    )
    assert counts.counts == {"resolved": 1}


# --- The API --------------------------------------------------------------------------------------


def create(client: httpx.Client, result_id: int, **fields: Any) -> httpx.Response:
    return client.post(
        "/incidents", json={"title": "Orders table is empty", "checkResultIds": [result_id], **fields}
    )


def test_the_api_creates_a_resolved_incident_with_its_reason(client_for: ClientFor, world: World) -> None:
    response = create(
        client_for("editor"),
        world.orders_fail.pk,
        status="resolved",
        resolutionNotes="A test load.",
        resolutionReason="falsePositive",
    )

    assert response.status_code == 201, response.text
    assert response.json()["resolutionReason"] == "falsePositive"


def test_the_api_records_fixed_for_a_client_that_creates_it_resolved_without_a_reason(
    client_for: ClientFor, world: World
) -> None:
    response = create(client_for("editor"), world.orders_fail.pk, status="resolved", resolutionNotes="Done.")

    assert response.status_code == 201, response.text
    assert response.json()["resolutionReason"] == "fixed"


def test_the_api_shows_no_reason_for_an_open_incident(client_for: ClientFor, world: World) -> None:
    response = create(client_for("editor"), world.orders_fail.pk)

    assert response.status_code == 201, response.text
    assert response.json()["resolutionReason"] is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"resolutionReason": "fixed"}, "resolution_reason_needs_resolved"),
        ({"status": "fixing", "resolutionReason": "fixed"}, "resolution_reason_needs_resolved"),
        (
            {"status": "resolved", "resolutionNotes": "Passed.", "resolutionReason": "recovered"},
            "resolution_reason_reserved",
        ),
        (
            {"status": "resolved", "resolutionNotes": "Done.", "resolutionReason": "gremlins"},
            "invalid_request",
        ),
    ],
)
def test_the_api_refuses_a_reason_it_may_not_record_and_creates_nothing(
    client_for: ClientFor, world: World, fields: dict[str, Any], code: str
) -> None:
    response = create(client_for("editor"), world.orders_fail.pk, **fields)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Incident.objects.exists()


def test_the_api_lists_incidents_by_reason_and_counts_only_those(client_for: ClientFor, world: World) -> None:
    fixed = resolved(world, "fixed")
    expected = resolved(world, "expected", result=world.orders_fail_2)
    duplicate = resolved(world, "duplicate", result=world.orders_warn)
    viewer = client_for("viewer")

    one = viewer.get("/incidents", params={"resolutionReason": "expected"}).json()
    two = viewer.get("/incidents", params={"resolutionReason": ["fixed", "duplicate"]}).json()

    assert [incident["id"] for incident in one["content"]] == [expected.pk]
    assert one["content"][0]["resolutionReason"] == "expected"
    assert one["totalElements"] == 1
    assert {incident["id"] for incident in two["content"]} == {fixed.pk, duplicate.pk}
    assert two["totalElements"] == 2


def test_the_api_refuses_an_unknown_reason_to_filter_by(client_for: ClientFor, world: World) -> None:
    response = client_for("viewer").get("/incidents", params={"resolutionReason": "gremlins"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
