"""Each page costs a fixed number of queries, however many rows it shows (no query per row)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.incidents import search as title_search
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.conftest import ClientAs, day, push_at


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def open_incidents(world: World, count: int, start: int = 0) -> list[Incident]:
    """`count` incidents on orders, each from its own check, moved along, commented and led by the manager."""
    made = []
    for n in range(start, start + count):
        (result,) = push_at(world.admin, "orders", day(n), (f"check {n}", "fail", n))
        incident = incidents.create_incident(
            by=world.editor, title=f"Problem {n}", check_result_ids=[result.pk]
        )
        incidents.update_incident(
            incident.pk, by=world.editor, status="investigating", lead_id=world.manager.pk
        )
        incidents.add_comment(incident.pk, "Looking.", by=world.manager)
        made.append(incident)
    return made


PAGES: list[tuple[str, Callable[[World], str]]] = [
    ("incidents page", lambda w: "/incidents/"),
    (
        "incidents page, filtered and sorted",
        lambda w: f"/incidents/?status=open&lead={w.manager.pk}&sort=severity",
    ),
    ("dataset incidents tab", lambda w: f"/datasets/{w.orders.pk}/incidents"),
    ("home", lambda w: "/"),
    ("datasets", lambda w: "/datasets/"),
    ("dataset checks tab", lambda w: f"/datasets/{w.orders.pk}"),
]


@pytest.mark.parametrize("role", ["admin", "manager", "viewer"])
@pytest.mark.parametrize(("page", "url"), PAGES, ids=[page for page, _ in PAGES])
def test_a_list_page_costs_the_same_for_3_and_for_30_incidents(
    client_as: ClientAs, world: World, role: str, page: str, url: Callable[[World], str]
) -> None:
    client = client_as(role)
    open_incidents(world, 3)
    client.get(url(world))  # the session is loaded once, outside the count
    few = queries(client, url(world))

    open_incidents(world, 27, start=3)

    assert queries(client, url(world)) == few


def test_the_check_page_costs_the_same_for_few_and_many_results(client_as: ClientAs, world: World) -> None:
    client = client_as("editor")
    check_url = f"/checks/{world.orders_fail.check_ref_id}"
    for n in range(1, 3):
        push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", 0))
    client.get(check_url)
    few = queries(client, check_url)

    results = []
    for n in range(3, 40):
        results += push_at(world.admin, "orders", day(n), ("row_count > 0", "fail" if n % 2 else "warn", n))
    for n in range(0, 20, 2):
        incidents.create_incident(
            by=world.editor, title=f"Empty {n}", check_result_ids=[results[n].pk, results[n + 1].pk]
        )

    assert queries(client, check_url) == few


def test_the_create_incident_dialog_adds_no_query_to_the_check_page(
    client_as: ClientAs, world: World
) -> None:
    # The editor's page carries the dialog and the viewer's does not; the form is loaded on opening.
    check_url = f"/checks/{world.orders_fail.check_ref_id}"
    for n in range(1, 5):
        push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", n))
    editor, viewer = client_as("editor"), client_as("viewer")
    editor.get(check_url)
    viewer.get(check_url)

    assert queries(editor, check_url) == queries(viewer, check_url)


def test_the_first_page_of_a_checks_results_is_not_read_twice(client_as: ClientAs, world: World) -> None:
    # All results' first page is the head of the chart's newest ones; a filtered page needs its own read.
    check_url = f"/checks/{world.orders_fail.check_ref_id}"
    for n in range(1, 5):
        push_at(world.admin, "orders", day(n), ("row_count > 0", "fail", n))
    client = client_as("viewer")
    client.get(check_url)

    assert queries(client, check_url) == queries(client, check_url + "?outcome=failing") - 1


def test_the_incident_page_costs_the_same_however_long_its_story(client_as: ClientAs, world: World) -> None:
    client = client_as("editor")
    (incident,) = open_incidents(world, 1)
    url = f"/incidents/{incident.number}"
    client.get(url)
    few = queries(client, url)

    more = []
    for n in range(1, 25):
        more += push_at(world.admin, "orders", day(n), ("check 0", "fail", n))
    incidents.attach_check_results(incident.pk, [r.pk for r in more], by=world.editor)
    for n in range(10):
        incidents.update_incident(
            incident.pk, by=world.editor, lead_id=[world.editor, world.manager][n % 2].pk
        )
        incidents.add_comment(incident.pk, f"note {n}", by=world.manager)

    assert queries(client, url) == few


def test_the_incident_page_charts_its_linked_checks_in_one_query_however_many(
    client_as: ClientAs, world: World
) -> None:
    client = client_as("editor")
    (incident,) = open_incidents(world, 1)
    url = f"/incidents/{incident.number}"
    client.get(url)
    one_check = queries(client, url)

    more = []
    for n in range(1, 5):
        more += push_at(world.admin, "orders", day(n), *((f"other check {k}", "fail", n) for k in range(4)))
    incidents.attach_check_results(incident.pk, [r.pk for r in more], by=world.editor)

    assert queries(client, url) == one_check
    assert client.get(url).content.decode().count('<figure class="chart chart-small">') == 5


@pytest.mark.parametrize(
    ("search", "common_from", "reads"),
    [
        pytest.param("pump stalled", 3, ['"pump" AND "stalled"'], id="common whole words"),
        pytest.param("pump stall", 3, ['"pump" AND "stall"', '"pump"* AND "stall"*'], id="common prefixes"),
        pytest.param("pump stall", 10_000, ['"pump" AND "stall"', '"pump"* AND "stall"*'], id="rare words"),
    ],
)
def test_a_search_page_makes_at_most_one_prefix_search_of_the_full_text_index_on_sqlite(
    client_as: ClientAs,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    search: str,
    common_from: int,
    reads: list[str],
) -> None:
    # FTS5 reads every index entry of a prefix search whatever the LIMIT: at 1,000,000 incidents
    # each costs tens of milliseconds, and the page used to make two or three. Whole words are
    # read only as far as the LIMIT, so common ones are looked up first.
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL matches the GIN index within each query")
    monkeypatch.setattr(title_search, "SQLITE_COMMON_MATCHES", common_from)
    monkeypatch.setattr(title_search, "SEARCH_COUNT_CAP", 2)
    for n in range(4):
        incidents.create_incident(
            by=world.editor,
            title=f"Pump {n} stalled",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )

    with CaptureQueriesContext(connection) as captured:
        # A member with another filter: the counts also ask how many titles matched in all.
        response = client_as("viewer").get(f"/incidents/?q={search}&reporter={world.editor.pk}")

    assert response.status_code == 200
    made = [q["sql"] for q in captured.captured_queries if " MATCH " in q["sql"]]
    assert [sql.split(" MATCH '")[1].split("' LIMIT")[0] for sql in made] == reads
    assert response.content.decode().count("Pump ") >= 4
