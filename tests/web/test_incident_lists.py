"""The org-wide Incidents page and a dataset's Incidents tab: filters in the URL, search, sort, pages, counts."""

from __future__ import annotations

import re

import pytest
from django.db.models import F

from quell.incidents import search as title_search
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentTally
from tests.conftest import World
from tests.web.conftest import ClientAs, day, push_at


@pytest.fixture
def several(world: World) -> dict[str, Incident]:
    """Four incidents with different leads, reporters, severities, statuses and datasets."""
    (orders_freshness,) = push_at(world.admin, "orders", day(1), ("freshness(updated_at) < 1d", "fail", 40))
    empty = incidents.create_incident(
        by=world.editor,
        title="Orders table is empty",
        severity="critical",
        check_result_ids=[world.orders_fail.pk],
    )
    stale = incidents.create_incident(
        by=world.manager,
        title="Orders are stale",
        severity="minor",
        lead_id=world.editor.pk,
        check_result_ids=[orders_freshness.pk],
    )
    incidents.update_incident(stale.pk, by=world.manager, status="investigating")
    customers = incidents.create_incident(
        by=world.admin,
        title="Too few customers",
        severity="major",
        check_result_ids=[world.customers_fail.pk],
    )
    missing = incidents.create_incident(
        by=world.manager, title="Missing order ids", severity="major", check_result_ids=[world.orders_warn.pk]
    )
    incidents.update_incident(missing.pk, by=world.manager, status="resolved", resolution_notes="Backfilled.")
    return {"empty": empty, "stale": stale, "customers": customers, "missing": missing}


def titles(body: str) -> list[str]:
    """The incident titles in the list, in order."""
    table = body.split('id="incident-list"')[1]
    return re.findall(r'<a href="/incidents/\d+">([^<]+)</a>', table)


def listed(client_as: ClientAs, url: str, role: str = "admin") -> list[str]:
    response = client_as(role).get(url)
    assert response.status_code == 200
    return titles(response.content.decode())


def test_the_incidents_page_lists_every_incident_newest_first(
    client_as: ClientAs, several: dict[str, Incident]
) -> None:
    assert listed(client_as, "/incidents/") == [
        "Missing order ids",
        "Too few customers",
        "Orders are stale",
        "Orders table is empty",
    ]


def test_the_incidents_page_lists_only_what_the_user_may_see(
    client_as: ClientAs, several: dict[str, Incident]
) -> None:
    assert listed(client_as, "/incidents/", role="outsider") == ["Too few customers"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=reported", ["Too few customers", "Orders table is empty"]),
        ("status=open", ["Too few customers", "Orders are stale", "Orders table is empty"]),
        ("status=resolved", ["Missing order ids"]),
        ("severity=major", ["Missing order ids", "Too few customers"]),
        ("lead={editor}", ["Orders are stale", "Orders table is empty"]),
        ("reporter={manager}", ["Missing order ids", "Orders are stale"]),
        ("dataset={customers}", ["Too few customers"]),
        ("q=orders", ["Orders are stale", "Orders table is empty"]),
        ("q=ORDER+ids", ["Missing order ids"]),
        ("lead={editor}&status=investigating&reporter={manager}&severity=minor", ["Orders are stale"]),
        ("lead={editor}&severity=major", []),
    ],
)
def test_the_filters_and_title_search_combine(
    client_as: ClientAs, world: World, several: dict[str, Incident], query: str, expected: list[str]
) -> None:
    url = "/incidents/?" + query.format(
        editor=world.editor.pk, manager=world.manager.pk, customers=world.customers.pk
    )

    assert listed(client_as, url) == expected


def test_sorting_by_severity_puts_critical_first(client_as: ClientAs, several: dict[str, Incident]) -> None:
    assert listed(client_as, "/incidents/?sort=severity") == [
        "Orders table is empty",
        "Missing order ids",
        "Too few customers",
        "Orders are stale",
    ]


