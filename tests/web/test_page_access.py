"""Every page, for every role: who gets it, who is refused, and what a refusal shows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.conftest import ROLES, ClientAs


@dataclass(frozen=True)
class Page:
    name: str
    url: str  # with {check}, {dataset}, {incident} and {customers} filled in per test
    allowed: frozenset[str]
    hidden_from: frozenset[str] = frozenset()  # 404: they may not know it exists; the rest get 403


EVERYONE = frozenset(ROLES)
ON_ORDERS = frozenset({"admin", "manager", "editor", "viewer"})
MANAGE_ORDERS_INCIDENTS = frozenset({"admin", "manager", "editor"})
CONFIGURE_ORDERS = frozenset({"admin", "manager", "editor"})
ADMIN = frozenset({"admin"})

PAGES = [
    Page("home", "/", EVERYONE),
    Page("datasets", "/datasets/", EVERYONE),
    Page("incidents", "/incidents/", EVERYONE),
    Page("profile", "/profile/", EVERYONE),
    Page("a public dataset", "/datasets/{customers}", EVERYONE),
    Page("orders' checks", "/datasets/{dataset}", ON_ORDERS, frozenset({"outsider"})),
    Page("orders' incidents", "/datasets/{dataset}/incidents", ON_ORDERS, frozenset({"outsider"})),
    Page(
        "orders' responsibilities",
        "/datasets/{dataset}/responsibilities",
        frozenset({"admin", "manager"}),
        frozenset({"outsider"}),
    ),
    Page("an orders check", "/checks/{check}", ON_ORDERS, frozenset({"outsider"})),
    Page(
        "Create Incident on an orders check",
        "/checks/{check}/create-incident",
        MANAGE_ORDERS_INCIDENTS,
        frozenset({"outsider"}),
    ),
    Page("an orders incident", "/incidents/{incident}", ON_ORDERS, frozenset({"outsider"})),
    Page("settings", "/settings/", ADMIN),
    Page("settings: users", "/settings/users", ADMIN),
    Page("settings: groups", "/settings/groups", ADMIN),
    Page("settings: dataset roles", "/settings/roles", ADMIN),
    Page("settings: responsibilities", "/settings/datasets", ADMIN),
    Page("settings: email", "/settings/email", ADMIN),
    # Incident rules: for admins and for whoever configures a dataset (the manager and editor of orders).
    Page("settings: incident rules", "/settings/rules/", CONFIGURE_ORDERS),
    Page("settings: a new incident rule", "/settings/rules/new", CONFIGURE_ORDERS),
]


def url_of(page: Page, world: World, incident: Incident) -> str:
    return page.url.format(
        check=world.orders_fail.check_ref_id,
        dataset=world.orders.pk,
        incident=incident.number,
        customers=world.customers.pk,
    )


def expected_status(page: Page, role: str) -> int:
    if role in page.allowed:
        return 200
    return 404 if role in page.hidden_from else 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_each_page_answers_each_role_as_its_permissions_say(
    client_as: ClientAs, world: World, orders_incident: Incident, page: Page, role: str
) -> None:
    response = client_as(role).get(url_of(page, world, orders_incident))

    assert response.status_code == expected_status(page, role)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_anonymous_visitors_are_sent_to_log_in_and_back(
    client_as: ClientAs, world: World, orders_incident: Incident, page: Page
) -> None:
    url = url_of(page, world, orders_incident)

    response = client_as("anonymous").get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login") + "?next=")


def test_a_hidden_incident_shows_nothing_of_itself(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = client_as("outsider").get(f"/incidents/{orders_incident.number}")

    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body
    assert orders_incident.title not in body
    assert "orders" not in body


def test_a_hidden_check_shows_nothing_of_itself(client_as: ClientAs, world: World) -> None:
    response = client_as("outsider").get(f"/checks/{world.orders_fail.check_ref_id}")

    assert response.status_code == 404
    assert "row_count" not in response.content.decode()
    assert "orders" not in response.content.decode()


def test_a_refused_page_says_why_without_showing_the_page(client_as: ClientAs, world: World) -> None:
    response = client_as("viewer").get(f"/checks/{world.orders_fail.check_ref_id}/create-incident")

    assert response.status_code == 403
    body = response.content.decode()
    assert "Manage incidents" in body
    assert 'name="title"' not in body


def test_only_admins_see_settings_in_the_navigation(client_as: ClientAs) -> None:
    assert 'href="/settings/"' in client_as("admin").get("/").content.decode()
    assert 'href="/settings/"' not in client_as("manager").get("/").content.decode()


def test_an_unknown_incident_number_is_not_found(client_as: ClientAs) -> None:
    assert client_as("admin").get("/incidents/999999").status_code == 404


def test_every_form_carries_a_csrf_token(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    pages = [
        # The check page's Create Incident form, as its dialog loads it and as a page of its own.
        f"/checks/{world.orders_fail.check_ref_id}/create-incident",
        f"/incidents/{orders_incident.number}",
        f"/datasets/{world.orders.pk}/responsibilities",
        "/profile/",
        "/settings/",
        "/settings/users",
        "/settings/groups",
        "/settings/roles",
    ]
    for url in pages:
        body = client_as("admin").get(url).content.decode()
        posts = body.count('method="post"')
        assert posts > 0, url
        assert body.count("csrfmiddlewaretoken") >= posts, url
    dialog = (
        client_as("admin")
        .get(f"/checks/{world.orders_fail.check_ref_id}/create-incident", HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert dialog.count("csrfmiddlewaretoken") >= dialog.count('method="post"') > 0


def test_a_post_without_its_csrf_token_is_refused(world: World, orders_incident: Incident) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.editor)

    response = client.post(f"/incidents/{orders_incident.number}/comments", {"text": "Forged"})

    assert response.status_code == 403
    assert not orders_incident.timeline.filter(text="Forged").exists()
