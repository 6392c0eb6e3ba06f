"""People and dataset pickers with more choices than a plain <select> should list: the incident
filters, the incident's Lead field and Create Incident's Lead field list a bounded few and search."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quell.accounts.models import Responsibility, User, UserGroup
from quell.catalog.models import Dataset, DataSource
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from quell.web.pickers import PICKER_MATCHES, PLAIN_SELECT_MAX
from tests.conftest import World
from tests.web.conftest import ClientAs

CROWD = PLAIN_SELECT_MAX + 30
LEADS = PLAIN_SELECT_MAX + 5


@dataclass
class Crowd:
    people: list[User]  # "Person 000" … in name order, all able to manage warehouse/customers' incidents
    incidents: list[Incident]  # one on customers led by each of the first LEADS people
    datasets: list[Dataset]  # lake/table_000 …, visible to the admin


@pytest.fixture
def crowd(world: World) -> Crowd:
    password = make_password("pw-for-tests")
    User.objects.bulk_create(
        User(email=f"person{n:03}@example.com", name=f"Person {n:03}", password=password)
        for n in range(CROWD)
    )
    people = list(User.objects.filter(email__startswith="person").order_by("name"))
    # They, the manager and the editor may manage customers' incidents, so may lead one.
    crew = UserGroup.objects.create(name="Crew")
    crew.members.add(*people, world.manager, world.editor)
    Responsibility.objects.create(dataset=world.customers, group=crew, role=world.role("Editor"))
    made = [
        incidents.create_incident(
            by=world.admin,
            title=f"Customers problem {n:03}",
            lead_id=person.pk,
            check_result_ids=[world.customers_fail.pk],
            allow_duplicate=True,  # one result, many leads' incidents
        )
        for n, person in enumerate(people[:LEADS])
    ]
    lake = DataSource.objects.create(name="lake")
    Dataset.objects.bulk_create(Dataset(data_source=lake, name=f"table_{n:03}") for n in range(CROWD))
    return Crowd(people, made, list(Dataset.objects.filter(data_source=lake).order_by("name")))


def select(body: str, select_id: str) -> str:
    """The HTML of one <select> of the page."""
    match = re.search(rf'<select[^>]*id="{select_id}".*?</select>', body, re.S)
    assert match, f"no select #{select_id}"
    return match.group(0)


def options(body: str, select_id: str) -> list[str]:
    """The labels of a select's options that can be chosen (not "Anyone", not the hints)."""
    return re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', select(body, select_id))


def get(client_as: ClientAs, url: str, role: str = "admin") -> str:
    response = client_as(role).get(url)
    assert response.status_code == 200, response.content
    return response.content.decode()


def titles(body: str) -> list[str]:
    return re.findall(r'<a href="/incidents/\d+">([^<]+)</a>', body.split('id="incident-list"')[1])


# --- The incident list's filters ----------------------------------------------------------------


def test_each_filter_lists_at_most_the_first_matches_and_the_caller_with_a_search_box(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, "/incidents/")

    # Alice (the admin) reported every incident, so she is both a match and the caller kept at hand.
    assert len(options(body, "f-lead")) <= PICKER_MATCHES + 1
    assert len(options(body, "f-reporter")) <= PICKER_MATCHES
    assert len(options(body, "f-dataset")) <= PICKER_MATCHES
    assert "Alice" in options(body, "f-lead")
    for box in ("lead_q", "reporter_q", "dataset_q"):
        assert f'name="{box}"' in body
    assert "search to find more" in select(body, "f-lead")


def test_the_lead_and_reporter_filters_read_the_first_people_once_and_only_what_they_show(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    client = client_as("admin")
    with CaptureQueriesContext(connection) as captured:
        body = client.get("/incidents/").content.decode()

    # The people who lead or reported an incident (the bulk form's lead choices, people who may
    # lead one of the page's incidents, are read apart, by their responsibilities).
    first_people = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "accounts_user"' in q["sql"]
        and f"LIMIT {PLAIN_SELECT_MAX + 1}" in q["sql"]
        and '"incidents_incident"' in q["sql"]
    ]
    assert len(first_people) == 1, first_people
    assert "password" not in first_people[0]
    # Both offer people who lead or reported an incident, from the same rows.
    assert "Person 000" in options(body, "f-lead")
    assert "Person 000" in options(body, "f-reporter")


