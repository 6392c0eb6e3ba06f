"""Merging incidents into one, and changing several at once: the services, the REST API for every role,
the timelines, the counts and the integrations' events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from quell.incidents import merging
from quell.incidents import services as incidents
from quell.incidents.models import (
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    IncidentTally,
    TimelineEvent,
)
from quell.integrations.models import Event
from quell.lib.errors import Forbidden, Invalid, NotFound, Unprocessable
from tests.conftest import ClientFor, World
from tests.integrations.conftest import add_webhook
from tests.test_incident_counts import assert_tallies_match_counting


@pytest.fixture
def empty(world: World) -> Incident:
    """The editor's incident on orders: its row count failed."""
    return incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )


@pytest.fixture
def stale(world: World) -> Incident:
    """The manager's incident on orders, about the same night: its freshness failed."""
    return incidents.create_incident(
        by=world.manager, title="Orders are stale", check_result_ids=[world.orders_fail_2.pk]
    )


@pytest.fixture
def customers(world: World) -> Incident:
    """The admin's incident on customers, which everyone but the admin may only view."""
    return incidents.create_incident(
        by=world.admin, title="Too few customers", check_result_ids=[world.customers_fail.pk]
    )


def linked_results(incident: Incident) -> set[int]:
    return set(
        IncidentCheckResult.objects.filter(incident=incident).values_list("check_result_id", flat=True)
    )


def linked_datasets(incident: Incident) -> set[int]:
    return set(IncidentDataset.objects.filter(incident=incident).values_list("dataset_id", flat=True))


def stored(*found: Incident, counts: bool = True) -> list[Any]:
    """Everything a refused merge or change must leave as it was (the counts and the integrations'
    events too, unless `counts` is false: other incidents changed)."""
    ids = [incident.pk for incident in found]
    rows = [
        list(Incident.objects.filter(pk__in=ids).order_by("pk").values()),
        list(IncidentCheckResult.objects.filter(incident_id__in=ids).order_by("pk").values()),
        list(IncidentDataset.objects.filter(incident_id__in=ids).order_by("pk").values()),
        list(TimelineEvent.objects.filter(incident_id__in=ids).order_by("pk").values()),
    ]
    if counts:
        rows += [
            list(IncidentTally.objects.order_by("pk").values()),
            list(Event.objects.order_by("pk").values()),
        ]
    return rows


def merged_events(incident: Incident) -> list[tuple[Any, Any, str]]:
    events = TimelineEvent.objects.filter(incident=incident, kind=EventKind.MERGED).order_by("id")
    return [(event.old_value, event.new_value, event.text) for event in events]


def ref(incident: Incident) -> dict[str, Any]:
    return {"id": incident.pk, "number": incident.number, "title": incident.title}


# --- Merging ------------------------------------------------------------------------------------------