def test_sorting_by_last_update_puts_the_latest_change_first(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    incidents.add_comment(several["empty"].pk, "Still empty.", by=world.editor)

    assert listed(client_as, "/incidents/?sort=updated")[0] == "Orders table is empty"


def test_the_counts_per_status_follow_the_other_filters(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    body = client_as("admin").get(f"/incidents/?status=resolved&lead={world.manager.pk}").content.decode()
    counts = body.split('aria-label="Incidents by status"')[1].split("</nav>")[0]
    numbers = re.findall(
        r'Reported</span> <span class="count">(\d+)|Resolved</span> <span class="count">(\d+)', counts
    )

    # The manager leads one incident, a resolved one; choosing a status does not change the counts.
    assert numbers == [("0", ""), ("", "1")]
    assert 'All <span class="count">1</span>' in counts


def test_a_search_past_its_count_cap_claims_the_cap_with_a_plus_and_separates_thousands(
    client_as: ClientAs, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(title_search, "SEARCH_COUNT_CAP", 2)
    for n in range(4):
        incidents.create_incident(
            by=world.editor,
            title=f"Pump {n} stalled",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )

    body = client_as("admin").get("/incidents/?q=pump").content.decode()
    counts = body.split('aria-label="Incidents by status"')[1].split("</nav>")[0]

    # Three matches were counted (the cap and one more): the page claims two and more, not three.
    assert 'All <span class="count">2+</span>' in counts
    assert 'Reported</span> <span class="count">2+</span>' in counts
    assert len(titles(body)) == 4


def test_large_counts_separate_thousands(client_as: ClientAs, world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Pump stalled", check_result_ids=[world.orders_fail.pk]
    )
    # The org-wide counter an admin's page reads, as if 12,344 more incidents were reported.
    IncidentTally.objects.filter(dataset_set=None, everyone=False, status=incident.status).update(
        count=F("count") + 12_344
    )

    body = client_as("admin").get("/incidents/").content.decode()

    assert 'All <span class="count">12,345</span>' in body


def test_a_page_holds_fifty_and_links_to_the_next(client_as: ClientAs, world: World) -> None:
    for n in range(51):
        incidents.create_incident(
            by=world.editor,
            title=f"Problem {n}",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )

    first = client_as("editor").get("/incidents/").content.decode()
    second = client_as("editor").get("/incidents/?page=2").content.decode()

    assert len(titles(first)) == 50
    assert titles(second) == ["Problem 0"]
    assert "Page 1 of 2 · 51 in all" in first
    assert 'href="?after=' in first


def next_link(body: str) -> str:
    found = re.search(r'<a href="([^"]+)" rel="next">', body)
    assert found, "no Next link"
    return found.group(1).replace("&amp;", "&")


def test_next_follows_on_from_the_last_row_shown(client_as: ClientAs, world: World) -> None:
    for n in range(51):
        incidents.create_incident(
            by=world.editor,
            title=f"Problem {n}",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )
    first = client_as("editor").get("/incidents/").content.decode()

    second = client_as("editor").get("/incidents/" + next_link(first)).content.decode()

    assert titles(second) == ["Problem 0"]
    assert "Page 2 of 2 · 51 in all" in second
    assert 'rel="next"' not in second
    assert 'rel="first"' in second


def test_next_keeps_the_sort(client_as: ClientAs, world: World, several: dict[str, Incident]) -> None:
    for n in range(50):
        incidents.create_incident(
            by=world.editor,
            title=f"Minor {n}",
            severity="minor",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )
    first = client_as("admin").get("/incidents/?sort=severity").content.decode()

    second = listed(client_as, "/incidents/" + next_link(first))

    assert titles(first)[:3] == ["Orders table is empty", "Missing order ids", "Too few customers"]
    # The rest are minor, newest first; the oldest minor one ("Orders are stale") comes last.
    assert second[-1] == "Orders are stale"
    assert len(titles(first)) + len(second) == 54


def test_a_forged_cursor_is_refused_with_a_message(client_as: ClientAs, several: dict[str, Incident]) -> None:
    response = client_as("admin").get("/incidents/?after=WyJjcmVhdGVkIl0:forged")

    assert response.status_code == 400
    assert "cursor" in response.content.decode()


def test_paging_keeps_the_filters(client_as: ClientAs, world: World) -> None:
    for n in range(51):
        incidents.create_incident(
            by=world.editor,
            title=f"Problem {n}",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )

    body = client_as("editor").get("/incidents/?status=reported&q=problem").content.decode()

    assert next_link(body).startswith("?status=reported&q=problem&after=")


def test_a_wrong_filter_value_is_named_and_ignored(client_as: ClientAs, several: dict[str, Incident]) -> None:
    body = client_as("admin").get("/incidents/?severity=apocalyptic&sort=sideways").content.decode()

    assert "Severity:" in body
    assert "Sort:" in body
    assert len(titles(body)) == 4


def test_the_dataset_tab_lists_only_that_datasets_incidents(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    body = client_as("viewer").get(f"/datasets/{world.orders.pk}/incidents").content.decode()

    assert titles(body) == ["Missing order ids", "Orders are stale", "Orders table is empty"]
    assert 'id="f-dataset"' not in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=investigating", ["Orders are stale"]),
        ("severity=critical", ["Orders table is empty"]),
        ("lead={manager}", ["Missing order ids"]),
        ("reporter={editor}", ["Orders table is empty"]),
        ("reporter={manager}&status=open", ["Orders are stale"]),
    ],
)
def test_the_dataset_tab_filters_by_lead_status_reporter_and_severity(
    client_as: ClientAs, world: World, several: dict[str, Incident], query: str, expected: list[str]
) -> None:
    url = f"/datasets/{world.orders.pk}/incidents?" + query.format(
        manager=world.manager.pk, editor=world.editor.pk
    )

    assert listed(client_as, url, role="viewer") == expected


def test_the_reason_filter_keeps_the_incidents_resolved_for_those_reasons(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    incidents.update_incident(
        several["empty"].pk,
        by=world.editor,
        status="resolved",
        resolution_notes="The export was paused for the migration.",
        resolution_reason="expected",
    )

    assert listed(client_as, "/incidents/?reason=expected") == ["Orders table is empty"]
    # "Missing order ids" was resolved without a reason given: recorded as fixed.
    assert listed(client_as, "/incidents/?reason=fixed") == ["Missing order ids"]
    assert listed(client_as, "/incidents/?reason=fixed&reason=expected") == [
        "Missing order ids",
        "Orders table is empty",
    ]
    assert listed(client_as, "/incidents/?reason=falsePositive") == []


def test_the_counts_per_status_follow_the_reason_filter(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    body = client_as("admin").get("/incidents/?reason=fixed").content.decode()
    counts = body.split('aria-label="Incidents by status"')[1].split("</nav>")[0]

    assert 'Reported</span> <span class="count">0<' in counts
    assert 'Resolved</span> <span class="count">1<' in counts


def test_the_dataset_tab_filters_by_reason(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    incidents.update_incident(
        several["customers"].pk,
        by=world.admin,
        status="resolved",
        resolution_notes="A test customer was deleted.",
        resolution_reason="falsePositive",
    )

    assert listed(client_as, f"/datasets/{world.orders.pk}/incidents?reason=fixed", role="viewer") == [
        "Missing order ids"
    ]
    assert (
        listed(client_as, f"/datasets/{world.orders.pk}/incidents?reason=falsePositive", role="viewer") == []
    )
    assert listed(client_as, f"/datasets/{world.customers.pk}/incidents?reason=falsePositive") == [
        "Too few customers"
    ]


def test_the_list_says_why_a_resolved_incident_was_resolved(
    client_as: ClientAs, several: dict[str, Incident]
) -> None:
    body = client_as("admin").get("/incidents/?status=resolved").content.decode()

    assert '<span class="reason">Fixed</span>' in body


def test_the_filter_form_shows_the_filters_from_the_url(
    client_as: ClientAs, world: World, several: dict[str, Incident]
) -> None:
    body = (
        client_as("admin").get(f"/incidents/?status=fixing&lead={world.editor.pk}&q=stale").content.decode()
    )

    assert '<option value="fixing" selected>' in body
    assert f'<option value="{world.editor.pk}" selected>Editor</option>' in body
    assert 'value="stale"' in body


def test_the_reason_filter_offers_every_reason_and_shows_the_one_chosen(
    client_as: ClientAs, several: dict[str, Incident]
) -> None:
    body = client_as("admin").get("/incidents/?reason=noActionNeeded").content.decode()
    picker = body.split('<select id="f-reason" name="reason">')[1].split("</select>")[0]

    assert '<option value="noActionNeeded" selected>No action needed</option>' in picker
    for label in ("Fixed", "Expected behaviour", "False positive", "Duplicate", "Recovered"):
        assert f">{label}</option>" in picker
    assert "Clear filters" in body


def test_filters_left_on_any_are_no_filter_and_no_error(
    client_as: ClientAs, several: dict[str, Incident]
) -> None:
    # What the filter form submits when only the title is filled in.
    url = "/incidents/?q=&status=&severity=&reason=&lead=&reporter=&dataset=&sort="
    body = client_as("admin").get(url).content.decode()

    assert "(ignored)" not in body
    assert "valid choice" not in body
    assert len(titles(body)) == 4
