"""The incident lists' bulk form: tick incidents, set their lead, status or severity, or merge them, and
read what changed and what was refused; and merges on the incident page's timeline."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client

from quell.incidents import merging
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.conftest import ClientAs


@pytest.fixture
def empty(world: World) -> Incident:
    return incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )


@pytest.fixture
def stale(world: World) -> Incident:
    return incidents.create_incident(
        by=world.manager, title="Orders are stale", check_result_ids=[world.orders_fail_2.pk]
    )


@pytest.fixture
def customers(world: World) -> Incident:
    return incidents.create_incident(
        by=world.admin, title="Too few customers", check_result_ids=[world.customers_fail.pk]
    )


def post(client: Client, *incidents_ticked: Incident, **fields: Any) -> str:
    """Post the bulk form as the Incidents page fills it, and read the list it leads back to."""
    data: dict[str, Any] = {"incident": [i.pk for i in incidents_ticked], "next": "/incidents/", **fields}
    response = client.post("/incidents/bulk", data, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == data["next"]
    return response.content.decode()


def notices(body: str) -> list[str]:
    """The messages atop the page, as they read."""
    found = re.findall(r'<p class="notice notice-(\w+)" role="status">(.*?)</p>', body, re.S)
    return [f"{kind}: {html.unescape(text)}" for kind, text in found]


def test_the_incidents_page_offers_a_tick_per_row_and_the_bulk_actions_to_those_who_manage_incidents(
    client_as: ClientAs, empty: Incident, customers: Incident
) -> None:
    body = client_as("editor").get("/incidents/").content.decode()

    assert 'action="/incidents/bulk"' in body
    assert body.count('name="incident"') == 2
    assert 'name="all" value="1" data-select-all' in body
    for action in ("lead", "status", "severity", "merge"):
        assert f'name="action" value="{action}"' in body
    assert f'<option value="{empty.pk}">#{empty.number} Orders table is empty</option>' in body


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_people_who_manage_no_incidents_get_no_bulk_form(
    client_as: ClientAs, empty: Incident, customers: Incident, role: str
) -> None:
    body = client_as(role).get("/incidents/").content.decode()

    assert "/incidents/bulk" not in body
    assert 'name="incident"' not in body


def test_the_dataset_tab_offers_the_form_and_leads_back_to_the_tab(
    client_as: ClientAs, world: World, empty: Incident
) -> None:
    url = f"/datasets/{world.orders.pk}/incidents?severity=major"
    client = client_as("editor")
    page = client.get(url).content.decode()
    assert f'name="next" value="{html.escape(url)}"' in page or f'name="next" value="{url}"' in page

    response = client.post(
        "/incidents/bulk",
        {"incident": [empty.pk], "action": "severity", "severity": "critical", "next": url},
    )

    assert response.status_code == 302
    assert response["Location"] == url
    assert Incident.objects.get(pk=empty.pk).severity == "critical"


def test_a_bulk_change_says_what_changed_and_what_was_refused_and_why(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    body = post(client_as("editor"), empty, stale, customers, action="status", status="investigating")

    assert notices(body) == [
        f"success: Changed 2 incidents: #{empty.number}, #{stale.number}.",
        f"error: #{customers.number} not changed: You need the Manage incidents permission on one of this "
        "incident's datasets to change it.",
    ]
    assert [i.status for i in Incident.objects.order_by("pk")] == [
        "investigating",
        "investigating",
        "reported",
    ]


def test_setting_the_lead_or_the_severity_of_the_ticked_incidents(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident
) -> None:
    client = client_as("editor")

    post(client, empty, stale, action="lead", lead=str(world.manager.pk))
    post(client, stale, action="severity", severity="minor")

    assert list(Incident.objects.order_by("pk").values_list("lead_id", "severity")) == [
        (world.manager.pk, "major"),
        (world.manager.pk, "minor"),
    ]


def test_all_on_this_page_sends_every_row_of_the_page_without_scripts(
    client_as: ClientAs, empty: Incident, stale: Incident
) -> None:
    body = post(
        client_as("editor"),
        action="severity",
        severity="critical",
        all="1",
        on_page=[empty.pk, stale.pk],
    )

    assert notices(body) == [f"success: Changed 2 incidents: #{empty.number}, #{stale.number}."]


def test_resolving_needs_a_reason_first_and_then_a_note_for_each_incident_without_one(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident
) -> None:
    client = client_as("editor")
    incidents.update_incident(stale.pk, by=world.manager, resolution_notes="Reloaded by hand.")

    no_reason = post(client, empty, stale, action="status", status="resolved")
    assert notices(no_reason) == [
        "error: Choose a resolution reason to resolve the chosen incidents, and write the note."
    ]
    assert not Incident.objects.filter(status="resolved").exists()

    no_note = post(client, empty, stale, action="status", status="resolved", resolution_reason="expected")
    assert notices(no_note) == [
        f"success: Changed 1 incident: #{stale.number}.",
        f"error: #{empty.number} not changed: A resolution note is required to resolve an incident: say what "
        "was done.",
    ]
    assert list(Incident.objects.order_by("pk").values_list("status", "resolution_reason")) == [
        ("reported", ""),
        ("resolved", "expected"),
    ]


def test_nothing_ticked_or_no_action_is_said_and_changes_nothing(
    client_as: ClientAs, empty: Incident
) -> None:
    client = client_as("editor")

    assert notices(post(client, action="severity", severity="minor")) == [
        "error: Choose at least one incident first: tick it in the list."
    ]
    assert notices(post(client, empty)) == ["error: Choose what to do with the chosen incidents."]
    assert Incident.objects.get(pk=empty.pk).version == empty.version


def test_merging_the_ticked_incidents_into_one(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident
) -> None:
    body = post(client_as("editor"), empty, stale, action="merge", target=str(empty.pk))

    assert notices(body) == [f"success: Merged #{stale.number} into #{empty.number} Orders table is empty."]
    merged = Incident.objects.get(pk=stale.pk)
    assert (merged.status, merged.resolution_reason) == ("resolved", "duplicate")


def test_a_merge_with_an_incident_the_caller_may_not_change_is_refused_whole(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident, customers: Incident
) -> None:
    body = post(client_as("editor"), empty, stale, customers, action="merge", target=str(empty.pk))

    (notice,) = notices(body)
    assert notice.startswith("error: You need the Manage incidents permission")
    assert f"#{customers.number} 'Too few customers'" in notice
    assert set(Incident.objects.values_list("status", flat=True)) == {"reported"}


def test_a_merge_needs_another_incident_than_the_target(client_as: ClientAs, empty: Incident) -> None:
    body = post(client_as("editor"), empty, action="merge", target=str(empty.pk))

    assert notices(body) == ["error: Choose the incidents to merge besides the one they merge into."]


def test_the_incident_pages_show_the_merge_on_both_timelines(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident
) -> None:
    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)
    client = client_as("viewer")

    target = client.get(f"/incidents/{empty.number}").content.decode()
    merged = client.get(f"/incidents/{stale.number}").content.decode()

    into = (
        f'merged <a href="/incidents/{stale.number}">#{stale.number}</a> Orders are stale into this incident'
    )
    away = f'merged this incident into <a href="/incidents/{empty.number}">#{empty.number}</a> Orders table is empty'
    assert into in target
    assert away in merged
    assert "Duplicate" in merged


def test_the_incident_page_merges_it_into_another_by_number(
    client_as: ClientAs, world: World, empty: Incident, stale: Incident
) -> None:
    client = client_as("editor")
    page = client.get(f"/incidents/{stale.number}").content.decode()
    assert "Merge into another incident" in page

    response = client.post(
        "/incidents/bulk",
        {
            "incident": [stale.pk],
            "action": "merge",
            "target_number": f"#{empty.number}",
            "next": f"/incidents/{stale.number}",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == f"/incidents/{stale.number}"
    body = response.content.decode()
    assert notices(body) == [f"success: Merged #{stale.number} into #{empty.number} Orders table is empty."]
    assert "merged this incident into" in body
    assert "Merge into another incident" not in body  # resolved now


def test_merging_into_a_number_the_caller_cannot_see_is_refused(
    client_as: ClientAs, world: World, empty: Incident, customers: Incident
) -> None:
    body = post(client_as("outsider"), customers, action="merge", target_number=str(empty.number))

    assert notices(body) == [f"error: There is no incident #{empty.number} you can see to merge into."]
    assert Incident.objects.get(pk=customers.pk).status == "reported"


def test_a_viewer_gets_no_merge_form_on_the_incident_page(client_as: ClientAs, empty: Incident) -> None:
    assert (
        "Merge into another incident"
        not in client_as("viewer").get(f"/incidents/{empty.number}").content.decode()
    )


def test_a_get_of_the_bulk_address_goes_to_the_incidents_page(client_as: ClientAs) -> None:
    response = client_as("editor").get("/incidents/bulk")

    assert response.status_code == 302
    assert response["Location"] == "/incidents/"


def test_an_anonymous_post_changes_nothing_and_asks_to_log_in(client_as: ClientAs, empty: Incident) -> None:
    response = client_as("anonymous").post(
        "/incidents/bulk", {"incident": [empty.pk], "action": "severity", "severity": "minor"}
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert Incident.objects.get(pk=empty.pk).severity == "major"


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_a_post_by_someone_who_may_not_change_them_changes_nothing_and_says_why(
    client_as: ClientAs, empty: Incident, customers: Incident, role: str
) -> None:
    body = post(client_as(role), empty, customers, action="severity", severity="minor")

    said = notices(body)
    assert len(said) == 2
    assert all(line.startswith("error: ") for line in said)
    if role == "outsider":
        assert said[0] == f"error: Incident {empty.pk} not changed: Incident {empty.pk} not found."
    assert set(Incident.objects.values_list("severity", flat=True)) == {"major"}


def test_the_answer_goes_back_only_to_a_page_of_quell(client_as: ClientAs, empty: Incident) -> None:
    response = client_as("editor").post(
        "/incidents/bulk",
        {"incident": [empty.pk], "action": "severity", "severity": "minor", "next": "https://evil.example/"},
    )

    assert response["Location"] == "/incidents/"
