"""Titles and names refuse control characters and bidi overrides; multi-line texts keep their line breaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from quell.accounts import services as accounts
from quell.accounts.models import ApiKey, DatasetRole, UserGroup
from quell.catalog import ingest as catalog_ingest
from quell.catalog import services as catalog
from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from quell.integrations import services as integrations
from quell.lib.errors import Invalid
from quell.lib.text import refused_character
from tests.conftest import T0, ClientFor, World

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202efdp.exe" shows as "invoiceexe.pdf"


@pytest.mark.parametrize(
    "character",
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u202a", RLO, "\u2066", "\u2069", "\ud800"],
)
def test_a_name_refuses_controls_bidi_overrides_and_isolates(character: str) -> None:
    assert refused_character(f"orders{character}2026") == character


@pytest.mark.parametrize("character", ["\n", "\t"])
def test_a_name_refuses_line_breaks_and_tabs_that_a_text_keeps(character: str) -> None:
    assert refused_character(f"a{character}b") == character
    assert refused_character(f"a{character}b\r\n", multiline=True) is None


@pytest.mark.parametrize(
    "name",
    [
        "Zoë's orders",
        "\u6ce8\u6587",  # Chinese
        "\u0637\u0644\u0628\u0627\u062a",  # Arabic
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a zero-width non-joiner
        "\U0001f469\u200d\U0001f4bb team",  # an emoji joined by a zero-width joiner
        "a\u200eb",  # a left-to-right mark
    ],
    ids=["latin", "chinese", "arabic", "persian", "emoji", "mark"],
)
def test_real_names_in_any_script_pass(name: str) -> None:
    # Joiners and the left-to-right/right-to-left marks are part of writing some languages and emoji.
    assert refused_character(name) is None


# --- Incidents: the title is one line; description, comments and notes are many ------------------


def test_the_api_refuses_a_title_with_a_bidi_override_naming_the_field(
    client_for: ClientFor, world: World
) -> None:
    response = client_for("editor").post(
        "/incidents", json={"title": f"Refund {RLO}gnp.exe", "checkResultIds": [world.orders_fail.pk]}
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["field"]) == ("invisible_character", "title")
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in body["message"]
    assert not Incident.objects.exists()


def test_a_title_is_one_line_and_a_description_keeps_its_lines(world: World) -> None:
    with pytest.raises(Invalid, match="The title must be one line") as refused:
        incidents.create_incident(
            by=world.editor, title="Orders\nempty", check_result_ids=[world.orders_fail.pk]
        )
    assert refused.value.field == "title"

    incident = incidents.create_incident(
        by=world.editor,
        title="Orders empty",
        description="Since Tuesday.\r\n\tNo rows at all.",
        check_result_ids=[world.orders_fail.pk],
    )

    assert incident.description == "Since Tuesday.\r\n\tNo rows at all."


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": "Orders\x1b[31m empty"}, "title"),
        ({"description": f"Rows {RLO}gone"}, "description"),
        ({"status": "resolved", "resolution_notes": "Reloaded\x00"}, "resolutionNotes"),
    ],
)
def test_an_update_refuses_invisible_characters_and_changes_nothing(
    world: World, change: dict[str, Any], field: str
) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )

    with pytest.raises(Invalid) as refused:
        incidents.update_incident(incident.pk, by=world.editor, **change)

    assert (refused.value.code, refused.value.field) == ("invisible_character", field)
    incident.refresh_from_db()
    assert (incident.title, incident.description, incident.status) == ("Orders", "", "reported")


def test_a_comment_keeps_its_lines_and_refuses_an_override(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Orders", check_result_ids=[world.orders_fail.pk]
    )

    comment = incidents.add_comment(incident.pk, "Checked:\n- the load\n- the schema", by=world.editor)
    with pytest.raises(Invalid) as refused:
        incidents.add_comment(incident.pk, f"see {RLO}txt.exe", by=world.editor)

    assert comment.text == "Checked:\n- the load\n- the schema"
    assert refused.value.field == "text"


def test_the_create_dialog_shows_the_refusal_next_to_the_title(world: World) -> None:
    client = Client()
    client.force_login(world.editor)
    data = {
        "title": f"Orders {RLO}",
        "severity": "major",
        "lead": world.editor.pk,
        "results": [world.orders_fail.pk],
    }

    response = client.post(f"/checks/{world.orders_fail.check_ref_id}/create-incident", data)

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_title_error"' in page
    assert (
        "The title must not contain invisible control characters: remove U+202E"
        in page.split('id="id_title_error"')[1][:300]
    )
    assert not Incident.objects.exists()


# --- Names of people, groups, roles, keys, integrations, check attributes -------------------------

Refusal = Callable[[World], Any]

NAMES: dict[str, Refusal] = {
    "a user's name": lambda w: accounts.create_user(by=w.admin, email="nina@example.com", name=f"Nina{RLO}"),
    "a group's name": lambda w: accounts.create_group(by=w.admin, name="Data\tteam"),
    "a role's name": lambda w: accounts.create_dataset_role(
        by=w.admin, name=f"Triage{RLO}", permissions=set()
    ),
    "an API key's name": lambda w: accounts.create_api_key(user=w.editor, name="ci\x1b"),
    "the organisation's name": lambda w: accounts.update_organization(by=w.admin, name="Acme\u2066"),
    "an integration's name": lambda w: integrations.create_integration(
        by=w.admin, kind="webhook", name=f"Pager{RLO}", url="https://hooks.example.com/q"
    ),
    "a check attribute's label": lambda w: catalog.create_check_attribute_definition(
        by=w.admin, name="domain", attribute_type="text", label="Domain\x07"
    ),
}


@pytest.mark.parametrize("refusal", NAMES.values(), ids=NAMES.keys())
def test_a_name_with_an_invisible_character_is_refused_at_its_field(world: World, refusal: Refusal) -> None:
    before = (UserGroup.objects.count(), DatasetRole.objects.count(), ApiKey.objects.count())

    with pytest.raises(Invalid) as refused:
        refusal(world)

    assert refused.value.code == "invisible_character"
    assert refused.value.field in ("name", "label")
    assert (UserGroup.objects.count(), DatasetRole.objects.count(), ApiKey.objects.count()) == before


def test_renaming_a_group_or_a_role_refuses_them_too(world: World) -> None:
    group = accounts.create_group(by=world.admin, name="Data team")
    role = accounts.create_dataset_role(by=world.admin, name="Triage", permissions=set())

    with pytest.raises(Invalid, match="U\\+202E"):
        accounts.rename_group(group.pk, f"Data{RLO}", by=world.admin)
    with pytest.raises(Invalid, match="U\\+202E"):
        accounts.update_dataset_role(role.pk, by=world.admin, name=f"Triage{RLO}", permissions=set())


def test_the_groups_page_shows_the_refusal_next_to_the_name(world: World) -> None:
    client = Client()
    client.force_login(world.admin)

    response = client.post("/settings/groups", {"name": f"Data{RLO}team"})

    assert response.status_code == 400
    assert 'id="id_name_error"' in response.content.decode()
    assert "must not contain invisible control characters" in response.content.decode()
    assert not UserGroup.objects.filter(name__startswith="Data").exists()


# --- Ingest: names from the warehouse are refused, the whole scan with them ----------------------


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count() for model in (DataSource, Dataset, Check, CheckResult, Scan)
    }


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ({"dataSource": f"lake{RLO}"}, "results[1].dataSource"),
        ({"dataset": "events\x1f"}, "results[1].dataset"),
        ({"dataset": "events\nold"}, "results[1].dataset"),
        ({"check": {"name": f"row_count {RLO}> 0"}}, "results[1].check.name"),
        ({"check": {"name": "ok", "column": "id\u2067"}}, "results[1].check.column"),
    ],
)
def test_a_push_naming_something_with_an_invisible_character_is_refused_whole(
    client_for: ClientFor, world: World, where: dict[str, Any], field: str
) -> None:
    before = counts()
    good = {"dataSource": "lake", "dataset": "events", "check": {"name": "fresh"}, "outcome": "pass"}

    response = client_for("editor").post(
        "/checkResults", json={"dataTimestamp": "2026-11-02T06:00:00Z", "results": [good, {**good, **where}]}
    )

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invisible_character", field)
    assert counts() == before  # not even the first, good result


def test_a_pushed_check_name_may_span_lines(world: World) -> None:
    # Soda names a check without a name by its definition, which may be several lines of YAML.
    _, (result,) = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse",
                    "orders",
                    catalog_ingest.CheckInput(name="checks for orders:\n  - row_count > 0"),
                    "pass",
                )
            ],
        ),
        by=world.admin,
    )

    assert result.check_ref.name == "checks for orders:\n  - row_count > 0"
