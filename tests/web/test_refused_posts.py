"""A URL that only takes a form's POST answers a GET (a reload, a Back, the address opened again) with a
redirect to the page the form is on, never a blank 405; a page answering a post names its page's URL so
the browser's reload is a GET of it (tests/web/test_refused_posts_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from quell.accounts import services as accounts
from quell.catalog import services as catalog
from quell.incidents import rules
from quell.incidents.models import Incident
from quell.integrations import services as integrations
from tests.conftest import World
from tests.web.conftest import ClientAs

# Each POST-only URL (by name, with the objects its arguments name) and the page it belongs to.
POST_ONLY: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "web:edit_incident": ("web:incident", lambda o: {"number": o["number"]}, "#edit-form"),
    "web:attach_results": ("web:incident", lambda o: {"number": o["number"]}, "#results"),
    "web:comment": ("web:incident", lambda o: {"number": o["number"]}, "#timeline"),
    "web:bulk_incidents": ("web:incidents", lambda o: {}, ""),
    "web:change_password": ("web:profile", lambda o: {}, "#password-heading"),
    "web:create_api_key": ("web:profile", lambda o: {}, "#keys-heading"),
    "web:revoke_api_key": ("web:profile", lambda o: {}, "#keys-heading"),
    "web:settings_delete_check_attribute": ("web:settings_check_attributes", lambda o: {}, ""),
    "web:settings_rule_move": ("web:settings_rules", lambda o: {}, ""),
    "integrations:settings_integration_action": (
        "integrations:settings_integration",
        lambda o: {"integration_id": o["integration_id"]},
        "",
    ),
    "web:logout": ("web:home", lambda o: {}, ""),
    "web:mute_check": ("web:check", lambda o: {"check_id": o["check_id"]}, ""),
    "web:unmute_check": ("web:check", lambda o: {"check_id": o["check_id"]}, ""),
    "web:mute_dataset": ("web:dataset", lambda o: {"dataset_id": o["dataset_id"]}, ""),
    "web:unmute_dataset": ("web:dataset", lambda o: {"dataset_id": o["dataset_id"]}, ""),
}


@pytest.fixture
def objects(world: World, orders_incident: Incident) -> dict[str, Any]:
    """An object of each kind a web URL names, by the URL argument that names it."""
    key, _ = accounts.create_api_key(user=world.admin, name="ci")
    definition = catalog.create_check_attribute_definition(
        by=world.admin, name="domain", attribute_type="text"
    )
    integration, _ = integrations.create_integration(
        by=world.admin, name="Jira", kind="webhook", url="https://jira.example.com/hook"
    )
    return {
        "number": orders_incident.number,
        "key_pk": key.pk,
        "definition_id": definition.pk,
        "integration_id": integration.pk,
        "dataset_id": world.orders.pk,
        "data_source_id": world.orders.data_source_id,
        "check_id": world.orders_fail.check_ref_id,
        "result_id": world.orders_fail.pk,
        "scan_id": world.orders_fail.scan_id,
        "user_id": world.viewer.pk,
        "role_id": world.role("Viewer").pk,
        "name": "lead",
        "rule_id": rules.create_rule(by=world.admin, name="Orders", dataset_ids=[world.orders.pk]).rule.pk,
    }


@pytest.mark.parametrize("name", POST_ONLY)
def test_a_get_of_a_post_only_url_is_redirected_to_its_page(
    client_as: ClientAs, objects: dict[str, Any], name: str
) -> None:
    page_name, arguments, anchor = POST_ONLY[name]
    kwargs = {key: objects[key] for key in re.findall(r"<(?:\w+:)?(\w+)>", _route(name))}
    client = client_as("admin")

    response = client.get(reverse(name, kwargs=kwargs))

    page = reverse(page_name, kwargs=arguments(objects))
    assert response.status_code == 302, name
    assert response["Location"] == page + anchor
    assert client.get(page).status_code == 200


def test_a_get_of_the_log_out_url_does_not_log_out(client_as: ClientAs) -> None:
    client = client_as("editor")

    client.get("/logout/")

    assert client.get("/profile/").status_code == 200


def test_an_anonymous_get_of_a_post_only_url_goes_to_log_in(
    client_as: ClientAs, orders_incident: Incident
) -> None:
    response = client_as("anonymous").get(f"/incidents/{orders_incident.number}/edit")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_other_methods_on_a_post_only_url_are_not_allowed(
    client_as: ClientAs, orders_incident: Incident
) -> None:
    response = client_as("editor").put(f"/incidents/{orders_incident.number}/edit")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize("role", ["admin", "editor"])
def test_no_web_url_answers_a_get_with_405(client_as: ClientAs, objects: dict[str, Any], role: str) -> None:
    client = client_as(role)
    answered = {}
    for name, route in _web_routes():
        kwargs = {key: objects.get(key, 1) for key in re.findall(r"<(?:\w+:)?(\w+)>", route)}
        answered[name] = client.get(reverse(name, kwargs=kwargs)).status_code

    assert {name for name, status in answered.items() if status == 405} == set()
    assert set(POST_ONLY) <= answered.keys()


def test_a_refused_post_names_its_pages_url_so_a_reload_gets_the_page(
    client_as: ClientAs, orders_incident: Incident
) -> None:
    number = orders_incident.number
    client = client_as("editor")

    refused = client.post(
        f"/incidents/{number}/edit",
        {
            "title": "Empty",
            "status": "resolved",
            "severity": "major",
            "lead": orders_incident.lead_id,
            "version": orders_incident.version,
        },
    )
    shown = client.get(f"/incidents/{number}")

    assert refused.status_code == 400
    body = refused.content.decode()
    assert "A resolution note is required" in body
    assert f'<meta name="quell-page-url" content="/incidents/{number}">' in body
    assert "quell-page-url" not in shown.content.decode()


def test_a_page_that_takes_its_own_posts_names_its_own_url(client_as: ClientAs, world: World) -> None:
    url = f"/checks/{world.orders_fail.check_ref_id}/create-incident?lead_q=edi"

    refused = client_as("editor").post(url, {"title": ""})

    assert refused.status_code == 400
    assert f'<meta name="quell-page-url" content="{url}">' in refused.content.decode()


def _route(name: str) -> str:
    return dict(_web_routes())[name]


def _web_routes() -> list[tuple[str, str]]:
    """(namespace:name, route) of every URL of the web pages and the integrations' settings pages."""
    return sorted(_walk(get_resolver().url_patterns, "", ""))


def _walk(patterns: list[Any], namespace: str, prefix: str) -> Iterator[tuple[str, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, entry.namespace or namespace, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name and namespace in ("web", "integrations"):
            yield f"{namespace}:{entry.name}", prefix + str(entry.pattern)
