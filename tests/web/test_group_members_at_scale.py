"""A group's members and the groups list with more people and groups than one page should list:
members are paginated with a Remove box each, people to add are searched, and saving adds and
removes exactly the ticked ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from quell.accounts import queries as account_queries
from quell.accounts import services as accounts
from quell.accounts.models import User, UserGroup
from quell.lib.errors import Forbidden, Invalid
from quell.web.pickers import PICKER_MATCHES, PLAIN_SELECT_MAX
from tests.conftest import World
from tests.web.conftest import ClientAs

CROWD = PLAIN_SELECT_MAX + 30  # 130 people, with the world's five more than a plain list shows
MEMBERS_PER_PAGE = 100


@dataclass
class Crowd:
    people: list[User]  # "Person 000" … "Person 129", in name order
    group: UserGroup  # "Data team", with nobody in it


@pytest.fixture
def crowd(world: World) -> Crowd:
    password = make_password("pw-for-tests")
    User.objects.bulk_create(
        User(email=f"person{n:03}@example.com", name=f"Person {n:03}", password=password)
        for n in range(CROWD)
    )
    people = list(User.objects.filter(email__startswith="person").order_by("name"))
    return Crowd(people, UserGroup.objects.create(name="Data team"))


def ids_of(body: str, name: str) -> list[int]:
    """The values of the page's checkboxes called `name`, in page order."""
    return [int(pk) for pk in re.findall(rf'<input type="checkbox"[^>]*name="{name}" value="(\d+)"', body)]


def checked_ids(body: str, name: str) -> list[int]:
    return [int(pk) for pk in re.findall(rf'name="{name}" value="(\d+)" checked', body)]


def members_of(group: UserGroup) -> set[int]:
    return set(group.members.values_list("pk", flat=True))


# --- The group's page -----------------------------------------------------------------------------


def test_a_large_group_shows_a_page_of_100_members_each_with_a_remove_box(
    client_as: ClientAs, crowd: Crowd
) -> None:
    crowd.group.members.add(*crowd.people[:105])
    admin = client_as("admin")

    first = admin.get(f"/settings/groups/{crowd.group.pk}").content.decode()
    second = admin.get(f"/settings/groups/{crowd.group.pk}?page=2").content.decode()

    assert ids_of(first, "remove") == [person.pk for person in crowd.people[:MEMBERS_PER_PAGE]]
    assert ids_of(second, "remove") == [person.pk for person in crowd.people[MEMBERS_PER_PAGE:105]]
    assert "Page 1 of 2 · 105 in all" in first


