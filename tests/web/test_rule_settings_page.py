"""The settings page of incident rules: admins and the configurers of a dataset list the rules in
order, make, change, move and delete those they may change, read the others, and see each refusal
next to its field."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from quell.incidents import rules
from quell.incidents.models import IncidentRule
from quell.web.rule_forms import attributes_text, parse_attributes
from tests.conftest import World
from tests.web.conftest import ClientAs


def make(world: World, name: str, *datasets: Any, **fields: Any) -> IncidentRule:
    return rules.create_rule(by=world.admin, name=name, dataset_ids=[d.pk for d in datasets], **fields).rule


def names_in_order() -> list[str]:
    return list(IncidentRule.objects.order_by("position", "id").values_list("name", flat=True))


def a_rule(**fields: Any) -> dict[str, Any]:
    """What the form posts for a rule, with these fields changed."""
    return {
        "name": "Orders",
        "enabled": "on",
        "outcomes": ["fail"],
        "consecutive": "1",
        "severity": "major",
        "title_template": "{check} failed on {dataset}",
        **fields,
    }


# --- The list ---------------------------------------------------------------------------------------


def test_an_admin_sees_every_rule_in_order_with_what_it_does(client_as: ClientAs, world: World) -> None:
    make(world, "Everything")
    make(
        world,
        "Orders",
        world.orders,
        outcomes=["warn", "fail"],
        consecutive=2,
        severity="critical",
        lead_id=world.manager.pk,
        resolve_after_passes=3,
        reopen_within_days=7,
        check_attributes={"tier": "gold"},
        enabled=False,
    )

    response = client_as("admin").get("/settings/rules/")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("Everything") < body.index(">Orders<")
    assert "Every dataset" in body
    assert "warehouse/orders" in body
    assert "2 warn or fail results in a row" in body
    assert "1 fail result in a row" in body
    assert "Manager" in body  # the lead's name
    assert "Resolves after 3 passes in a row" in body
    assert "Within 7 days" in body
    assert "tier: gold" in body
    assert "<strong>Off</strong>" in body


def test_a_configurer_changes_the_rules_of_their_datasets_and_reads_the_others(
    client_as: ClientAs, world: World
) -> None:
    everything = make(world, "Everything")
    orders = make(world, "Orders", world.orders)

    response = client_as("editor").get("/settings/rules/")

    body = response.content.decode()
    assert response.status_code == 200
    assert reverse("web:settings_rule", args=[orders.pk]) in body
    assert reverse("web:settings_rule", args=[everything.pk]) not in body
    assert "(read-only)" in body
    # Of the settings they see the rules alone.
    assert reverse("web:settings_users") not in body
    assert client_as("editor").get(f"/settings/rules/{everything.pk}").status_code == 403


def test_the_top_navigation_leads_a_configurer_to_the_rules_and_not_a_viewer(
    client_as: ClientAs, world: World
) -> None:
    rules_link = f'href="{reverse("web:settings_rules")}"'

    assert rules_link in client_as("editor").get("/").content.decode()
    assert rules_link not in client_as("viewer").get("/").content.decode()


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_someone_who_configures_no_dataset_is_refused_the_page(
    client_as: ClientAs, world: World, role: str
) -> None:
    assert client_as(role).get("/settings/rules/").status_code == 403
    assert client_as(role).get("/settings/rules/new").status_code == 403


def test_an_anonymous_visitor_is_sent_to_log_in(client_as: ClientAs, world: World) -> None:
    response = client_as("anonymous").get("/settings/rules/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


# --- Making and changing one ------------------------------------------------------------------------


def test_a_configurer_makes_a_rule_for_their_dataset(client_as: ClientAs, world: World) -> None:
    form = client_as("editor").get("/settings/rules/new").content.decode()
    assert "warehouse/orders" in form
    assert "warehouse/customers" not in form  # not theirs to configure

    response = client_as("editor").post(
        "/settings/rules/new",
        a_rule(
            datasets=[world.orders.pk],
            outcomes=["warn", "fail"],
            consecutive="2",
            lead=str(world.manager.pk),
            check_attributes='tier: gold\nweight: 2\npii: false\ncode: "42"',
            resolve_after_passes="2",
        ),
    )

    assert response.status_code == 302
    rule = IncidentRule.objects.get()
    assert list(rule.datasets.all()) == [world.orders]
    assert (rule.outcomes, rule.consecutive, rule.lead, rule.resolve_after_passes) == (
        ["warn", "fail"],
        2,
        world.manager,
        2,
    )
    assert rule.check_attributes == {"tier": "gold", "weight": 2, "pii": False, "code": "42"}
    assert rule.created_by == world.editor


def test_a_configurer_asking_for_a_rule_of_every_dataset_is_told_at_the_datasets(
    client_as: ClientAs, world: World
) -> None:
    response = client_as("editor").post("/settings/rules/new", a_rule())

    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_datasets_error"' in body
    assert "Only an admin" in body
    assert not IncidentRule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": " "}, "name"),
        ({"title_template": "{table} broke"}, "title_template"),
        ({"outcomes": []}, "outcomes"),
        ({"consecutive": "0"}, "consecutive"),
        ({"check_attributes": "no colon here"}, "check_attributes"),
        ({"lead": "viewer"}, "lead"),
    ],
)
def test_a_refused_rule_shows_the_refusal_next_to_its_field_and_makes_nothing(
    client_as: ClientAs, world: World, fields: dict[str, Any], field: str
) -> None:
    if fields.get("lead") == "viewer":
        fields = {"lead": str(world.viewer.pk)}  # sees orders, may not manage its incidents
    response = client_as("admin").post("/settings/rules/new", a_rule(datasets=[world.orders.pk], **fields))

    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not IncidentRule.objects.exists()


def test_editing_a_rule_shows_it_and_saves_the_changes(client_as: ClientAs, world: World) -> None:
    rule = make(world, "Orders", world.orders, check_attributes={"code": "42", "tier": "gold"})
    page = client_as("manager").get(f"/settings/rules/{rule.pk}").content.decode()
    assert 'value="Orders"' in page
    assert "code: &quot;42&quot;" in page  # text that looks like a number stays text

    response = client_as("manager").post(
        f"/settings/rules/{rule.pk}",
        a_rule(
            name="Orders, nightly",
            datasets=[world.orders.pk],
            severity="critical",
            check_attributes='code: "42"',
        ),
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.severity, rule.check_attributes, rule.enabled) == (
        "Orders, nightly",
        "critical",
        {"code": "42"},
        True,
    )


def test_attributes_read_back_as_they_were_written() -> None:
    attributes = {"tier": "gold", "weight": 2, "ratio": 0.5, "pii": False, "code": "42", "word": "true"}

    assert parse_attributes(attributes_text(attributes)) == attributes


# --- Order and deletion -----------------------------------------------------------------------------


def test_moving_a_rule_down_and_up_swaps_it_with_its_neighbour(client_as: ClientAs, world: World) -> None:
    first = make(world, "First", world.orders)
    make(world, "Second", world.orders)
    admin = client_as("admin")

    response = admin.post(f"/settings/rules/{first.pk}/move", {"direction": "down"})
    assert response.status_code == 302
    assert names_in_order() == ["Second", "First"]

    # As htmx sends it: the list comes back to be swapped in.
    response = admin.post(
        f"/settings/rules/{first.pk}/move", {"direction": "up"}, HTTP_HX_REQUEST="true", follow=True
    )
    assert response.status_code == 200
    assert 'id="rules"' in response.content.decode()
    assert names_in_order() == ["First", "Second"]


def test_a_configurer_cannot_move_a_rule_of_every_dataset(client_as: ClientAs, world: World) -> None:
    everything = make(world, "Everything")
    make(world, "Orders", world.orders)

    response = client_as("editor").post(f"/settings/rules/{everything.pk}/move", {"direction": "down"})

    assert response.status_code == 403
    assert names_in_order() == ["Everything", "Orders"]


def test_deleting_asks_first_then_deletes(client_as: ClientAs, world: World) -> None:
    rule = make(world, "Orders", world.orders)
    editor = client_as("editor")

    confirm = editor.get(f"/settings/rules/{rule.pk}/delete")
    assert confirm.status_code == 200
    assert "Delete the rule Orders?" in confirm.content.decode()
    assert IncidentRule.objects.exists()

    response = editor.post(f"/settings/rules/{rule.pk}/delete")

    assert response.status_code == 302
    assert not IncidentRule.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("outsider", 404)])
def test_deleting_someone_elses_rule_is_refused(
    client_as: ClientAs, world: World, role: str, status: int
) -> None:
    rule = make(world, "Orders", world.orders)

    assert client_as(role).get(f"/settings/rules/{rule.pk}/delete").status_code == status
    assert client_as(role).post(f"/settings/rules/{rule.pk}/delete").status_code == status
    assert IncidentRule.objects.exists()
