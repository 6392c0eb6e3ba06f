"""Settings for what Soda Core sends: failed-row samples, and the attributes checks may carry."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from quell.accounts.models import Organization
from quell.catalog import queries as catalog_queries
from quell.catalog.models import CheckAttributeDefinition
from tests.conftest import World
from tests.web.conftest import ROLES, ClientAs, soda_token

PAGES = ["/settings/failed-rows", "/settings/check-attributes"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", PAGES)
def test_the_pages_are_for_admins_and_refuse_others_saying_why(
    client_as: ClientAs, world: World, url: str, role: str
) -> None:
    response = client_as(role).get(url)

    if role == "admin":
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "Only an admin can open the settings." in response.content.decode()
        assert 'name="max_bytes"' not in response.content.decode()


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client_as: ClientAs, world: World, url: str) -> None:
    response = client_as("anonymous").get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login") + "?next=")


def test_the_settings_navigation_links_both_pages(client_as: ClientAs, world: World) -> None:
    body = client_as("admin").get("/settings/").content.decode()

    assert 'href="/settings/failed-rows"' in body
    assert 'href="/settings/check-attributes"' in body


def test_each_page_marks_itself_current_in_the_navigation(client_as: ClientAs, world: World) -> None:
    body = client_as("admin").get("/settings/check-attributes").content.decode()

    assert 'href="/settings/check-attributes" aria-current="page">Check attributes</a>' in body


# --- Failed-row samples -----------------------------------------------------------------------------


def settings_now() -> tuple[bool, int]:
    org = Organization.get()
    return org.collect_failed_rows, org.failed_rows_max_bytes


def test_the_page_shows_the_current_settings(client_as: ClientAs, world: World) -> None:
    body = client_as("admin").get("/settings/failed-rows").content.decode()

    assert 'name="collect" aria-describedby="id_collect_helptext" id="id_collect" checked' in body
    assert 'value="1048576"' in body
    assert "<strong>collected</strong>, each sample cut to 1.0\xa0MB" in body


def test_an_admin_turns_samples_off_and_changes_the_limit(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post("/settings/failed-rows", {"max_bytes": "65536"})

    assert response.status_code == 302
    assert settings_now() == (False, 65536)


def test_turning_samples_off_tells_soda_core_not_to_send_them(client_as: ClientAs, world: World) -> None:
    client_as("admin").post("/settings/failed-rows", {"max_bytes": "65536"})

    assert catalog_queries.samples_disabled()


def test_an_admin_turns_samples_back_on(client_as: ClientAs, world: World) -> None:
    Organization.objects.filter(pk=1).update(collect_failed_rows=False)

    client_as("admin").post("/settings/failed-rows", {"collect": "on", "max_bytes": "2048"})

    assert settings_now() == (True, 2048)


@pytest.mark.parametrize(
    ("max_bytes", "message"),
    [
        ("10", "The sample size limit must be between 1024 and 67108864 bytes."),
        ("-5", "The sample size limit must be between 1024 and 67108864 bytes."),
        ("999999999999", "The sample size limit must be between 1024 and 67108864 bytes."),
        ("a lot", "Enter a whole number."),
        ("", "This field is required."),
    ],
)
def test_a_bad_size_limit_is_refused_at_the_field_and_changes_nothing(
    client_as: ClientAs, world: World, max_bytes: str, message: str
) -> None:
    before = settings_now()

    # Unticked: the refused form must not turn collection off either.
    response = client_as("admin").post("/settings/failed-rows", {"max_bytes": max_bytes})

    assert response.status_code == 400
    body = response.content.decode()
    error = body.split('id="id_max_bytes_error"')[1].split("</small>")[0]
    assert message in error
    assert settings_now() == before


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_may_change_the_sample_settings(client_as: ClientAs, world: World, role: str) -> None:
    response = client_as(role).post("/settings/failed-rows", {"max_bytes": "2048"})

    assert response.status_code == 403
    assert settings_now() == (True, 1024 * 1024)


# --- Check attributes ---------------------------------------------------------------------------------


def define(client_as: ClientAs, role: str = "admin", **fields: str) -> Any:
    data = {
        "name": "pipeline_stage",
        "label": "Pipeline stage",
        "type": "singleselect",
        "allowed_values": "ingest\ntransform\n\nserve\n",
        "description": "Where in the pipeline the check runs.",
        **fields,
    }
    return client_as(role).post("/settings/check-attributes", data)


def test_an_admin_defines_a_single_choice_attribute_with_its_values(
    client_as: ClientAs, world: World
) -> None:
    response = define(client_as)

    assert response.status_code == 302
    definition = CheckAttributeDefinition.objects.get()
    assert definition.name == "pipeline_stage"
    assert definition.label == "Pipeline stage"
    assert definition.type == "singleselect"
    assert definition.allowed_values == ["ingest", "transform", "serve"]
    assert definition.description == "Where in the pipeline the check runs."


def test_a_defined_attribute_is_listed_with_its_type_and_values(client_as: ClientAs, world: World) -> None:
    define(client_as)

    body = client_as("admin").get("/settings/check-attributes").content.decode()

    assert "<code>pipeline_stage</code>" in body
    assert "Single choice" in body
    assert "<code>ingest</code>, <code>transform</code>, <code>serve</code>" in body


def test_a_text_attribute_needs_no_values(client_as: ClientAs, world: World) -> None:
    response = define(client_as, name="owner_team", type="text", allowed_values="")

    assert response.status_code == 302
    assert CheckAttributeDefinition.objects.get().type == "text"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "has space"}, "name", "An attribute name is 1 to 100 letters"),
        ({"name": ""}, "name", "This field is required."),
        ({"type": "colour"}, "type", "Select a valid choice."),
        (
            {"allowed_values": ""},
            "allowed_values",
            "A singleselect attribute needs a list of allowed values.",
        ),
        ({"allowed_values": "a\nb\na"}, "allowed_values", "The allowed values repeat a value."),
        ({"type": "number"}, "allowed_values", "A number attribute takes no allowed values."),
        ({"name": "x" * 101}, "name", "Ensure this value has at most 100 characters"),
    ],
)
def test_a_bad_attribute_is_refused_at_its_field_and_nothing_is_defined(
    client_as: ClientAs, world: World, fields: dict[str, str], field: str, message: str
) -> None:
    response = define(client_as, **fields)

    assert response.status_code == 400
    error = response.content.decode().split(f'id="id_{field}_error"')[1].split("</small>")[0]
    assert message in error
    assert not CheckAttributeDefinition.objects.exists()


def test_a_second_attribute_with_the_same_name_is_refused_at_the_name(
    client_as: ClientAs, world: World
) -> None:
    define(client_as)

    response = define(client_as, type="text", allowed_values="")

    assert response.status_code == 400
    error = response.content.decode().split('id="id_name_error"')[1].split("</small>")[0]
    assert "There is already an attribute named pipeline_stage." in error
    assert CheckAttributeDefinition.objects.get().type == "singleselect"


def test_a_refused_form_keeps_what_was_typed(client_as: ClientAs, world: World) -> None:
    body = define(client_as, name="has space").content.decode()

    assert 'value="has space"' in body
    assert "Where in the pipeline the check runs." in body


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_may_define_attributes(client_as: ClientAs, world: World, role: str) -> None:
    response = define(client_as, role)

    assert response.status_code == 403
    assert not CheckAttributeDefinition.objects.exists()


def test_an_admin_removes_an_attribute(client_as: ClientAs, world: World) -> None:
    define(client_as)
    definition = CheckAttributeDefinition.objects.get()

    response = client_as("admin").post(f"/settings/check-attributes/{definition.pk}/delete")

    assert response.status_code == 302
    assert not CheckAttributeDefinition.objects.exists()


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_may_remove_attributes(client_as: ClientAs, world: World, role: str) -> None:
    define(client_as)
    definition = CheckAttributeDefinition.objects.get()

    response = client_as(role).post(f"/settings/check-attributes/{definition.pk}/delete")

    assert response.status_code == 403
    assert CheckAttributeDefinition.objects.filter(pk=definition.pk).exists()


def test_removing_an_attribute_that_is_gone_is_not_found(client_as: ClientAs, world: World) -> None:
    assert client_as("admin").post("/settings/check-attributes/999999/delete").status_code == 404


def test_removing_by_get_is_not_allowed_and_goes_to_the_attributes_page(
    client_as: ClientAs, world: World
) -> None:
    define(client_as)
    definition = CheckAttributeDefinition.objects.get()

    response = client_as("admin").get(f"/settings/check-attributes/{definition.pk}/delete")

    assert response.status_code == 302
    assert response["Location"] == "/settings/check-attributes"
    assert CheckAttributeDefinition.objects.exists()


def test_each_remove_button_is_a_form_with_a_csrf_token(client_as: ClientAs, world: World) -> None:
    define(client_as)
    define(client_as, name="owner_team", type="text", allowed_values="")

    body = client_as("admin").get("/settings/check-attributes").content.decode()

    # Two removes, the create form, and the header's log-out.
    assert body.count('method="post"') == 4
    assert body.count("csrfmiddlewaretoken") == 4


def test_an_attribute_defined_here_is_what_soda_core_is_offered(client_as: ClientAs, world: World) -> None:
    define(client_as)
    soda = Client(HTTP_USER_AGENT="SodaCore/3.5.6")

    response = soda.post(
        "/api/query",
        {"type": "sodaCoreAvailableCheckAttributes", "token": soda_token(soda, world, "editor")},
        content_type="application/json",
    )

    assert response.json()["results"] == [
        {
            "name": "pipeline_stage",
            "label": "Pipeline stage",
            "type": "singleselect",
            "allowedValues": ["ingest", "transform", "serve"],
            "description": "Where in the pipeline the check runs.",
        }
    ]
