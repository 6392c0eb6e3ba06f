"""Changing an incident: status, resolution, lead, severity, title and description, with optimistic locking."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from quell.incidents.models import Incident, TimelineEvent
from tests.conftest import ClientFor, World

METHODS = ["patch", "post"]  # PATCH, and POST as Soda Cloud's API does it


def create_incident(client: httpx.Client, *result_ids: int, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/incidents", json={"title": "Orders table is empty", "checkResultIds": list(result_ids), **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def update(client: httpx.Client, incident_id: int, method: str = "patch", **fields: Any) -> httpx.Response:
    return client.request(method.upper(), f"/incidents/{incident_id}", json=fields)


def stored(incident_id: int) -> dict[str, Any]:
    """What the database holds for the incident, with its timeline, to show that nothing changed."""
    row: dict[str, Any] = dict(
        Incident.objects.values(
            "title",
            "description",
            "severity",
            "status",
            "lead_id",
            "resolution_notes",
            "resolution_reason",
            "resolved_at",
            "updated_at",
            "version",
        ).get(pk=incident_id)
    )
    row["timeline"] = list(
        TimelineEvent.objects.filter(incident_id=incident_id).order_by("id").values_list("pk", flat=True)
    )
    return row


def timeline(client: httpx.Client, incident_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/incidents/{incident_id}/timeline")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


# --- Status and resolution ------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_the_status_moves_from_reported_through_investigating_and_fixing_to_resolved(
    client_for: ClientFor, world: World, method: str
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    for status in ("investigating", "fixing"):
        response = update(editor, incident["id"], method, status=status)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        assert response.json()["resolvedAt"] is None

    response = update(
        editor, incident["id"], method, status="resolved", resolutionNotes="Reloaded the table."
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolutionNotes"] == "Reloaded the table."
    assert body["resolvedAt"] is not None
    assert Incident.objects.get(pk=incident["id"]).status == "resolved"


@pytest.mark.parametrize("method", METHODS)
def test_resolving_without_a_resolution_note_is_refused_and_changes_nothing(
    client_for: ClientFor, world: World, method: str
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(editor, incident["id"], method, status="resolved", title="Fixed, probably")

    assert response.status_code == 400
    assert response.json()["code"] == "resolution_notes_required"
    assert stored(incident["id"]) == before


def test_a_blank_resolution_note_does_not_count(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(editor, incident["id"], status="resolved", resolutionNotes="   ")

    assert response.status_code == 400
    assert response.json()["code"] == "resolution_notes_required"
    assert stored(incident["id"]) == before


def test_a_resolution_note_written_earlier_is_enough_to_resolve(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    assert update(editor, incident["id"], resolutionNotes="Upstream job was paused.").status_code == 200

    response = update(editor, incident["id"], status="resolved")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "resolved"
    assert response.json()["resolutionNotes"] == "Upstream job was paused."


def test_a_resolved_incident_cannot_lose_its_resolution_note(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, status="resolved", resolutionNotes="Done.")
    before = stored(incident["id"])

    response = update(editor, incident["id"], resolutionNotes="")

    assert response.status_code == 400
    assert response.json()["code"] == "resolution_notes_required"
    assert stored(incident["id"]) == before


def test_reopening_keeps_the_number_clears_resolved_at_and_is_recorded_as_reopened(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    resolved = update(editor, incident["id"], status="resolved", resolutionNotes="Reloaded.").json()
    assert resolved["resolvedAt"] is not None

    response = update(editor, incident["id"], status="investigating")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "investigating"
    assert body["number"] == incident["number"]
    assert body["resolvedAt"] is None
    assert Incident.objects.get(pk=incident["id"]).resolved_at is None
    last = timeline(editor, incident["id"])[-1]
    assert last["type"] == "reopened"
    assert (last["field"], last["oldValue"], last["newValue"]) == ("status", "resolved", "investigating")
    assert last["actor"]["email"] == "editor@example.com"


def test_moving_between_open_statuses_is_recorded_as_a_change_not_a_reopening(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    update(editor, incident["id"], status="fixing")

    last = timeline(editor, incident["id"])[-1]
    assert (last["type"], last["field"], last["oldValue"], last["newValue"]) == (
        "changed",
        "status",
        "reported",
        "fixing",
    )


# --- Resolution reason ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_resolving_with_a_reason_records_it_and_the_timeline_says_so(
    client_for: ClientFor, world: World, method: str
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    assert incident["resolutionReason"] is None

    response = update(
        editor,
        incident["id"],
        method,
        status="resolved",
        resolutionNotes="A test load, deleted since.",
        resolutionReason="falsePositive",
    )

    assert response.status_code == 200, response.text
    assert response.json()["resolutionReason"] == "falsePositive"
    assert (
        client_for("viewer").get(f"/incidents/{incident['id']}").json()["resolutionReason"] == "falsePositive"
    )
    changes = [
        (e["type"], e["field"], e["oldValue"], e["newValue"]) for e in timeline(editor, incident["id"])
    ]
    assert ("changed", "resolutionReason", None, "falsePositive") in changes


def test_a_client_resolving_without_a_reason_records_fixed(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    # How Soda Cloud's clients resolve: they know no reasons.
    response = update(editor, incident["id"], "post", status="resolved", resolutionNotes="Reloaded.")

    assert response.status_code == 200, response.text
    assert response.json()["resolutionReason"] == "fixed"


@pytest.mark.parametrize("status", [None, "investigating"])
def test_a_reason_for_an_incident_that_stays_or_becomes_open_is_refused_and_changes_nothing(
    client_for: ClientFor, world: World, status: str | None
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(editor, incident["id"], status=status, resolutionReason="expected")

    assert response.status_code == 400
    assert response.json()["code"] == "resolution_reason_needs_resolved"
    assert response.json()["field"] == "resolutionReason"
    assert stored(incident["id"]) == before


def test_reopening_with_a_reason_is_refused(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, status="resolved", resolutionNotes="Done.")
    before = stored(incident["id"])

    response = update(editor, incident["id"], status="reported", resolutionReason="fixed")

    assert response.status_code == 400
    assert response.json()["code"] == "resolution_reason_needs_resolved"
    assert stored(incident["id"]) == before


@pytest.mark.parametrize("status", [None, "resolved"])
def test_a_person_may_not_give_the_reason_recovered(
    client_for: ClientFor, world: World, status: str | None
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    if status is None:
        update(editor, incident["id"], status="resolved", resolutionNotes="Reloaded.")
    before = stored(incident["id"])

    response = update(
        editor, incident["id"], status=status, resolutionNotes="Reloaded.", resolutionReason="recovered"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "resolution_reason_reserved"
    assert stored(incident["id"]) == before


def test_an_unknown_reason_is_refused_by_the_schema(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, status="resolved", resolutionNotes="Done.")

    response = update(editor, incident["id"], resolutionReason="gremlins")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert Incident.objects.get(pk=incident["id"]).resolution_reason == "fixed"


def test_the_reason_of_a_resolved_incident_may_change_and_the_timeline_says_from_what(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, status="resolved", resolutionNotes="Done.")

    response = update(editor, incident["id"], resolutionReason="duplicate")

    assert response.status_code == 200, response.text
    assert response.json()["resolutionReason"] == "duplicate"
    assert response.json()["version"] == incident["version"] + 1
    last = timeline(editor, incident["id"])[-1]
    assert (last["type"], last["field"], last["oldValue"], last["newValue"]) == (
        "changed",
        "resolutionReason",
        "fixed",
        "duplicate",
    )


def test_sending_the_current_reason_again_changes_nothing(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, status="resolved", resolutionNotes="Done.")
    before = stored(incident["id"])

    response = update(editor, incident["id"], status="resolved", resolutionReason="fixed")

    assert response.status_code == 200, response.text
    assert stored(incident["id"]) == before


def test_reopening_clears_the_reason_and_resolving_again_records_a_new_one(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(
        editor, world.orders_fail.pk, status="resolved", resolutionNotes="Done.", resolutionReason="expected"
    )

    reopened = update(editor, incident["id"], status="investigating")
    # The reopening says that the reason went: no event of its own.
    last = timeline(editor, incident["id"])[-1]
    resolved = update(editor, incident["id"], status="resolved")

    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["resolutionReason"] is None
    assert (last["type"], last["field"]) == ("reopened", "status")
    assert resolved.json()["resolutionReason"] == "fixed"


# --- Lead -----------------------------------------------------------------------------------------


# Who may lead: tests/test_incident_leads.py.


@pytest.mark.parametrize("who", ["nobody", "deactivated"])
def test_a_lead_who_is_not_an_active_user_is_refused(client_for: ClientFor, world: World, who: str) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    if who == "deactivated":
        world.viewer.is_active = False
        world.viewer.save()
        lead_id = world.viewer.pk
    else:
        lead_id = 999_999
    before = stored(incident["id"])

    response = update(editor, incident["id"], leadId=lead_id)

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_lead"
    assert stored(incident["id"]) == before


# --- Severity, title, description -----------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_severity_title_and_description_can_be_changed(
    client_for: ClientFor, world: World, method: str
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = update(
        editor,
        incident["id"],
        method,
        severity="critical",
        title="Orders table empty since Monday",
        description="The loader has been failing silently.",
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["severity"] == "critical"
    assert body["title"] == body["name"] == "Orders table empty since Monday"
    assert body["description"] == "The loader has been failing silently."
    row = Incident.objects.get(pk=incident["id"])
    assert (row.severity, row.title, row.description) == (
        "critical",
        "Orders table empty since Monday",
        "The loader has been failing silently.",
    )


def test_name_is_accepted_as_the_title_as_in_soda(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = update(editor, incident["id"], "post", name="Renamed the Soda way")

    assert response.status_code == 200, response.text
    assert response.json()["title"] == response.json()["name"] == "Renamed the Soda way"


def test_an_unknown_severity_is_a_bad_request(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(editor, incident["id"], severity="apocalyptic")

    assert response.status_code == 400
    assert stored(incident["id"]) == before


def test_a_blank_title_is_refused(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(editor, incident["id"], title="   ")

    assert response.status_code == 400
    assert response.json()["code"] == "title_required"
    assert stored(incident["id"]) == before


# --- Who may change it ----------------------------------------------------------------------------


def test_a_viewer_cannot_change_an_incident(client_for: ClientFor, world: World) -> None:
    incident = create_incident(client_for("editor"), world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(client_for("viewer"), incident["id"], severity="minor")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert stored(incident["id"]) == before


def test_an_outsider_is_told_the_incident_does_not_exist(client_for: ClientFor, world: World) -> None:
    incident = create_incident(client_for("editor"), world.orders_fail.pk)
    before = stored(incident["id"])

    response = update(client_for("outsider"), incident["id"], severity="minor")

    assert response.status_code == 404
    assert stored(incident["id"]) == before


# --- Versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_an_update_with_a_stale_version_gets_409_with_the_current_incident_and_changes_nothing(
    client_for: ClientFor, world: World, method: str
) -> None:
    editor, manager = client_for("editor"), client_for("manager")
    incident = create_incident(editor, world.orders_fail.pk)
    assert update(manager, incident["id"], method, title="Manager's title", version=1).status_code == 200
    before = stored(incident["id"])

    response = update(editor, incident["id"], method, title="Editor's title", severity="minor", version=1)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    assert body["current"] == editor.get(f"/incidents/{incident['id']}").json()
    assert body["current"]["title"] == "Manager's title"
    assert body["current"]["version"] == 2
    assert stored(incident["id"]) == before


def test_an_update_with_the_current_version_goes_through(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = update(editor, incident["id"], severity="minor", version=incident["version"])

    assert response.status_code == 200, response.text
    assert response.json()["version"] == incident["version"] + 1


def test_the_version_goes_up_by_one_with_each_change(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    assert incident["version"] == 1

    versions = [
        update(editor, incident["id"], **change).json()["version"]
        for change in (
            {"status": "investigating"},
            {"severity": "critical", "title": "Two fields, one change"},
            {"leadId": world.manager.pk},
            {"description": "More detail."},
        )
    ]

    assert versions == [2, 3, 4, 5]
    assert Incident.objects.get(pk=incident["id"]).version == 5


def test_an_update_that_changes_nothing_keeps_the_version(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, severity="critical", description="As it was.")
    before = stored(incident["id"])

    response = update(
        editor,
        incident["id"],
        title=incident["title"],
        severity="critical",
        description="As it was.",
        status="reported",
        leadId=world.editor.pk,
    )

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.json()["lastUpdated"] == incident["lastUpdated"]
    assert stored(incident["id"]) == before
