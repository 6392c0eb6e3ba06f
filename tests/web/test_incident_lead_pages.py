"""The pages around an incident's lead: the Lead pickers offer only people who can change the incident, a
page that is read-only for its reader says why and whom to ask, and so does a lead who cannot act."""

from __future__ import annotations

import html
import re

import pytest

from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.conftest import ClientAs
from tests.web.test_incident_page import page, save


def lead_options(body: str) -> list[str]:
    select = body.split('id="id_lead"')[1].split("</select>")[0]
    return re.findall(r">([^<]+)</option>", select)


def text_of(body: str, element_id: str) -> str:
    """The text of the element with this id (tags dropped, spaces collapsed)."""
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', body, re.S)
    assert match, element_id
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).split())


@pytest.mark.parametrize("role", ["admin", "manager", "editor"])
def test_the_edit_forms_lead_picker_offers_only_people_who_can_change_the_incident(
    client_as: ClientAs, orders_incident: Incident, role: str
) -> None:
    body = page(client_as, role, orders_incident)

    assert lead_options(body) == ["Editor", "Alice", "Manager"]  # the current lead first


def test_choosing_a_lead_who_cannot_change_the_incident_is_refused_at_the_lead_field(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    response = save(client_as, "editor", orders_incident, lead=world.viewer.pk)

    assert response.status_code == 400
    assert "Choose someone with Manage incidents on one of this incident" in text_of(
        response.content.decode(), "id_lead_error"
    )
    orders_incident.refresh_from_db()
    assert orders_incident.lead_id == world.editor.pk


@pytest.mark.parametrize("role", ["admin", "manager", "editor"])
def test_a_page_the_reader_may_change_has_the_update_form_and_no_refusal(
    client_as: ClientAs, orders_incident: Incident, role: str
) -> None:
    body = page(client_as, role, orders_incident)

    assert 'id="edit-form"' in body
    assert 'id="read-only"' not in body
    assert 'id="lead-cannot-act"' not in body


def test_a_viewers_page_says_why_it_is_read_only_and_whom_to_ask(
    client_as: ClientAs, orders_incident: Incident
) -> None:
    body = page(client_as, "viewer", orders_incident)

    assert 'id="edit-form"' not in body
    assert text_of(body, "read-only") == (
        "Update You can view this incident but not change it: that needs Manage incidents on "
        "warehouse/orders. Ask one of those who can: Alice, Editor, Manager. An admin, or someone with "
        "Manage responsibilities on the dataset, can give you a role that has it."
    )


def test_the_read_only_page_names_only_the_datasets_its_reader_can_view(
    client_as: ClientAs, world: World
) -> None:
    incident = incidents.create_incident(
        by=world.admin, title="Both", check_result_ids=[world.orders_fail.pk, world.customers_fail.pk]
    )

    body = page(client_as, "outsider", incident)

    # The outsider sees customers only, where only the admin (who brought it in) manages incidents.
    assert "that needs Manage incidents on warehouse/customers." in text_of(body, "read-only")
    assert "orders" not in text_of(body, "read-only")
    assert "Ask one of those who can: Alice." in text_of(body, "read-only")


def test_the_outsider_and_the_anonymous_get_no_page(client_as: ClientAs, orders_incident: Incident) -> None:
    assert client_as("outsider").get(f"/incidents/{orders_incident.number}").status_code == 404
    assert client_as("anonymous").get(f"/incidents/{orders_incident.number}").status_code == 302


def test_a_lead_who_cannot_change_the_incident_is_told_so_on_its_page(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    Incident.objects.filter(pk=orders_incident.pk).update(lead=world.viewer)

    body = page(client_as, "viewer", orders_incident)

    assert text_of(body, "read-only").startswith(
        "Update You lead this incident but cannot change it: that needs Manage incidents on warehouse/orders."
    )
    assert text_of(body, "lead-cannot-act") == (
        "Viewer cannot change this incident: that needs Manage incidents on one of its datasets. "
        "Those who can: Alice, Editor, Manager."
    )


def test_an_incident_whose_lead_cannot_act_keeps_them_and_asks_its_editors_for_one_who_can(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    Incident.objects.filter(pk=orders_incident.pk).update(lead=world.viewer)

    body = page(client_as, "editor", orders_incident)
    saved = save(client_as, "editor", orders_incident, severity="minor")

    assert text_of(body, "lead-cannot-act").endswith("Choose a lead who can.")
    assert lead_options(body) == ["Viewer", "Alice", "Editor", "Manager"]  # kept as it is, first
    assert saved.status_code == 302
    orders_incident.refresh_from_db()
    assert (orders_incident.lead_id, orders_incident.severity) == (world.viewer.pk, "minor")


def test_the_check_page_says_why_a_viewer_cannot_create_an_incident(
    client_as: ClientAs, world: World
) -> None:
    url = f"/checks/{world.orders_fail.check_ref_id}"

    viewer = client_as("viewer").get(url).content.decode()
    editor = client_as("editor").get(url).content.decode()

    assert text_of(viewer, "create-incident-refused") == (
        "Creating an incident needs Manage incidents on warehouse/orders"
    )
    assert 'id="create-incident-refused"' not in editor
