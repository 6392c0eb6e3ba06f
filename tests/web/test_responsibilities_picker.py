"""A dataset's Responsibilities page with more people and groups than a plain <select> should list:
"User or group" offers a bounded few and a search box, and any active user or group can still be given a role."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quell.accounts.models import Responsibility, User, UserGroup
from quell.web.pickers import PICKER_MATCHES, PLAIN_SELECT_MAX
from tests.conftest import World
from tests.web.conftest import ROLES, ClientAs

PEOPLE = PLAIN_SELECT_MAX + 30
TEAMS = 12


@dataclass
class Crowd:
    people: list[User]  # "Person 000" … in name order, none holding a role on orders
    teams: list[UserGroup]  # "Team 00" … in name order


@pytest.fixture
def crowd(world: World) -> Crowd:
    password = make_password("pw-for-tests")
    User.objects.bulk_create(
        User(email=f"person{n:03}@example.com", name=f"Person {n:03}", password=password)
        for n in range(PEOPLE)
    )
    UserGroup.objects.bulk_create(UserGroup(name=f"Team {n:02}") for n in range(TEAMS))
    return Crowd(
        list(User.objects.filter(email__startswith="person").order_by("name")),
        list(UserGroup.objects.filter(name__startswith="Team").order_by("name")),
    )


def url(world: World, tail: str = "") -> str:
    return f"/datasets/{world.orders.pk}/responsibilities{tail}"


def get(client_as: ClientAs, address: str, role: str = "admin") -> str:
    response = client_as(role).get(address)
    assert response.status_code == 200, response.content
    return response.content.decode()


def principal_select(body: str) -> str:
    match = re.search(r'<select id="new-principal".*?</select>', body, re.S)
    assert match, "no User or group select"
    return match.group(0)


def offered(body: str) -> list[str]:
    """The labels of the options that can be chosen (not "Nobody new", not the hints)."""
    return re.findall(r'<option value="(?:user|group):\d+"[^>]*>([^<]+)</option>', principal_select(body))


def offered_groups(body: str) -> list[str]:
    return re.findall(r'<option value="group:\d+"[^>]*>([^<]+)</option>', principal_select(body))


def person(n: int) -> str:
    return f"Person {n:03} (person{n:03}@example.com)"


def current_rows(world: World) -> dict[str, list[str]]:
    """The form fields that keep the orders dataset's present responsibilities as they are."""
    rows = Responsibility.objects.filter(dataset=world.orders).order_by("id")
    return {
        "principal": [f"user:{row.user_id}" for row in rows],
        "role": [str(row.role_id) for row in rows],
    }


# --- Many people and groups ------------------------------------------------------------------------


def test_the_page_lists_the_first_matches_of_groups_and_people_with_a_search_box(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, url(world))

    labels = offered(body)
    assert len(labels) == PICKER_MATCHES
    # Every group fits in its share, so the people fill the rest, in name order.
    assert offered_groups(body) == ["Everyone", *(team.name for team in crowd.teams)]
    assert labels[TEAMS + 1 :] == [
        "Alice (alice@example.com)",
        "Outsider (outsider@example.com)",
        *[person(n) for n in range(PICKER_MATCHES - TEAMS - 3)],
    ]
    assert "More than 50 match: type to narrow" in principal_select(body)
    assert 'name="principal_q"' in body
    assert 'form="principal-search"' in body


def test_the_holders_of_a_role_are_never_offered(client_as: ClientAs, world: World, crowd: Crowd) -> None:
    body = get(client_as, url(world, "?principal_q=example.com"))

    for holder in (world.manager, world.editor, world.viewer):
        assert f'value="user:{holder.pk}"' not in principal_select(body)


def test_a_search_without_scripts_reloads_the_page_with_the_matches(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, url(world, "?principal_q=PERSON+12"))

    # "12" is in person112's email too.
    assert offered(body) == [person(12), person(112), *[person(n) for n in range(120, PEOPLE)]]
    assert 'value="PERSON 12"' in body
    assert "type to narrow" not in body


