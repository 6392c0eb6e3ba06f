"""Requests that arrive at the same moment: incident numbers stay unique and one of two edits wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx

from quell.incidents.models import EventKind, Incident, TimelineEvent
from tests.conftest import ClientFor, World

ROUNDS = 5


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run each call in its own thread, all released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


def test_incidents_created_at_the_same_time_get_distinct_numbers(client_for: ClientFor, world: World) -> None:
    editor, manager = client_for("editor"), client_for("manager")
    numbers: list[int] = []

    for round_ in range(ROUNDS):
        responses = at_once(
            [
                partial(
                    client.post,
                    "/incidents",
                    json={
                        "title": f"{who} in round {round_}",
                        "checkResultIds": [world.orders_fail.pk],
                        "allowDuplicate": True,
                    },
                )
                for who, client in (("editor", editor), ("manager", manager))
            ]
        )

        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
        numbers += [r.json()["number"] for r in responses]

    assert len(set(numbers)) == len(numbers) == 2 * ROUNDS
    assert sorted(Incident.objects.values_list("number", flat=True)) == sorted(numbers)


def test_of_two_updates_with_the_same_version_exactly_one_wins(client_for: ClientFor, world: World) -> None:
    editor, manager = client_for("editor"), client_for("manager")
    created = editor.post("/incidents", json={"title": "Race", "checkResultIds": [world.orders_fail.pk]})
    incident: dict[str, Any] = created.json()
    path = f"/incidents/{incident['id']}"

    for _ in range(ROUNDS):
        version = editor.get(path).json()["version"]
        events_before = TimelineEvent.objects.filter(incident_id=incident["id"]).count()
        responses = at_once(
            [
                partial(client.patch, path, json={"title": f"{who}'s title v{version}", "version": version})
                for who, client in (("Editor", editor), ("Manager", manager))
            ]
        )

        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 409], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()
        loser = next(r for r in responses if r.status_code == 409).json()
        assert winner["version"] == version + 1
        assert loser["current"]["version"] == version + 1
        assert loser["current"]["title"] == winner["title"]
        row = Incident.objects.get(pk=incident["id"])
        assert (row.title, row.version) == (winner["title"], version + 1)
        new_events = TimelineEvent.objects.filter(incident_id=incident["id"]).order_by("id")[events_before:]
        assert [(e.kind, e.new_value) for e in new_events] == [(EventKind.CHANGED, winner["title"])]


def test_an_edit_waiting_on_another_that_hands_over_the_lead_still_finds_the_incident(
    client_for: ClientFor, world: World
) -> None:
    # On PostgreSQL the second edit waits for the first's row lock, then re-checks its row against the
    # new version. Joining the lead into that locking read made the re-check fail once the lead had
    # changed, and the waiting edit answered 404 (seen under load).
    editor, manager = client_for("editor"), client_for("manager")
    created = editor.post("/incidents", json={"title": "Handover", "checkResultIds": [world.orders_fail.pk]})
    path = f"/incidents/{created.json()['id']}"

    for round_ in range(2 * ROUNDS):
        lead = world.manager if round_ % 2 == 0 else world.editor
        responses = at_once(
            [
                partial(editor.patch, path, json={"leadId": lead.pk}),
                partial(manager.patch, path, json={"title": f"Handover, round {round_}"}),
            ]
        )

        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        assert Incident.objects.get(pk=created.json()["id"]).lead_id == lead.pk