def test_with_more_than_100_people_to_add_the_page_offers_the_first_50_and_a_search_box(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    body = client_as("admin").get(f"/settings/groups/{crowd.group.pk}").content.decode()

    assert ids_of(body, "remove") == []
    assert len(ids_of(body, "add")) == PICKER_MATCHES
    assert 'aria-label="Search people to add"' in body
    assert f"More than {PICKER_MATCHES} match: type to narrow." in body


def test_with_few_people_to_add_the_page_lists_them_all_without_a_search_box(
    client_as: ClientAs, world: World, crowd: Crowd
) -> None:
    crowd.group.members.add(*crowd.people)

    body = client_as("admin").get(f"/settings/groups/{crowd.group.pk}").content.decode()

    world_people = [world.admin, world.editor, world.manager, world.outsider, world.viewer]
    assert sorted(ids_of(body, "add")) == sorted(person.pk for person in world_people)
    assert 'aria-label="Search people to add"' not in body


def test_typing_in_the_add_box_narrows_the_people_offered(client_as: ClientAs, crowd: Crowd) -> None:
    late = crowd.people[120]

    response = client_as("admin").get(f"/settings/groups/{crowd.group.pk}/candidates?add_q=PERSON+120")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="add-candidates"' in body
    assert "<html" not in body
    assert ids_of(body, "add") == [late.pk]


def test_without_scripts_the_search_reloads_the_page_with_the_matches(
    client_as: ClientAs, crowd: Crowd
) -> None:
    late = crowd.people[120]

    body = client_as("admin").get(f"/settings/groups/{crowd.group.pk}?add_q=person120@").content.decode()

    assert ids_of(body, "add") == [late.pk]
    assert 'value="person120@"' in body


def test_the_search_offers_neither_members_nor_deactivated_people(client_as: ClientAs, crowd: Crowd) -> None:
    crowd.group.members.add(crowd.people[120])
    User.objects.filter(pk=crowd.people[121].pk).update(is_active=False)
    admin = client_as("admin")

    member = admin.get(f"/settings/groups/{crowd.group.pk}/candidates?add_q=person+120").content.decode()
    inactive = admin.get(f"/settings/groups/{crowd.group.pk}/candidates?add_q=person+121").content.decode()

    assert ids_of(member, "add") == []
    assert "Nobody outside the group matches “person 120”." in member
    assert ids_of(inactive, "add") == []


def test_people_ticked_before_a_new_search_stay_ticked_after_it(client_as: ClientAs, crowd: Crowd) -> None:
    ticked, wanted = crowd.people[7], crowd.people[120]

    body = (
        client_as("admin")
        .get(
            f"/settings/groups/{crowd.group.pk}/candidates", {"add_q": "person 120", "add": [str(ticked.pk)]}
        )
        .content.decode()
    )

    assert ids_of(body, "add") == [ticked.pk, wanted.pk]
    assert checked_ids(body, "add") == [ticked.pk]


def test_an_admin_adds_someone_beyond_the_first_50(client_as: ClientAs, crowd: Crowd) -> None:
    late = crowd.people[120]

    response = client_as("admin").post(
        f"/settings/groups/{crowd.group.pk}", {"action": "members", "add": [late.pk]}
    )

    assert response.status_code == 302
    assert members_of(crowd.group) == {late.pk}


def test_removing_members_keeps_the_others(client_as: ClientAs, crowd: Crowd) -> None:
    crowd.group.members.add(*crowd.people[:3])
    gone, stays, also_stays = crowd.people[:3]
    newcomer = crowd.people[120]

    response = client_as("admin").post(
        f"/settings/groups/{crowd.group.pk}", {"action": "members", "remove": [gone.pk], "add": [newcomer.pk]}
    )

    assert response.status_code == 302
    assert members_of(crowd.group) == {stays.pk, also_stays.pk, newcomer.pk}


def test_an_unknown_person_is_refused_at_the_add_box_and_nothing_changes(
    client_as: ClientAs, crowd: Crowd
) -> None:
    crowd.group.members.add(crowd.people[0])
    data = {"action": "members", "add": [crowd.people[1].pk, 999999], "remove": [crowd.people[0].pk]}

    response = client_as("admin").post(f"/settings/groups/{crowd.group.pk}", data)

    assert response.status_code == 400
    body = response.content.decode()
    assert "Unknown users: 999999." in body
    assert checked_ids(body, "remove") == [crowd.people[0].pk]
    assert members_of(crowd.group) == {crowd.people[0].pk}


def test_a_deactivated_person_cannot_be_added_and_nothing_changes(client_as: ClientAs, crowd: Crowd) -> None:
    User.objects.filter(pk=crowd.people[5].pk).update(is_active=False)
    data = {"action": "members", "add": [crowd.people[4].pk, crowd.people[5].pk]}

    response = client_as("admin").post(f"/settings/groups/{crowd.group.pk}", data)

    assert response.status_code == 400
    assert "Deactivated users cannot be added: person005@example.com." in response.content.decode()
    assert members_of(crowd.group) == set()


def test_an_id_that_is_not_a_number_is_refused_at_the_field(client_as: ClientAs, crowd: Crowd) -> None:
    data = {"action": "members", "add": [crowd.people[4].pk, "4x"]}

    response = client_as("admin").post(f"/settings/groups/{crowd.group.pk}", data)

    assert response.status_code == 400
    assert "Choose people from the list." in response.content.decode()
    assert members_of(crowd.group) == set()


def test_the_everyone_groups_members_cannot_be_changed(client_as: ClientAs, world: World) -> None:
    everyone = account_queries.everyone_group()
    admin = client_as("admin")

    page = admin.get(f"/settings/groups/{everyone.pk}")
    posted = admin.post(f"/settings/groups/{everyone.pk}", {"action": "members", "add": [world.viewer.pk]})
    candidates = admin.get(f"/settings/groups/{everyone.pk}/candidates")

    assert page.status_code == 200
    assert 'name="add"' not in page.content.decode()
    assert posted.status_code == 400
    assert "Everyone holds every user; its members cannot be changed." in posted.content.decode()
    assert candidates.status_code == 400
    assert members_of(everyone) == set()


def test_no_query_of_the_group_page_reads_every_user(client_as: ClientAs, crowd: Crowd) -> None:
    # Few enough members that more than PLAIN_SELECT_MAX people are left to add: the searched case.
    crowd.group.members.add(*crowd.people[:10])
    admin = client_as("admin")
    url = f"/settings/groups/{crowd.group.pk}"
    admin.get(url)

    with CaptureQueriesContext(connection) as page_queries:
        admin.get(url + "?add_q=person")
    with CaptureQueriesContext(connection) as swap_queries:
        admin.get(url + "/candidates?add_q=person")

    for query in [*page_queries.captured_queries, *swap_queries.captured_queries]:
        sql = query["sql"]
        reads_people = re.search(r'FROM "accounts_user"', sql) and not sql.startswith("SELECT COUNT")
        # The one user read without a LIMIT is the signed-in admin, by primary key.
        by_pk = re.search(r'WHERE "accounts_user"\."id" = ', sql)
        limited = re.search(r"LIMIT \d+( OFFSET \d+)?$", sql)
        assert not reads_people or limited or by_pk, sql


# --- Who may ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_see_or_change_a_groups_members(client_as: ClientAs, crowd: Crowd, role: str) -> None:
    client = client_as(role)
    url = f"/settings/groups/{crowd.group.pk}"

    page = client.get(url)
    candidates = client.get(f"{url}/candidates?add_q=person")
    posted = client.post(url, {"action": "members", "add": [crowd.people[0].pk]})

    assert (page.status_code, candidates.status_code, posted.status_code) == (403, 403, 403)
    assert members_of(crowd.group) == set()


def test_anonymous_visitors_are_sent_to_log_in_from_the_add_box(client_as: ClientAs, crowd: Crowd) -> None:
    url = f"/settings/groups/{crowd.group.pk}"

    for response in (client_as("anonymous").get(url), client_as("anonymous").get(f"{url}/candidates")):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web:login") + "?next=")


# --- The groups list --------------------------------------------------------------------------------


def test_the_groups_list_shows_100_a_page_and_finds_one_by_name(client_as: ClientAs, world: World) -> None:
    UserGroup.objects.bulk_create(UserGroup(name=f"Team {n:03}") for n in range(130))
    admin = client_as("admin")

    first = admin.get("/settings/groups").content.decode()
    second = admin.get("/settings/groups?page=2").content.decode()
    found = admin.get("/settings/groups?q=TEAM+12").content.decode()

    def listed(body: str) -> list[str]:
        return re.findall(r'<a href="/settings/groups/\d+">([^<]+)</a>', body)

    assert len(listed(first)) == 100
    assert listed(first)[:2] == ["Everyone", "Team 000"]
    assert listed(second) == [f"Team {n:03}" for n in range(99, 130)]
    assert listed(found) == [f"Team {n:03}" for n in range(130) if "12" in f"{n:03}"]
    assert 'value="TEAM 12"' in found


def test_a_search_that_finds_no_group_says_so(client_as: ClientAs, world: World) -> None:
    body = client_as("admin").get("/settings/groups?q=nothing+like+it").content.decode()

    assert "No group matches “nothing like it”." in body


# --- The services -------------------------------------------------------------------------------------


def test_adding_to_a_group_keeps_members_added_meanwhile(world: World, crowd: Crowd) -> None:
    other_admin = User.objects.create_user("bob@example.com", "pw-for-tests", global_role="admin")
    # Both admins opened the page while the group was empty; each adds a different person.
    accounts.add_group_members(crowd.group.pk, [crowd.people[0].pk], by=world.admin)
    accounts.add_group_members(crowd.group.pk, [crowd.people[1].pk], by=other_admin)

    assert members_of(crowd.group) == {crowd.people[0].pk, crowd.people[1].pk}


def test_adding_someone_already_in_the_group_changes_nothing(world: World, crowd: Crowd) -> None:
    crowd.group.members.add(crowd.people[0])

    accounts.add_group_members(crowd.group.pk, [crowd.people[0].pk, crowd.people[1].pk], by=world.admin)

    assert members_of(crowd.group) == {crowd.people[0].pk, crowd.people[1].pk}


def test_removing_from_a_group_keeps_the_other_members(world: World, crowd: Crowd) -> None:
    crowd.group.members.add(*crowd.people[:3])

    accounts.remove_group_members(crowd.group.pk, [crowd.people[1].pk], by=world.admin)

    assert members_of(crowd.group) == {crowd.people[0].pk, crowd.people[2].pk}


def test_a_deactivated_member_can_still_be_removed(world: World, crowd: Crowd) -> None:
    crowd.group.members.add(*crowd.people[:2])
    User.objects.filter(pk=crowd.people[0].pk).update(is_active=False)

    accounts.remove_group_members(crowd.group.pk, [crowd.people[0].pk], by=world.admin)

    assert members_of(crowd.group) == {crowd.people[1].pk}


def test_removing_an_unknown_user_is_refused_and_removes_nobody(world: World, crowd: Crowd) -> None:
    crowd.group.members.add(*crowd.people[:2])

    with pytest.raises(Invalid, match=r"Unknown users: 999999\."):
        accounts.remove_group_members(crowd.group.pk, [crowd.people[0].pk, 999999], by=world.admin)

    assert members_of(crowd.group) == {crowd.people[0].pk, crowd.people[1].pk}


def test_adding_a_deactivated_user_is_refused_and_adds_nobody(world: World, crowd: Crowd) -> None:
    User.objects.filter(pk=crowd.people[1].pk).update(is_active=False)

    with pytest.raises(Invalid, match=r"Deactivated users cannot be added: person001@example\.com\."):
        accounts.add_group_members(crowd.group.pk, [crowd.people[0].pk, crowd.people[1].pk], by=world.admin)

    assert members_of(crowd.group) == set()


def test_one_change_names_at_most_500_people(world: World, crowd: Crowd) -> None:
    too_many = [person.pk for person in crowd.people] + list(range(10**6, 10**6 + 371))

    with pytest.raises(Invalid, match=r"Change at most 500 people at a time\."):
        accounts.add_group_members(crowd.group.pk, too_many, by=world.admin)

    assert members_of(crowd.group) == set()


def test_one_person_cannot_be_added_and_removed_at_once(world: World, crowd: Crowd) -> None:
    with pytest.raises(Invalid, match="both added and removed"):
        accounts.change_group_members(
            crowd.group.pk, add=[crowd.people[0].pk], remove=[crowd.people[0].pk], by=world.admin
        )

    assert members_of(crowd.group) == set()


def test_the_everyone_group_refuses_additions_and_removals(world: World) -> None:
    everyone = account_queries.everyone_group()

    with pytest.raises(Invalid, match="Everyone holds every user"):
        accounts.add_group_members(everyone.pk, [world.viewer.pk], by=world.admin)
    with pytest.raises(Invalid, match="Everyone holds every user"):
        accounts.remove_group_members(everyone.pk, [world.viewer.pk], by=world.admin)

    assert members_of(everyone) == set()


@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_an_admin_may_add_or_remove_members(world: World, crowd: Crowd, role: str) -> None:
    crowd.group.members.add(crowd.people[0])

    with pytest.raises(Forbidden):
        accounts.add_group_members(crowd.group.pk, [crowd.people[1].pk], by=world.user(role))
    with pytest.raises(Forbidden):
        accounts.remove_group_members(crowd.group.pk, [crowd.people[0].pk], by=world.user(role))

    assert members_of(crowd.group) == {crowd.people[0].pk}