def test_merging_links_every_result_and_dataset_of_the_merged_incidents_to_the_target(
    world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    target = merging.merge_incidents(empty.pk, [stale.pk, customers.pk], by=world.admin)

    assert linked_results(target) == {world.orders_fail.pk, world.orders_fail_2.pk, world.customers_fail.pk}
    assert linked_datasets(target) == {world.orders.pk, world.customers.pk}
    # The answer is the target as it is now, with the details its representation shows.
    assert {link.check_result_id for link in target.visible_links} == linked_results(target)  # type: ignore[attr-defined]
    assert Incident.objects.get(pk=empty.pk).version == empty.version + 1


def test_the_merged_incidents_keep_their_own_results_for_their_history(
    world: World, empty: Incident, stale: Incident
) -> None:
    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    assert linked_results(stale) == {world.orders_fail_2.pk}
    assert linked_datasets(stale) == {world.orders.pk}


def test_each_merged_incident_is_resolved_as_a_duplicate_with_a_note_naming_the_target(
    world: World, empty: Incident, stale: Incident
) -> None:
    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    merged = Incident.objects.get(pk=stale.pk)
    assert (merged.status, merged.resolution_reason) == ("resolved", "duplicate")
    assert merged.resolution_notes == f"Merged into #{empty.number} Orders table is empty."
    assert merged.resolved_at is not None
    assert merged.version == stale.version + 1
    assert Incident.objects.get(pk=empty.pk).status == "reported"


def test_both_timelines_say_what_was_merged_into_what(world: World, empty: Incident, stale: Incident) -> None:
    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    assert merged_events(empty) == [(ref(stale), ref(empty), f"#{stale.number} Orders are stale")]
    assert merged_events(stale) == [(ref(stale), ref(empty), f"#{empty.number} Orders table is empty")]
    # On the merged incident, the merge comes first, then its resolution, all by the person merging.
    kinds = list(
        TimelineEvent.objects.filter(incident=stale)
        .exclude(kind__in=[EventKind.CREATED, EventKind.RESULT_ATTACHED])
        .order_by("created_at", "id")
        .values_list("kind", "field", "actor")
    )
    assert kinds == [
        ("merged", "merged", world.editor.pk),
        ("changed", "status", world.editor.pk),
        ("changed", "resolutionNotes", world.editor.pk),
        ("changed", "resolutionReason", world.editor.pk),
    ]


def test_the_targets_timeline_shows_the_results_it_gained_and_no_others(
    world: World, empty: Incident, stale: Incident
) -> None:
    incidents.attach_check_results(stale.pk, [world.orders_fail.pk], by=world.editor)

    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    attached = TimelineEvent.objects.filter(incident=empty, kind=EventKind.RESULT_ATTACHED)
    assert sorted(attached.values_list("check_result_id", flat=True)) == sorted(
        [world.orders_fail.pk, world.orders_fail_2.pk]
    )


def test_an_incident_already_resolved_keeps_its_resolution_and_is_linked_and_told(
    world: World, empty: Incident, stale: Incident
) -> None:
    incidents.update_incident(
        stale.pk, by=world.manager, status="resolved", resolution_notes="Reloaded.", resolution_reason="fixed"
    )
    before = Incident.objects.get(pk=stale.pk)

    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    after = Incident.objects.get(pk=stale.pk)
    assert (after.status, after.resolution_reason, after.resolution_notes) == (
        "resolved",
        "fixed",
        "Reloaded.",
    )
    assert after.version == before.version
    assert merged_events(stale) == [(ref(stale), ref(empty), f"#{empty.number} Orders table is empty")]
    assert world.orders_fail_2.pk in linked_results(empty)


def test_the_counts_follow_a_merge(
    world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    merging.merge_incidents(empty.pk, [stale.pk, customers.pk], by=world.admin)

    assert_tallies_match_counting(world, [world.orders, world.customers])


def test_a_person_who_manages_the_target_but_not_every_merged_incident_changes_nothing(
    world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    before = stored(empty, stale, customers)

    with pytest.raises(Forbidden) as refused:
        merging.merge_incidents(empty.pk, [stale.pk, customers.pk], by=world.editor)

    assert f"#{customers.number} 'Too few customers'" in refused.value.message
    assert f"#{stale.number}" not in refused.value.message
    assert stored(empty, stale, customers) == before


def test_a_person_who_may_not_manage_the_target_changes_nothing(
    world: World, empty: Incident, customers: Incident
) -> None:
    before = stored(empty, customers)

    with pytest.raises(Forbidden) as refused:
        merging.merge_incidents(customers.pk, [empty.pk], by=world.manager)

    assert f"#{customers.number}" in refused.value.message
    assert stored(empty, customers) == before


def test_an_incident_the_caller_cannot_see_is_not_found_and_nothing_changes(
    world: World, empty: Incident, customers: Incident
) -> None:
    before = stored(empty, customers)

    with pytest.raises(NotFound, match=f"Incident {empty.pk} not found"):
        merging.merge_incidents(customers.pk, [empty.pk], by=world.outsider)
    with pytest.raises(NotFound, match=f"Incident {empty.pk} not found"):
        merging.merge_incidents(empty.pk, [customers.pk], by=world.outsider)
    with pytest.raises(NotFound, match="Incidents 999999, 999998 not found"):
        merging.merge_incidents(customers.pk, [999999, 999998, 999999], by=world.admin)

    assert stored(empty, customers) == before


def test_a_resolved_target_is_refused(world: World, empty: Incident, stale: Incident) -> None:
    incidents.update_incident(empty.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")
    before = stored(empty, stale)

    with pytest.raises(Unprocessable) as refused:
        merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    assert refused.value.code == "merge_target_resolved"
    assert stored(empty, stale) == before


@pytest.mark.parametrize(
    ("ids", "code"),
    [([], "incident_ids_required"), ("target", "merge_into_itself"), ("too many", "too_many_incidents")],
)
def test_a_merge_of_nothing_of_itself_or_of_too_many_is_refused(
    world: World, empty: Incident, stale: Incident, ids: Any, code: str
) -> None:
    named = {"target": [stale.pk, empty.pk], "too many": list(range(1, merging.MERGED_MAX + 2))}.get(
        str(ids), ids
    )
    before = stored(empty, stale)

    with pytest.raises(Invalid) as refused:
        merging.merge_incidents(empty.pk, named, by=world.editor)

    assert refused.value.code == code
    assert stored(empty, stale) == before


def test_merging_records_an_update_of_the_target_for_the_integrations_and_the_resolution_of_the_other(
    world: World, empty: Incident, stale: Incident
) -> None:
    add_webhook(world, "https://example.com/hook")

    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)

    updates = {event.incident_id: event.payload for event in Event.objects.filter(type="incidentUpdated")}
    target = updates[empty.pk]
    assert target["addedCheckResults"] == [world.orders_fail_2.pk]
    assert target["changes"] == [{"field": "merged", "old": ref(stale), "new": ref(empty)}]
    assert target["changedBy"]["email"] == "editor@example.com"
    assert [d["name"] for d in target["incident"]["datasets"]] == ["orders"]
    other = updates[stale.pk]
    assert other["incident"]["status"] == "resolved"
    assert other["incident"]["resolutionReason"] == "duplicate"
    assert {change["field"] for change in other["changes"]} >= {"status", "resolutionReason"}


def test_a_merge_that_brings_no_new_result_still_tells_the_integrations(
    world: World, empty: Incident
) -> None:
    again = incidents.create_incident(
        by=world.editor, title="Empty again", check_result_ids=[world.orders_fail.pk], allow_duplicate=True
    )
    add_webhook(world, "https://example.com/hook")

    merging.merge_incidents(empty.pk, [again.pk], by=world.editor)

    target = Event.objects.get(type="incidentUpdated", incident_id=empty.pk).payload
    assert target["addedCheckResults"] == []
    assert [change["field"] for change in target["changes"]] == ["merged"]


def test_a_refused_merge_records_no_integration_event(
    world: World, empty: Incident, customers: Incident
) -> None:
    add_webhook(world, "https://example.com/hook")

    with pytest.raises(Forbidden):
        merging.merge_incidents(empty.pk, [customers.pk], by=world.editor)

    assert not Event.objects.exists()


# --- Changing several at once ------------------------------------------------------------------------


def test_a_bulk_change_changes_what_the_caller_may_change_and_lists_what_it_refused(
    world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    before = stored(customers, counts=False)

    outcome = merging.change_incidents(
        [customers.pk, empty.pk, stale.pk], by=world.editor, status="investigating", severity="critical"
    )

    assert [incident.pk for incident in outcome.changed] == [empty.pk, stale.pk]
    for incident in (empty, stale):
        assert Incident.objects.values_list("status", "severity").get(pk=incident.pk) == (
            "investigating",
            "critical",
        )
    (refusal,) = outcome.refused
    assert refusal["id"] == customers.pk
    assert refusal["number"] == customers.number
    assert refusal["code"] == "forbidden"
    assert "Manage incidents" in refusal["message"]
    assert stored(customers, counts=False) == before


def test_an_incident_the_caller_cannot_see_is_refused_without_its_number(
    world: World, empty: Incident, customers: Incident
) -> None:
    outcome = merging.change_incidents([empty.pk, customers.pk], by=world.outsider, severity="minor")

    assert outcome.changed == []
    assert outcome.refused[0] == {
        "id": empty.pk,
        "code": "not_found",
        "message": f"Incident {empty.pk} not found.",
    }
    assert outcome.refused[1]["number"] == customers.number
    assert outcome.refused[1]["code"] == "forbidden"


def test_resolving_in_bulk_without_a_note_is_refused_for_each_incident_that_has_none(
    world: World, empty: Incident, stale: Incident
) -> None:
    incidents.update_incident(stale.pk, by=world.manager, resolution_notes="Reloaded by hand.")

    outcome = merging.change_incidents([empty.pk, stale.pk], by=world.editor, status="resolved")

    assert [incident.pk for incident in outcome.changed] == [stale.pk]
    assert [(r["id"], r["code"]) for r in outcome.refused] == [(empty.pk, "resolution_notes_required")]
    assert Incident.objects.get(pk=empty.pk).status == "reported"
    assert Incident.objects.get(pk=stale.pk).resolution_reason == "fixed"


def test_resolving_in_bulk_with_a_reason_and_a_note_resolves_each(
    world: World, empty: Incident, stale: Incident
) -> None:
    outcome = merging.change_incidents(
        [empty.pk, stale.pk],
        by=world.manager,
        status="resolved",
        resolution_reason="expected",
        resolution_notes="Planned maintenance.",
    )

    assert outcome.refused == []
    assert set(
        Incident.objects.filter(pk__in=[empty.pk, stale.pk]).values_list("resolution_reason", flat=True)
    ) == {"expected"}


def test_a_lead_who_may_not_lead_one_of_them_is_refused_for_that_one_only(
    world: World, empty: Incident, customers: Incident
) -> None:
    outcome = merging.change_incidents([empty.pk, customers.pk], by=world.admin, lead_id=world.manager.pk)

    assert [incident.pk for incident in outcome.changed] == [empty.pk]
    assert [(r["id"], r["code"]) for r in outcome.refused] == [(customers.pk, "lead_cannot_manage")]
    assert Incident.objects.get(pk=customers.pk).lead_id == world.admin.pk


def test_the_counts_follow_a_bulk_change(
    world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    merging.change_incidents(
        [empty.pk, stale.pk, customers.pk], by=world.admin, status="fixing", severity="minor"
    )

    assert_tallies_match_counting(world, [world.orders, world.customers])


@pytest.mark.parametrize(
    ("ids", "changes", "code"),
    [
        ([], {"severity": "minor"}, "incident_ids_required"),
        (list(range(1, merging.BULK_MAX + 2)), {"severity": "minor"}, "too_many_incidents"),
        ("one", {}, "changes_required"),
        ("one", {"severity": None}, "changes_required"),
        ("one", {"severity": "tiny"}, "invalid_severity"),
        ("one", {"status": "resolved", "resolution_notes": "Reloaded\u0084"}, "invisible_character"),
        ("one", {"resolution_notes": "x" * 20_001}, "too_long"),
        ("one", {"title": "Renamed"}, "invalid"),
    ],
)
def test_a_bulk_change_no_incident_could_pass_is_refused_as_a_whole(
    world: World, empty: Incident, ids: Any, changes: dict[str, Any], code: str
) -> None:
    before = stored(empty)

    with pytest.raises(Invalid) as refused:
        merging.change_incidents([empty.pk] if ids == "one" else ids, by=world.editor, **changes)

    assert refused.value.code == code
    assert stored(empty) == before


# --- The API ------------------------------------------------------------------------------------------


ROLES = ["admin", "manager", "editor", "viewer", "outsider", "anonymous"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("admin", 200),
        ("manager", 200),
        ("editor", 200),
        ("viewer", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ],
)
def test_merging_through_the_api_as_each_role(
    client_for: ClientFor, world: World, empty: Incident, stale: Incident, role: str, status: int
) -> None:
    before = stored(empty, stale)

    response = client_for(role).post(f"/incidents/{empty.pk}/merge", json={"incidentIds": [stale.pk]})

    assert response.status_code == status, response.text
    if status != 200:
        assert {"code", "message"} <= set(response.json())
        assert stored(empty, stale) == before
        return
    body = response.json()
    assert body == client_for(role).get(f"/incidents/{empty.pk}").json()
    assert {r["id"] for r in body["checkResults"]} == {world.orders_fail.pk, world.orders_fail_2.pk}
    assert body["version"] == empty.version + 1
    other = client_for(role).get(f"/incidents/{stale.pk}").json()
    assert (other["status"], other["resolutionReason"]) == ("resolved", "duplicate")


def test_the_api_timelines_show_the_merge_on_both_sides(
    client_for: ClientFor, world: World, empty: Incident, stale: Incident
) -> None:
    editor = client_for("editor")
    assert editor.post(f"/incidents/{empty.pk}/merge", json={"incidentIds": [stale.pk]}).status_code == 200

    (into,) = [e for e in editor.get(f"/incidents/{empty.pk}/timeline").json() if e["type"] == "merged"]
    (away,) = [e for e in editor.get(f"/incidents/{stale.pk}/timeline").json() if e["type"] == "merged"]
    assert (into["field"], into["oldValue"], into["newValue"]) == ("merged", ref(stale), ref(empty))
    assert into["text"] == f"#{stale.number} Orders are stale"
    assert (away["oldValue"], away["newValue"]) == (ref(stale), ref(empty))
    assert away["text"] == f"#{empty.number} Orders table is empty"
    assert into["actor"]["email"] == away["actor"]["email"] == "editor@example.com"


def test_the_api_merge_with_mixed_permissions_is_a_403_naming_the_incident_and_changes_nothing(
    client_for: ClientFor, world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    before = stored(empty, stale, customers)

    response = client_for("manager").post(
        f"/incidents/{empty.pk}/merge", json={"incidentIds": [stale.pk, customers.pk]}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert f"#{customers.number} 'Too few customers'" in response.json()["message"]
    assert stored(empty, stale, customers) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"incidentIds": []}, "invalid_request"),
        ({}, "invalid_request"),
        ({"incidentIds": ["1"]}, "invalid_request"),
        ({"incidentIds": "target"}, "merge_into_itself"),
        ({"incidentIds": list(range(1, 102))}, "invalid_request"),
    ],
)
def test_the_api_refuses_a_merge_it_cannot_make_and_changes_nothing(
    client_for: ClientFor, empty: Incident, stale: Incident, body: dict[str, Any], code: str
) -> None:
    if body.get("incidentIds") == "target":
        body = {"incidentIds": [stale.pk, empty.pk]}
    before = stored(empty, stale)

    response = client_for("editor").post(f"/incidents/{empty.pk}/merge", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert stored(empty, stale) == before


def test_the_api_refuses_to_merge_into_a_resolved_incident(
    client_for: ClientFor, world: World, empty: Incident, stale: Incident
) -> None:
    incidents.update_incident(empty.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")

    response = client_for("editor").post(f"/incidents/{empty.pk}/merge", json={"incidentIds": [stale.pk]})

    assert response.status_code == 400
    assert response.json()["code"] == "merge_target_resolved"


def bulk(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/incidents/bulk", json=body)


@pytest.mark.parametrize(
    ("role", "changed"),
    [
        ("admin", ["empty", "stale", "customers"]),
        ("manager", ["empty", "stale"]),
        ("editor", ["empty", "stale"]),
        ("viewer", []),
        ("outsider", []),
    ],
)
def test_changing_several_through_the_api_as_each_role(
    client_for: ClientFor,
    world: World,
    empty: Incident,
    stale: Incident,
    customers: Incident,
    role: str,
    changed: list[str],
) -> None:
    named = {"empty": empty, "stale": stale, "customers": customers}

    response = bulk(
        client_for(role), incidentIds=[customers.pk, stale.pk, empty.pk], status="fixing", severity="minor"
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] == sorted(named[name].pk for name in changed)
    refused = {r["id"]: r for r in body["refused"]}
    assert set(refused) == {i.pk for name, i in named.items() if name not in changed}
    for name, incident in named.items():
        row = Incident.objects.get(pk=incident.pk)
        if name in changed:
            assert (row.status, row.severity) == ("fixing", "minor")
        else:
            assert (row.status, row.severity, row.version) == ("reported", "major", incident.version)
            hidden = role == "outsider" and name != "customers"
            assert refused[incident.pk] == {
                "id": incident.pk,
                "number": None if hidden else incident.number,
                "code": "not_found" if hidden else "forbidden",
                "message": refused[incident.pk]["message"],
            }


def test_changing_several_needs_an_api_key(client_for: ClientFor, empty: Incident) -> None:
    response = bulk(client_for("anonymous"), incidentIds=[empty.pk], severity="minor")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert Incident.objects.get(pk=empty.pk).severity == "major"


def test_the_api_resolves_several_and_refuses_those_without_a_note_one_by_one(
    client_for: ClientFor, world: World, empty: Incident, stale: Incident
) -> None:
    incidents.update_incident(stale.pk, by=world.manager, resolution_notes="Reloaded by hand.")

    response = bulk(
        client_for("editor"), incidentIds=[empty.pk, stale.pk], status="resolved", resolutionReason="expected"
    )

    assert response.status_code == 200
    assert response.json()["changed"] == [stale.pk]
    (refusal,) = response.json()["refused"]
    assert (refusal["id"], refusal["code"]) == (empty.pk, "resolution_notes_required")
    assert Incident.objects.get(pk=stale.pk).resolution_reason == "expected"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"incidentIds": [], "severity": "minor"}, "invalid_request"),
        ({"severity": "minor"}, "invalid_request"),
        ({"incidentIds": list(range(1, 202)), "severity": "minor"}, "invalid_request"),
        ({"incidentIds": "one"}, "changes_required"),
        ({"incidentIds": "one", "severity": None}, "changes_required"),
        ({"incidentIds": "one", "severity": "tiny"}, "invalid_request"),
        ({"incidentIds": "one", "severity": "major", "resolutionNotes": "\u0084"}, "invisible_character"),
        ({"incidentIds": "one", "title": "Renamed"}, "changes_required"),
    ],
)
def test_the_api_refuses_a_bulk_change_no_incident_could_pass(
    client_for: ClientFor, empty: Incident, body: dict[str, Any], code: str
) -> None:
    if body.get("incidentIds") == "one":
        body = {**body, "incidentIds": [empty.pk]}
    before = stored(empty)

    response = client_for("editor").post("/incidents/bulk", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert stored(empty) == before


def test_the_bulk_path_is_not_taken_for_an_incident_id(client_for: ClientFor, empty: Incident) -> None:
    editor = client_for("editor")

    assert editor.get(f"/incidents/{empty.pk}").status_code == 200
    assert editor.post(f"/incidents/{empty.pk}", json={"severity": "minor"}).status_code == 200
    assert editor.get("/incidents/bulk").status_code == 405
