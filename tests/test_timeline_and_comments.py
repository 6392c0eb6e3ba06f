"""The incident timeline: creation, every change, every attached result and comments, oldest first."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from quell.incidents.models import EventKind, Incident, TimelineEvent
from tests.conftest import ClientFor, World


def create_incident(client: httpx.Client, *result_ids: int) -> dict[str, Any]:
    response = client.post(
        "/incidents", json={"title": "Orders table is empty", "checkResultIds": list(result_ids)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def timeline(client: httpx.Client, incident_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/incidents/{incident_id}/timeline")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def when(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["created"])


def test_the_timeline_tells_the_story_oldest_first(client_for: ClientFor, world: World) -> None:
    editor, manager = client_for("editor"), client_for("manager")
    incident = create_incident(editor, world.orders_fail.pk)
    path = f"/incidents/{incident['id']}"
    assert manager.patch(path, json={"status": "investigating"}).status_code == 200
    assert (
        editor.post(f"{path}/checkResults", json={"checkResultIds": [world.orders_warn.pk]}).status_code
        == 200
    )
    assert manager.post(f"{path}/comments", json={"text": "Looking at the loader."}).status_code == 201
    assert editor.patch(path, json={"leadId": world.manager.pk}).status_code == 200

    events = timeline(client_for("viewer"), incident["id"])

    assert [(e["type"], e["field"], e["actor"]["email"]) for e in events] == [
        ("created", None, "editor@example.com"),
        ("resultAttached", None, "editor@example.com"),
        ("changed", "status", "manager@example.com"),
        ("resultAttached", None, "editor@example.com"),
        ("comment", None, "manager@example.com"),
        ("changed", "lead", "editor@example.com"),
    ]
    assert [when(e) for e in events] == sorted(when(e) for e in events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_a_change_records_the_field_old_and_new_values_who_and_when(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    before = dt.datetime.now(dt.UTC)

    client_for("manager").patch(f"/incidents/{incident['id']}", json={"severity": "critical"})

    after = dt.datetime.now(dt.UTC)
    change = timeline(editor, incident["id"])[-1]
    assert change["type"] == "changed"
    assert (change["field"], change["oldValue"], change["newValue"]) == ("severity", "major", "critical")
    assert change["actor"]["email"] == "manager@example.com"
    assert before - dt.timedelta(seconds=1) <= when(change) <= after + dt.timedelta(seconds=1)


def test_one_update_of_several_fields_records_each_field(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    editor.patch(
        f"/incidents/{incident['id']}",
        json={"title": "Empty orders", "description": "Since 02:00.", "resolutionNotes": "Rerun"},
    )

    changes = {e["field"]: (e["oldValue"], e["newValue"]) for e in timeline(editor, incident["id"])[2:]}
    assert changes == {
        "title": ("Orders table is empty", "Empty orders"),
        "description": ("", "Since 02:00."),
        "resolutionNotes": ("", "Rerun"),
    }


def test_a_lead_change_shows_both_leads_as_people(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    editor.patch(f"/incidents/{incident['id']}", json={"leadId": world.manager.pk})

    change = timeline(editor, incident["id"])[-1]
    assert change["field"] == "lead"
    assert change["oldValue"] == {"id": world.editor.pk, "email": "editor@example.com", "name": "Editor"}
    assert change["newValue"] == {"id": world.manager.pk, "email": "manager@example.com", "name": "Manager"}


def test_creation_records_the_title_and_each_starting_result(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk, world.orders_warn.pk)

    created, *attached = timeline(editor, incident["id"])

    assert (created["type"], created["text"]) == ("created", "Orders table is empty")
    assert [(e["type"], e["checkResult"]["id"]) for e in attached] == [
        ("resultAttached", world.orders_fail.pk),
        ("resultAttached", world.orders_warn.pk),
    ]
    assert attached[0]["checkResult"]["checkName"] == "row_count > 0"
    assert attached[0]["checkResult"]["outcome"] == "fail"


def test_the_timeline_leaves_out_results_from_datasets_the_reader_cannot_view(
    client_for: ClientFor, world: World
) -> None:
    incident = create_incident(client_for("admin"), world.orders_fail.pk, world.customers_fail.pk)

    # The outsider sees the incident through customers, but orders is private.
    events = timeline(client_for("outsider"), incident["id"])

    assert [e["checkResult"]["id"] for e in events if e["type"] == "resultAttached"] == [
        world.customers_fail.pk
    ]


def test_someone_who_cannot_see_the_incident_cannot_read_its_timeline(
    client_for: ClientFor, world: World
) -> None:
    incident = create_incident(client_for("editor"), world.orders_fail.pk)

    response = client_for("outsider").get(f"/incidents/{incident['id']}/timeline")

    assert response.status_code == 404


# --- Comments -------------------------------------------------------------------------------------


def test_a_comment_is_added_to_the_timeline(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = editor.post(f"/incidents/{incident['id']}/comments", json={"text": "  Paged the owner.  "})

    assert response.status_code == 201, response.text
    comment = response.json()
    assert comment["type"] == "comment"
    assert comment["text"] == "Paged the owner."
    assert comment["actor"]["email"] == "editor@example.com"
    assert timeline(editor, incident["id"])[-1] == comment


def test_a_viewer_cannot_comment(client_for: ClientFor, world: World) -> None:
    incident = create_incident(client_for("editor"), world.orders_fail.pk)

    response = client_for("viewer").post(f"/incidents/{incident['id']}/comments", json={"text": "Me too"})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not TimelineEvent.objects.filter(kind=EventKind.COMMENT).exists()


def test_an_outsider_cannot_comment_on_an_incident_they_cannot_see(
    client_for: ClientFor, world: World
) -> None:
    incident = create_incident(client_for("editor"), world.orders_fail.pk)

    response = client_for("outsider").post(f"/incidents/{incident['id']}/comments", json={"text": "Hi"})

    assert response.status_code == 404
    assert not TimelineEvent.objects.filter(kind=EventKind.COMMENT).exists()


def test_an_empty_comment_is_refused(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    response = editor.post(f"/incidents/{incident['id']}/comments", json={"text": " \n "})

    assert response.status_code == 400
    assert response.json()["code"] == "comment_empty"
    assert not TimelineEvent.objects.filter(kind=EventKind.COMMENT).exists()


def test_a_comment_does_not_bump_the_version_but_counts_as_activity(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)

    editor.post(f"/incidents/{incident['id']}/comments", json={"text": "Still looking."})

    assert editor.get(f"/incidents/{incident['id']}").json()["version"] == incident["version"] == 1
    row = Incident.objects.get(pk=incident["id"])
    assert row.version == 1
    assert row.updated_at > row.created_at


def test_an_edit_made_with_the_version_read_before_a_comment_still_goes_through(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    incident = create_incident(editor, world.orders_fail.pk)
    client_for("manager").post(f"/incidents/{incident['id']}/comments", json={"text": "On it."})

    response = editor.patch(
        f"/incidents/{incident['id']}", json={"severity": "minor", "version": incident["version"]}
    )

    assert response.status_code == 200, response.text
