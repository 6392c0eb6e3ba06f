"""The Checks page: every check one can view, those that warn or fail with no open incident first."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from quell.catalog.models import Check
from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.conftest import ClientAs, day, push_at


def listed(client_as: ClientAs, role: str, query: str = "") -> list[str]:
    """The check names the Checks page lists for `role`, in order."""
    response = client_as(role).get(f"/checks/{query}")
    assert response.status_code == 200
    body = response.content.decode().split('id="check-list"')[1]
    ids = [int(pk) for pk in re.findall(r'<td><a href="/checks/(\d+)">', body)]
    names = Check.objects.in_bulk(ids)
    return [names[pk].name for pk in ids]


ORDERS_CHECKS = {
    "row_count > 0",
    "missing_count(id) = 0",
    "duplicate_count(id) = 0",
    "freshness(updated_at) < 1d",
}


@pytest.mark.parametrize("role", ["admin", "manager", "viewer"])
def test_the_checks_page_lists_the_checks_of_every_dataset_one_can_view(
    client_as: ClientAs, world: World, role: str
) -> None:
    assert set(listed(client_as, role)) == {*ORDERS_CHECKS, "row_count > 10"}


def test_an_outsider_sees_only_the_checks_of_datasets_they_can_view(
    client_as: ClientAs, world: World
) -> None:
    assert listed(client_as, "outsider") == ["row_count > 10"]  # customers'; orders is private


def test_an_anonymous_visitor_is_sent_to_log_in_from_the_checks_page(
    client_as: ClientAs, world: World
) -> None:
    response = client_as("anonymous").get("/checks/")
    assert response.status_code == 302
    assert response["Location"] == reverse("web:login") + "?next=/checks/"


def test_checks_that_warn_or_fail_without_an_open_incident_come_first(
    client_as: ClientAs, world: World
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    assert listed(client_as, "manager") == [
        # Warn or fail, no open incident: by data source, dataset and name.
        "row_count > 10",  # warehouse/customers
        "freshness(updated_at) < 1d",
        "missing_count(id) = 0",
        # The rest, in the same order: a pass, and a failure that an open incident covers.
        "duplicate_count(id) = 0",
        "row_count > 0",
    ]
    incidents.update_incident(incident.pk, by=world.editor, status="resolved", resolution_notes="Reloaded.")
    assert listed(client_as, "manager")[:4] == [
        "row_count > 10",
        "freshness(updated_at) < 1d",
        "missing_count(id) = 0",
        "row_count > 0",  # its incident is resolved: it needs attention again
    ]


def test_the_checks_page_filters_by_outcome_dataset_and_name(client_as: ClientAs, world: World) -> None:
    assert listed(client_as, "manager", "?outcome=warn") == ["missing_count(id) = 0"]
    assert listed(client_as, "manager", "?outcome=failing") == [
        "row_count > 10",
        "freshness(updated_at) < 1d",
        "missing_count(id) = 0",
        "row_count > 0",
    ]
    assert set(listed(client_as, "manager", f"?dataset={world.orders.pk}")) == ORDERS_CHECKS
    assert listed(client_as, "manager", "?q=ROW count") == ["row_count > 10", "row_count > 0"]
    assert listed(client_as, "manager", f"?q=row&outcome=fail&dataset={world.customers.pk}") == [
        "row_count > 10"
    ]
    # A dataset one cannot view filters to nothing rather than revealing its checks.
    assert listed(client_as, "outsider", f"?dataset={world.orders.pk}") == []
    # Unknown values are ignored rather than refused.
    assert len(listed(client_as, "manager", "?outcome=nonsense&dataset=x")) == 5


def test_the_checks_page_links_each_check_and_is_in_the_top_navigation(
    client_as: ClientAs, world: World
) -> None:
    body = client_as("viewer").get("/checks/").content.decode()
    check_id = world.orders_warn.check_ref_id
    assert f'<a href="/checks/{check_id}">missing_count(id) = 0</a>' in body
    nav = body.split('aria-label="Main"')[1].split("</nav>")[0]
    assert '<a href="/checks/" aria-current="page">Checks</a>' in nav


def test_the_account_menu_offers_profile_api_keys_and_log_out(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get("/").content.decode()
    menu = body.split('class="dropdown account"')[1].split("</details>")[0]
    assert "Account" in menu.split("</summary>")[0]
    assert '<a href="/profile/">Profile</a>' in menu
    assert '<a href="/profile/#api-keys">API keys</a>' in menu
    assert 'action="/logout/"' in menu
    profile = client_as("viewer").get("/profile/").content.decode()
    assert '<section id="api-keys" aria-labelledby="keys-heading">' in profile


def checks_page_queries(client_as: ClientAs, role: str, query: str = "") -> int:
    client = client_as(role)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/checks/{query}").status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("role", ["admin", "manager", "viewer"])
@pytest.mark.parametrize("query", ["", "?outcome=failing&q=check"])
def test_the_checks_page_costs_the_same_for_5_and_for_45_checks(
    client_as: ClientAs, world: World, role: str, query: str
) -> None:
    def add_checks(start: int, count: int) -> None:
        for n in range(start, start + count):
            (result,) = push_at(world.admin, "orders", day(n), (f"check {n}", "fail" if n % 2 else "warn", n))
            if n % 3 == 0:
                incidents.create_incident(by=world.editor, title=f"Problem {n}", check_result_ids=[result.pk])

    add_checks(0, 3)
    few = checks_page_queries(client_as, role, query)
    add_checks(3, 40)
    assert checks_page_queries(client_as, role, query) == few