def test_a_lead_search_narrows_the_lead_filter_to_the_matching_people(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, "/incidents/?lead_q=PERSON+103")

    assert options(body, "f-lead") == ["Alice", "Person 103"]
    assert 'value="PERSON 103"' in body


def test_a_person_is_found_by_every_word_of_their_email_too(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, "/incidents/?reporter_q=alice+example.com")

    assert options(body, "f-reporter") == ["Alice"]


def test_a_chosen_lead_beyond_the_first_matches_is_still_shown_selected_and_filters(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    late = crowd.people[LEADS - 1]

    body = get(client_as, f"/incidents/?lead={late.pk}")

    assert f'<option value="{late.pk}" selected>{late.name}</option>' in select(body, "f-lead")
    assert titles(body) == [f"Customers problem {LEADS - 1:03}"]
    assert "(ignored)" not in body


def test_a_dataset_search_matches_every_word_of_source_slash_name(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, "/incidents/?dataset_q=lake/TABLE_12")

    assert options(body, "f-dataset") == [f"lake/table_{n}" for n in range(120, CROWD)]
    assert options(get(client_as, "/incidents/?dataset_q=warehouse+cust"), "f-dataset") == [
        "warehouse/customers"
    ]


def test_filtering_by_a_dataset_not_listed_selects_it_and_finds_its_incidents(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    # warehouse/… sorts after the lake's tables, so it is not among the first matches.
    body = get(client_as, f"/incidents/?dataset={world.customers.pk}&dataset={crowd.datasets[-1].pk}")

    assert f'<option value="{world.customers.pk}" selected>warehouse/customers</option>' in body
    assert f'<option value="{crowd.datasets[-1].pk}" selected>lake/table_{CROWD - 1}</option>' in body
    assert titles(body)
    assert all(title.startswith("Customers problem") for title in titles(body))


def test_a_reporter_who_reported_nothing_is_named_and_ignored_as_before(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, f"/incidents/?reporter={crowd.people[-1].pk}")

    assert "Reporter:" in body
    assert "(ignored)" in body


def test_a_dataset_the_user_cannot_see_is_ignored_and_not_shown(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, f"/incidents/?dataset={world.orders.pk}", role="outsider")

    assert "Dataset:" in body
    assert "(ignored)" in body
    assert "warehouse/orders" not in body


def test_the_search_box_swaps_in_a_narrowed_select_that_keeps_the_choice(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    chosen = crowd.people[LEADS - 1]

    body = get(client_as, f"/incidents/pickers/lead?lead_q=person+10&lead={chosen.pk}")

    assert body.lstrip().startswith('<select id="f-lead" name="lead">')
    # "10" is in Person 010's name too.
    assert options(body, "f-lead") == [
        "Alice",
        chosen.name,
        "Person 010",
        *[f"Person {n:03}" for n in range(100, LEADS - 1)],
    ]
    assert f'value="{chosen.pk}" selected' in body


def test_the_dataset_swap_lists_only_datasets_the_user_can_see(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    url = "/incidents/pickers/dataset?dataset_q=orders"
    assert options(get(client_as, url), "f-dataset") == ["warehouse/orders"]
    # The viewer and the outsider cannot see the lake, so theirs are short lists, given whole.
    assert options(get(client_as, url, "viewer"), "f-dataset") == ["warehouse/customers", "warehouse/orders"]
    assert options(get(client_as, url, "outsider"), "f-dataset") == ["warehouse/customers"]
    assert client_as("admin").get("/incidents/pickers/status").status_code == 404


def test_few_choices_still_get_the_plain_full_select(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = get(client_as, "/incidents/")

    assert options(body, "f-lead") == ["Editor"]
    assert options(body, "f-dataset") == ["warehouse/customers", "warehouse/orders"]
    for box in ("lead_q", "reporter_q", "dataset_q"):
        assert f'name="{box}"' not in body
    assert 'name="lead_q"' not in get(client_as, f"/incidents/{orders_incident.number}")


# --- The incident's Lead field ------------------------------------------------------------------


def edit(client_as: ClientAs, incident: Incident, lead: int) -> tuple[int, str]:
    incident.refresh_from_db()
    data = {
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "lead": lead,
        "resolution_notes": incident.resolution_notes,
        "version": incident.version,
    }
    response = client_as("admin").post(f"/incidents/{incident.number}/edit", data)
    return response.status_code, response.content.decode()


def test_the_lead_field_lists_the_current_lead_the_caller_and_the_first_candidates(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    incident = crowd.incidents[-1]

    body = get(client_as, f"/incidents/{incident.number}")

    listed = options(body, "id_lead")
    assert listed[:2] == [crowd.people[LEADS - 1].name, "Alice"]
    assert len(listed) <= PICKER_MATCHES + 2
    assert f'<option value="{incident.lead_id}" selected>' in select(body, "id_lead")
    assert 'name="lead_q" form="lead-search"' in body
    assert 'id="lead-search"' in body


def test_a_lead_search_by_get_lists_the_matching_candidates(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    incident = crowd.incidents[0]

    body = get(client_as, f"/incidents/{incident.number}?lead_q=person+129")

    assert options(body, "id_lead") == ["Person 000", "Alice", "Person 129"]


def test_the_lead_swap_lists_matches_and_keeps_the_lead_being_chosen(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    incident = crowd.incidents[0]
    chosen = crowd.people[120]

    body = get(client_as, f"/incidents/{incident.number}/leads?lead_q=editor&lead={chosen.pk}")

    # What the form shows first: the current lead, then (in name order) the caller and the choice.
    assert options(body, "id_lead") == ["Person 000", "Alice", "Person 120", "Editor"]
    assert f'<option value="{chosen.pk}" selected>' in body
    assert client_as("viewer").get(f"/incidents/{incident.number}/leads").status_code == 403


def test_saving_a_lead_who_was_not_among_the_listed_options_assigns_them(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    incident = crowd.incidents[0]
    late = crowd.people[-1]
    assert late.name not in options(get(client_as, f"/incidents/{incident.number}"), "id_lead")

    status, _ = edit(client_as, incident, late.pk)

    assert status == 302
    incident.refresh_from_db()
    assert incident.lead == late


@pytest.mark.parametrize("who", ["deactivated", "missing"])
def test_a_lead_who_is_not_a_candidate_is_refused_at_the_field_and_nothing_changes(
    client_as: ClientAs, world: World, crowd: Crowd, who: str
) -> None:
    incident = crowd.incidents[0]
    version = incident.version
    lead = crowd.people[-1]
    User.objects.filter(pk=lead.pk).update(is_active=False)

    status, body = edit(client_as, incident, lead.pk if who == "deactivated" else 10**9)

    assert status == 400
    assert 'id="id_lead_error"' in body
    assert "Choose someone with Manage incidents on one of this incident&#x27;s datasets." in body
    incident.refresh_from_db()
    assert incident.lead == crowd.people[0]
    assert incident.version == version


# --- Create Incident's Lead field ---------------------------------------------------------------


def test_create_incident_lists_a_bounded_few_leads_and_searches_them(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    url = f"/checks/{world.customers_fail.check_ref_id}/create-incident"

    listed = options(get(client_as, url), "id_lead")
    searched = options(get(client_as, f"{url}?lead_q=person+12"), "id_lead")
    swapped = get(client_as, f"{url}/leads?lead_q=person+12")

    assert listed[0] == "Alice"
    assert len(listed) <= PICKER_MATCHES + 1
    assert searched == ["Alice", "Person 012", "Person 112", *[f"Person {n}" for n in range(120, CROWD)]]
    assert options(swapped, "id_lead") == searched


def test_create_incident_accepts_a_lead_who_was_not_listed(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    late = crowd.people[-1]
    url = f"/checks/{world.customers_fail.check_ref_id}/create-incident"

    response = client_as("admin").post(
        url,
        {
            "title": "Chosen by search",
            "severity": "minor",
            "lead": late.pk,
            "results": world.customers_fail.pk,
            # The crowd's incidents hold this result: a separate one, confirmed.
            "allow_duplicate": "on",
        },
    )

    assert response.status_code == 302
    assert Incident.objects.get(title="Chosen by search").lead == late
