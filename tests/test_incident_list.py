"""Listing incidents: filters, their combinations, order and paging of GET /api/v1/incidents."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from quell.accounts.models import User
from quell.catalog.models import CheckResult
from quell.incidents import paging as incident_paging
from quell.incidents import queries as incident_queries
from quell.incidents import search as title_search
from quell.incidents import services as incidents
from quell.incidents.models import Incident, Status
from quell.lib.errors import Invalid
from tests.conftest import T0, ClientFor, World

Params = dict[str, Any]


# --- Helpers --------------------------------------------------------------------------------------


def report(
    by: User,
    title: str,
    *results: CheckResult,
    severity: str = "major",
    status: str = "reported",
    lead: User | None = None,
    description: str = "",
    created: dt.datetime | None = None,
) -> Incident:
    """Create an incident through the service, optionally as if it had been created at `created`."""
    incident = incidents.create_incident(
        by=by,
        title=title,
        check_result_ids=[result.pk for result in results],
        severity=severity,
        status=status,
        lead_id=lead.pk if lead else None,
        description=description,
        resolution_notes="Reloaded the table." if status == Status.RESOLVED else "",
        allow_duplicate=True,  # lists of incidents sharing results, on purpose
    )
    if created is not None:
        Incident.objects.filter(pk=incident.pk).update(created_at=created)
    return incident


def hours(n: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def listed(client: httpx.Client, params: Params | None = None) -> list[int]:
    """The ids on the page the list answers, in its order."""
    response = client.get("/incidents", params=params)
    assert response.status_code == 200, response.text
    return [incident["id"] for incident in response.json()["content"]]


def page(client: httpx.Client, params: Params) -> dict[str, Any]:
    response = client.get("/incidents", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


@pytest.fixture
def admin(client_for: ClientFor) -> httpx.Client:
    """The admin sees every incident, so what a list leaves out is left out by the filter."""
    return client_for("admin")


# --- Order ----------------------------------------------------------------------------------------


def test_incidents_are_listed_newest_first(admin: httpx.Client, world: World) -> None:
    middle = report(world.editor, "Middle", world.orders_fail, created=hours(2))
    oldest = report(world.editor, "Oldest", world.orders_fail, created=hours(1))
    newest = report(world.editor, "Newest", world.orders_fail, created=hours(3))

    assert listed(admin) == [newest.pk, middle.pk, oldest.pk]


def test_incidents_created_at_the_same_moment_are_listed_latest_first(
    admin: httpx.Client, world: World
) -> None:
    first = report(world.editor, "First", world.orders_fail, created=hours(1))
    second = report(world.editor, "Second", world.orders_fail, created=hours(1))

    assert listed(admin) == [second.pk, first.pk]


# --- One filter at a time -------------------------------------------------------------------------


def test_the_status_filter_keeps_incidents_in_that_status(admin: httpx.Client, world: World) -> None:
    report(world.editor, "New", world.orders_fail)
    fixing = report(world.editor, "Being fixed", world.orders_fail, status="fixing")

    assert listed(admin, {"status": "fixing"}) == [fixing.pk]


def test_a_repeated_status_keeps_incidents_in_any_of_those_statuses(
    admin: httpx.Client, world: World
) -> None:
    reported = report(world.editor, "New", world.orders_fail, created=hours(1))
    report(world.editor, "Looking", world.orders_fail, status="investigating", created=hours(2))
    fixing = report(world.editor, "Being fixed", world.orders_fail, status="fixing", created=hours(3))
    report(world.editor, "Done", world.orders_fail, status="resolved", created=hours(4))

    assert listed(admin, {"status": ["reported", "fixing"]}) == [fixing.pk, reported.pk]


def test_the_severity_filter_keeps_incidents_of_that_severity(admin: httpx.Client, world: World) -> None:
    report(world.editor, "Usual", world.orders_fail)
    critical = report(world.editor, "Bad", world.orders_fail, severity="critical")

    assert listed(admin, {"severity": "critical"}) == [critical.pk]


def test_a_repeated_severity_keeps_incidents_of_any_of_those_severities(
    admin: httpx.Client, world: World
) -> None:
    minor = report(world.editor, "Small", world.orders_fail, severity="minor", created=hours(1))
    report(world.editor, "Usual", world.orders_fail, severity="major", created=hours(2))
    critical = report(world.editor, "Bad", world.orders_fail, severity="critical", created=hours(3))

    assert listed(admin, {"severity": ["minor", "critical"]}) == [critical.pk, minor.pk]


def test_the_dataset_filter_keeps_incidents_linked_to_that_dataset(admin: httpx.Client, world: World) -> None:
    report(world.admin, "Customers only", world.customers_fail, created=hours(1))
    orders = report(world.editor, "Orders only", world.orders_fail, created=hours(2))
    both = report(world.admin, "Both", world.orders_fail, world.customers_fail, created=hours(3))

    assert listed(admin, {"datasetId": world.orders.pk}) == [both.pk, orders.pk]


def test_a_repeated_dataset_keeps_incidents_linked_to_any_of_those_datasets(
    admin: httpx.Client, world: World
) -> None:
    customers = report(world.admin, "Customers only", world.customers_fail, created=hours(1))
    orders = report(world.editor, "Orders only", world.orders_fail, created=hours(2))

    assert listed(admin, {"datasetId": [world.orders.pk, world.customers.pk]}) == [orders.pk, customers.pk]


def test_the_lead_filter_keeps_incidents_led_by_that_user(admin: httpx.Client, world: World) -> None:
    report(world.editor, "Editor leads", world.orders_fail)
    managed = report(world.editor, "Manager leads", world.orders_fail, lead=world.manager)

    assert listed(admin, {"leadId": world.manager.pk}) == [managed.pk]


def test_a_repeated_lead_keeps_incidents_led_by_any_of_those_users(admin: httpx.Client, world: World) -> None:
    managed = report(world.editor, "Manager leads", world.orders_fail, lead=world.manager, created=hours(1))
    report(world.editor, "Editor leads", world.orders_fail, created=hours(2))
    led = report(world.editor, "Admin leads", world.orders_fail, lead=world.admin, created=hours(3))

    assert listed(admin, {"leadId": [world.manager.pk, world.admin.pk]}) == [led.pk, managed.pk]


def test_the_reporter_filter_keeps_incidents_reported_by_that_user(admin: httpx.Client, world: World) -> None:
    report(world.editor, "From the editor", world.orders_fail)
    by_manager = report(world.manager, "From the manager", world.orders_fail)

    assert listed(admin, {"reporterId": world.manager.pk}) == [by_manager.pk]


def test_a_repeated_reporter_keeps_incidents_reported_by_any_of_those_users(
    admin: httpx.Client, world: World
) -> None:
    by_editor = report(world.editor, "From the editor", world.orders_fail, created=hours(1))
    by_manager = report(world.manager, "From the manager", world.orders_fail, created=hours(2))
    report(world.admin, "From the admin", world.orders_fail, created=hours(3))

    params = {"reporterId": [world.editor.pk, world.manager.pk]}
    assert listed(admin, params) == [by_manager.pk, by_editor.pk]


def test_search_finds_a_title_word_in_any_case(admin: httpx.Client, world: World) -> None:
    found = report(world.editor, "Nightly LOAD wrote nothing", world.orders_fail)
    report(world.editor, "Duplicate ids", world.orders_fail)

    assert listed(admin, {"search": "load"}) == [found.pk]


def test_search_needs_every_word_in_any_order(admin: httpx.Client, world: World) -> None:
    both = report(world.editor, "Nightly load wrote nothing", world.orders_fail)
    report(world.editor, "Nightly export is late", world.orders_fail)
    report(world.editor, "Load of customers failed", world.orders_fail)

    assert listed(admin, {"search": "  LOAD   nightly "}) == [both.pk]


def test_search_looks_at_the_title_and_not_the_description(admin: httpx.Client, world: World) -> None:
    report(world.editor, "Empty table", world.orders_fail, description="The nightly load wrote nothing.")

    assert listed(admin, {"search": "nightly"}) == []


def test_a_blank_search_keeps_every_incident(admin: httpx.Client, world: World) -> None:
    older = report(world.editor, "One", world.orders_fail, created=hours(1))
    newer = report(world.editor, "Two", world.orders_fail, created=hours(2))

    assert listed(admin, {"search": "   "}) == [newer.pk, older.pk]


def test_from_keeps_incidents_created_at_or_after_it(admin: httpx.Client, world: World) -> None:
    report(world.editor, "Before", world.orders_fail, created=hours(1))
    at = report(world.editor, "At", world.orders_fail, created=hours(2))
    after = report(world.editor, "After", world.orders_fail, created=hours(3))

    assert listed(admin, {"from": hours(2).isoformat()}) == [after.pk, at.pk]


def test_to_keeps_incidents_created_before_it(admin: httpx.Client, world: World) -> None:
    before = report(world.editor, "Before", world.orders_fail, created=hours(1))
    report(world.editor, "At", world.orders_fail, created=hours(2))
    report(world.editor, "After", world.orders_fail, created=hours(3))

    assert listed(admin, {"to": hours(2).isoformat()}) == [before.pk]


def test_from_and_to_together_keep_incidents_created_in_between(admin: httpx.Client, world: World) -> None:
    report(world.editor, "Too early", world.orders_fail, created=hours(1))
    inside = report(world.editor, "Inside", world.orders_fail, created=hours(2))
    report(world.editor, "Too late", world.orders_fail, created=hours(3))

    assert listed(admin, {"from": hours(2).isoformat(), "to": hours(3).isoformat()}) == [inside.pk]


def test_from_and_to_understand_other_time_zones(admin: httpx.Client, world: World) -> None:
    inside = report(world.editor, "Inside", world.orders_fail, created=hours(2))
    report(world.editor, "Too late", world.orders_fail, created=hours(3))

    # T0 is 06:00 UTC: "Inside" was created at 08:00 UTC, 10:00 at UTC+2; "Too late" at 11:00 at UTC+2.
    params = {"from": "2026-11-01T09:00:00+02:00", "to": "2026-11-01T11:00:00+02:00"}
    assert listed(admin, params) == [inside.pk]


def test_the_incident_ids_filter_keeps_those_incidents(admin: httpx.Client, world: World) -> None:
    first = report(world.editor, "One", world.orders_fail, created=hours(1))
    report(world.editor, "Two", world.orders_fail, created=hours(2))
    third = report(world.editor, "Three", world.orders_fail, created=hours(3))

    assert listed(admin, {"incidentIds": [first.pk, third.pk]}) == [third.pk, first.pk]


# --- Filters together -----------------------------------------------------------------------------


def test_different_filters_combine_so_an_incident_must_match_them_all(
    admin: httpx.Client, world: World
) -> None:
    match = report(
        world.editor, "Orders load failed", world.orders_fail, severity="critical", created=hours(2)
    )
    report(world.editor, "Orders load failed", world.orders_fail, severity="minor", created=hours(2))
    report(world.editor, "Orders load failed", world.orders_fail, severity="critical", status="fixing")
    report(world.admin, "Customers load failed", world.customers_fail, severity="critical", created=hours(2))
    report(world.editor, "Orders export failed", world.orders_fail, severity="critical", created=hours(2))
    report(world.editor, "Orders load failed", world.orders_fail, severity="critical", created=hours(9))
    report(world.manager, "Orders load failed", world.orders_fail, severity="critical", created=hours(2))

    params = {
        "status": "reported",
        "severity": "critical",
        "datasetId": world.orders.pk,
        "reporterId": world.editor.pk,
        "leadId": world.editor.pk,
        "search": "load",
        "from": hours(1).isoformat(),
        "to": hours(3).isoformat(),
    }
    assert listed(admin, params) == [match.pk]


def test_repeated_values_are_either_or_while_different_filters_are_both(
    admin: httpx.Client, world: World
) -> None:
    minor_new = report(world.editor, "A", world.orders_fail, severity="minor", created=hours(1))
    critical_fixing = report(
        world.editor, "B", world.orders_fail, severity="critical", status="fixing", created=hours(2)
    )
    report(world.editor, "C", world.orders_fail, severity="major", status="fixing", created=hours(3))
    report(
        world.editor, "D", world.orders_fail, severity="critical", status="investigating", created=hours(4)
    )

    params = {"status": ["reported", "fixing"], "severity": ["minor", "critical"]}
    assert listed(admin, params) == [critical_fixing.pk, minor_new.pk]


def test_filters_only_narrow_what_the_caller_may_see(client_for: ClientFor, world: World) -> None:
    report(world.editor, "Orders load failed", world.orders_fail)
    customers = report(world.admin, "Customers load failed", world.customers_fail)

    assert listed(client_for("outsider"), {"search": "load failed"}) == [customers.pk]


@pytest.mark.parametrize("role", ["admin", "manager", "viewer", "outsider"])
def test_an_incident_in_the_list_reads_as_the_incident_itself_does(
    client_for: ClientFor, world: World, role: str
) -> None:
    # The list answers from rows (details.details_of), the incident from loaded models: the two must
    # show the same datasets and results, leaving out a private dataset's to whoever cannot view it.
    spanning = report(world.admin, "Spans both", world.orders_fail, world.customers_fail, lead=world.manager)
    incidents.attach_check_results(spanning.pk, [world.orders_warn.pk], by=world.admin)
    report(world.editor, "Orders only", world.orders_fail_2)
    client = client_for(role)

    page = client.get("/incidents").json()["content"]

    assert page, "everyone may see the incident that spans the public dataset"
    for shown in page:
        assert shown == client.get(f"/incidents/{shown['id']}").json()
    hidden = role == "outsider"
    (both,) = [shown for shown in page if shown["id"] == spanning.pk]
    assert [d["name"] for d in both["datasets"]] == (["customers"] if hidden else ["orders", "customers"])
    assert len(both["checkResults"]) == (1 if hidden else 3)


# --- Paging ---------------------------------------------------------------------------------------


def five_incidents(world: World) -> list[Incident]:
    """Five incidents, newest first."""
    made = [report(world.editor, f"Incident {n}", world.orders_fail, created=hours(n)) for n in range(1, 6)]
    return made[::-1]


def test_a_page_has_sodas_shape(admin: httpx.Client, world: World) -> None:
    newest = five_incidents(world)

    body = page(admin, {"size": 2})

    assert [incident["id"] for incident in body.pop("content")] == [newest[0].pk, newest[1].pk]
    assert isinstance(body.pop("nextCursor"), str)
    assert body == {
        "first": True,
        "last": False,
        "number": 0,
        "size": 2,
        "totalElements": 5,
        "totalPages": 3,
        "totalElementsExact": True,
    }


def test_pages_count_from_zero(admin: httpx.Client, world: World) -> None:
    newest = five_incidents(world)

    body = page(admin, {"page": 1, "size": 2})

    assert [incident["id"] for incident in body["content"]] == [newest[2].pk, newest[3].pk]
    assert (body["first"], body["last"], body["number"]) == (False, False, 1)


def test_the_last_page_holds_what_is_left(admin: httpx.Client, world: World) -> None:
    newest = five_incidents(world)

    body = page(admin, {"page": 2, "size": 2})

    assert [incident["id"] for incident in body["content"]] == [newest[4].pk]
    assert (body["first"], body["last"], body["number"], body["size"]) == (False, True, 2, 2)


@pytest.mark.parametrize("sort", ["created", "updated", "severity"])
@pytest.mark.parametrize(("role", "seen"), [("viewer", 9), ("outsider", 4)])
def test_deep_pages_read_by_ids_first_hold_the_same_rows_in_the_same_order(
    client_for: ClientFor, world: World, monkeypatch: pytest.MonkeyPatch, sort: str, role: str, seen: int
) -> None:
    # Past DEFERRED_OFFSET rows a page by number reads its ids, then its rows. The outsider sees
    # only the incidents on customers.
    severities = ["minor", "critical", "major"]
    for n in range(9):
        result = world.customers_fail if n % 2 else world.orders_fail
        report(world.admin, f"Incident {n}", result, severity=severities[n % 3], created=hours(n % 4))
    Incident.objects.filter(title="Incident 2").update(updated_at=hours(30))
    client = client_for(role)

    def pages(deferred_from: int) -> list[tuple[list[int], bool, bool]]:
        monkeypatch.setattr(incident_paging, "DEFERRED_OFFSET", deferred_from)
        return [
            ([row["id"] for row in body["content"]], body["last"], body["nextCursor"] is None)
            for body in (page(client, {"page": n, "size": 3, "sort": sort}) for n in range(4))
        ]

    by_ids_first = pages(0)
    assert by_ids_first == pages(10_000)
    assert sum(len(ids) for ids, _, _ in by_ids_first) == seen


def test_a_page_past_the_end_is_empty(admin: httpx.Client, world: World) -> None:
    five_incidents(world)

    body = page(admin, {"page": 7, "size": 2})

    assert body["content"] == []
    assert (body["last"], body["totalElements"], body["totalPages"]) == (True, 5, 3)


def test_without_paging_parameters_the_first_hundred_are_listed(admin: httpx.Client, world: World) -> None:
    five_incidents(world)

    body = page(admin, {})

    assert (body["number"], body["size"], body["totalElements"], body["totalPages"]) == (0, 100, 5, 1)
    assert len(body["content"]) == 5
    assert body["first"] is body["last"] is True


def test_paging_counts_only_the_incidents_that_match_the_filters(admin: httpx.Client, world: World) -> None:
    five_incidents(world)
    critical = report(world.editor, "Bad", world.orders_fail, severity="critical")

    body = page(admin, {"severity": "critical", "size": 2})

    assert [incident["id"] for incident in body["content"]] == [critical.pk]
    assert (body["totalElements"], body["totalPages"], body["last"]) == (1, 1, True)


def test_an_empty_list_is_a_first_and_last_page_of_nothing(admin: httpx.Client, world: World) -> None:
    assert page(admin, {}) == {
        "content": [],
        "first": True,
        "last": True,
        "number": 0,
        "size": 100,
        "totalElements": 0,
        "totalPages": 0,
        "nextCursor": None,
        "totalElementsExact": True,
    }


def test_the_largest_page_size_is_a_thousand(admin: httpx.Client, world: World) -> None:
    five_incidents(world)

    assert page(admin, {"size": 1000})["size"] == 1000


# --- Invalid filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        pytest.param({"status": "closed"}, "status", id="an unknown status"),
        pytest.param({"status": ["reported", "closed"]}, "status", id="an unknown status among known ones"),
        pytest.param({"severity": "blocker"}, "severity", id="an unknown severity"),
        pytest.param({"page": -1}, "page", id="a negative page"),
        pytest.param({"page": "first"}, "page", id="a page that is not a number"),
        pytest.param({"size": 0}, "size", id="a page size of zero"),
        pytest.param({"size": 5000}, "size", id="a page size over a thousand"),
        pytest.param({"datasetId": "orders"}, "datasetId", id="a dataset id that is not a number"),
        pytest.param({"leadId": "me"}, "leadId", id="a lead id that is not a number"),
        pytest.param({"reporterId": "me"}, "reporterId", id="a reporter id that is not a number"),
        pytest.param({"from": "yesterday"}, "from", id="a from that is not a time"),
        pytest.param({"to": "2026-13-45"}, "to", id="a to that is not a time"),
        pytest.param({"search": "x" * 201}, "search", id="a search over 200 characters"),
    ],
)
def test_an_invalid_filter_is_refused_with_400_naming_it(
    admin: httpx.Client, world: World, params: Params, parameter: str
) -> None:
    response = admin.get("/incidents", params=params)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == "invalid_request"
    assert body["message"].startswith(parameter)


@pytest.mark.parametrize("value", ["-128710", "1700000000", "1.5e9"])
def test_a_number_is_not_taken_for_a_date(client_for: ClientFor, value: str) -> None:
    response = client_for("admin").get("/incidents", params={"to": value})
    assert response.status_code == 400
    assert "ISO 8601" in response.json()["message"]


# --- Cursors: keyset pages ------------------------------------------------------------------------


def test_next_cursor_leads_to_the_page_after_without_overlap(admin: httpx.Client, world: World) -> None:
    newest = five_incidents(world)

    first = page(admin, {"size": 2})
    second = page(admin, {"size": 2, "cursor": first["nextCursor"]})
    third = page(admin, {"size": 2, "cursor": second["nextCursor"]})

    assert [i["id"] for i in second["content"]] == [newest[2].pk, newest[3].pk]
    assert [i["id"] for i in third["content"]] == [newest[4].pk]
    assert (second["number"], second["first"], second["last"]) == (1, False, False)
    assert (third["number"], third["last"], third["nextCursor"]) == (2, True, None)


def test_a_cursor_keeps_incidents_created_at_the_same_moment_apart(admin: httpx.Client, world: World) -> None:
    same = [report(world.editor, f"Same {n}", world.orders_fail, created=hours(1)) for n in range(3)]

    first = page(admin, {"size": 2})
    second = page(admin, {"size": 2, "cursor": first["nextCursor"]})

    assert [i["id"] for i in first["content"] + second["content"]] == [i.pk for i in reversed(same)]


def test_a_cursor_follows_the_filters_given_with_it(admin: httpx.Client, world: World) -> None:
    critical = [
        report(world.editor, f"Bad {n}", world.orders_fail, severity="critical", created=hours(n))
        for n in range(3)
    ]
    report(world.editor, "Mild", world.orders_fail, severity="minor", created=hours(1))

    first = page(admin, {"size": 2, "severity": "critical"})
    second = page(admin, {"size": 2, "severity": "critical", "cursor": first["nextCursor"]})

    assert [i["id"] for i in second["content"]] == [critical[0].pk]
    assert second["last"] is True


@pytest.mark.parametrize(
    ("cursor", "status", "code"),
    [
        # A cursor this list did not give out fits the schema, which cannot tell it from one it did: 400.
        pytest.param("not-a-cursor", 400, "invalid_cursor", id="garbage"),
        pytest.param(
            "WyJjcmVhdGVkIixbIjIwMjYiLCIxIl0sMV0:1xWeVH:forgedsignature",
            400,
            "invalid_cursor",
            id="a forged signature",
        ),
        # One that breaks the schema's length or characters is a 400.
        pytest.param("x" * 1001, 400, "invalid_request", id="too long"),
        pytest.param("not a cursor", 400, "invalid_request", id="spaces"),
    ],
)
def test_a_bad_cursor_is_refused(
    admin: httpx.Client, world: World, cursor: str, status: int, code: str
) -> None:
    response = admin.get("/incidents", params={"cursor": cursor})

    assert response.status_code == status
    assert response.json()["code"] == code
    assert "cursor" in response.json()["message"]


def test_a_cursor_made_for_another_sort_is_refused() -> None:
    made = incident_paging.Cursor("updated", ("2026-11-01T06:00:00+00:00", "1"), 1).encode()

    with pytest.raises(Invalid, match="sorted by updated"):
        incident_paging.Cursor.decode(made, "created")


# --- Search by words --------------------------------------------------------------------------------


def test_search_matches_the_start_of_a_word(admin: httpx.Client, world: World) -> None:
    loader = report(world.editor, "Loader stuck on orders_daily", world.orders_fail)
    report(world.editor, "Upload failed", world.orders_fail)

    assert listed(admin, {"search": "load"}) == [loader.pk]
    assert listed(admin, {"search": "daily"}) == [loader.pk]
    assert listed(admin, {"search": "oad"}) == []


def test_search_finds_a_title_after_it_changed_and_not_its_old_words(
    admin: httpx.Client, world: World
) -> None:
    incident = report(world.editor, "Empty table", world.orders_fail)
    incidents.update_incident(incident.pk, by=world.editor, title="Duplicate rows")

    assert listed(admin, {"search": "duplicate"}) == [incident.pk]
    assert listed(admin, {"search": "empty"}) == []


def test_a_search_of_only_punctuation_finds_nothing(admin: httpx.Client, world: World) -> None:
    report(world.editor, "100% of rows null", world.orders_fail)

    assert listed(admin, {"search": "%"}) == []
    assert listed(admin, {"search": '" * AND OR'}) == []


def test_search_counts_are_exact_below_the_cap(admin: httpx.Client, world: World) -> None:
    report(world.editor, "Nightly load", world.orders_fail)
    report(world.editor, "Nightly export", world.orders_fail)

    body = page(admin, {"search": "nightly", "size": 1})

    assert (body["totalElements"], body["totalElementsExact"], body["totalPages"]) == (2, True, 2)


@pytest.mark.parametrize(
    ("search", "common_from"),
    [
        pytest.param("pump stalled", 3, id="common whole words"),
        pytest.param("pump stall", 3, id="common prefixes"),
        pytest.param("pump stall", 10_000, id="rare words"),
    ],
)
def test_a_search_lists_and_counts_the_same_matches_however_many_titles_match(
    world: World, monkeypatch: pytest.MonkeyPatch, search: str, common_from: int
) -> None:
    # With many matches SQLite walks the newest incidents and checks each title; with few it looks
    # the matches up by id. Either way the list and its counts agree.
    monkeypatch.setattr(title_search, "SQLITE_COMMON_MATCHES", common_from)
    pumps = [report(world.editor, f"Pump {n} stalled", world.orders_fail, created=hours(n)) for n in range(5)]
    incidents.update_incident(pumps[1].pk, by=world.editor, status="fixing")
    report(world.editor, "Pump room", world.orders_fail)
    report(world.admin, "Customers stalled", world.customers_fail)

    rows, counts = incident_queries.find_incidents(
        incident_queries.IncidentFilters(search=search), by=world.viewer
    )
    reported, _ = incident_queries.find_incidents(
        incident_queries.IncidentFilters(search=search, statuses=["reported"]), by=world.viewer
    )

    assert [row.pk for row in rows] == [pump.pk for pump in reversed(pumps)]
    assert counts.counts == {"reported": 4, "fixing": 1}
    assert counts.total() == (5, True)
    assert [row.pk for row in reported] == [pump.pk for pump in reversed(pumps) if pump != pumps[1]]