def test_a_search_matches_groups_by_every_word_of_their_name(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = get(client_as, url(world, "?principal_q=team+1"))

    assert offered(body) == ["Team 01", "Team 10", "Team 11"]


def test_a_search_that_matches_nothing_says_so(client_as: ClientAs, world: World, crowd: Crowd) -> None:
    body = get(client_as, url(world, "?principal_q=nobody+at+all"))

    assert offered(body) == []
    assert "Nothing matches “nobody at all”" in principal_select(body)


def test_the_search_box_swaps_in_a_narrowed_select_that_keeps_the_choice(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    chosen = crowd.people[-1]

    body = get(client_as, url(world, f"/principals?principal_q=team+0&new_principal=user:{chosen.pk}"))

    assert body.lstrip().startswith('<select id="new-principal" name="new_principal">')
    assert "<form" not in body
    # "0" is in Team 10's name too; the chosen person matches neither word, and stays.
    assert offered(body) == [*(f"Team {n:02}" for n in range(11)), person(PEOPLE - 1)]
    assert f'value="user:{chosen.pk}" selected' in body


def test_a_person_beyond_the_first_matches_can_be_given_a_role(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    late = crowd.people[-1]
    assert person(PEOPLE - 1) not in offered(get(client_as, url(world)))

    response = client_as("manager").post(
        url(world),
        {**current_rows(world), "new_principal": f"user:{late.pk}", "new_role": world.role("Editor").pk},
    )

    assert response.status_code == 302
    assert Responsibility.objects.get(dataset=world.orders, user=late).role.name == "Editor"
    assert person(PEOPLE - 1) not in offered(get(client_as, url(world, "?principal_q=person+129")))


def test_a_group_beyond_the_first_matches_can_be_given_a_role(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    UserGroup.objects.bulk_create(UserGroup(name=f"Zebra {n:03}") for n in range(PLAIN_SELECT_MAX))
    last = UserGroup.objects.get(name=f"Zebra {PLAIN_SELECT_MAX - 1:03}")
    assert last.name not in offered(get(client_as, url(world)))

    response = client_as("admin").post(
        url(world),
        {**current_rows(world), "new_principal": f"group:{last.pk}", "new_role": world.role("Viewer").pk},
    )

    assert response.status_code == 302
    assert Responsibility.objects.filter(dataset=world.orders, group=last).exists()


def test_a_deactivated_person_is_refused_by_the_service_and_nothing_changes(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    gone = crowd.people[-1]
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    before = list(Responsibility.objects.filter(dataset=world.orders).values_list("user_id", "role_id"))

    response = client_as("manager").post(
        url(world),
        {**current_rows(world), "new_principal": f"user:{gone.pk}", "new_role": world.role("Viewer").pk},
    )

    assert response.status_code == 400
    assert f"there is no active user {gone.pk}" in response.content.decode()
    assert (
        list(Responsibility.objects.filter(dataset=world.orders).values_list("user_id", "role_id")) == before
    )


def test_a_refused_form_keeps_the_chosen_person_selected_though_not_among_the_first(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    late = crowd.people[-1]

    response = client_as("manager").post(
        url(world), {**current_rows(world), "new_principal": f"user:{late.pk}", "new_role": "none"}
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose the role to give." in body
    assert f'value="user:{late.pk}" selected' in principal_select(body)
    assert not Responsibility.objects.filter(dataset=world.orders, user=late).exists()


def test_a_principal_id_too_large_for_any_database_is_a_clear_error(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    response = client_as("manager").post(
        url(world),
        {**current_rows(world), "new_principal": "user:" + "9" * 30, "new_role": world.role("Viewer").pk},
    )

    assert response.status_code == 400
    assert "Choose a user or a group from the list." in response.content.decode()


def test_the_people_and_groups_are_read_with_a_limit_not_all_at_once(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    for address in (
        url(world),
        url(world, "?principal_q=person"),
        url(world, "/principals?principal_q=team"),
    ):
        with CaptureQueriesContext(connection) as queries:
            get(client_as, address)
        listing = [
            query["sql"]
            for query in queries.captured_queries
            if re.search(r'FROM "accounts_(user|usergroup)"', query["sql"])
            and "responsibility" in query["sql"]
        ]
        assert listing, address
        assert all(" LIMIT " in sql for sql in listing), listing


# --- A small organisation -----------------------------------------------------------------------


def test_a_small_organisation_gets_the_plain_select_of_everyone_without_a_role(
    client_as: ClientAs, world: World
) -> None:
    body = get(client_as, url(world))

    assert offered(body) == ["Everyone", "Alice (alice@example.com)", "Outsider (outsider@example.com)"]
    assert 'name="principal_q"' not in body
    assert "type to narrow" not in body


def test_in_a_small_organisation_a_search_changes_nothing(client_as: ClientAs, world: World) -> None:
    body = get(client_as, url(world, "?principal_q=alice"))

    assert offered(body) == ["Everyone", "Alice (alice@example.com)", "Outsider (outsider@example.com)"]


def test_a_small_organisation_gives_a_role_as_before(client_as: ClientAs, world: World) -> None:
    response = client_as("manager").post(
        url(world),
        {
            **current_rows(world),
            "new_principal": f"user:{world.outsider.pk}",
            "new_role": world.role("Viewer").pk,
        },
    )

    assert response.status_code == 302
    assert Responsibility.objects.filter(dataset=world.orders, user=world.outsider).exists()


# --- Who may ask for the list ----------------------------------------------------------------------

EXPECTED = {"admin": 200, "manager": 200, "editor": 403, "viewer": 403, "outsider": 404, "anonymous": 302}


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
def test_the_swap_answers_each_role_as_the_page_does(
    client_as: ClientAs, world: World, crowd: Crowd, role: str
) -> None:
    page = client_as(role).get(url(world))
    swap = client_as(role).get(url(world, "/principals?principal_q=person"))

    assert swap.status_code == page.status_code == EXPECTED[role]
    if role == "anonymous":
        assert swap["Location"].startswith("/login/?next=")
    if EXPECTED[role] != 200:
        assert "person0" not in swap.content.decode()


def test_the_swap_only_answers_get(client_as: ClientAs, world: World) -> None:
    assert client_as("admin").post(url(world, "/principals")).status_code == 405
