"""A caller's groups are read once per request, and a change of members is seen at once."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.accounts import permissions
from quell.accounts import services as accounts
from quell.accounts.models import DatasetRole, Responsibility
from quell.catalog.models import Dataset
from quell.incidents import services as incidents
from tests.conftest import World


def group_reads(captured: CaptureQueriesContext) -> int:
    return sum(1 for q in captured.captured_queries if 'FROM "accounts_usergroup" ' in q["sql"])


def a_group_viewing_orders(world: World) -> int:
    group = accounts.create_group(by=world.admin, name="Order watchers")
    Responsibility.objects.create(
        dataset=world.orders, group=group, role=DatasetRole.objects.get(name="Viewer")
    )
    return group.pk


def viewable(world: World) -> list[int]:
    rows = Dataset.objects.filter(pk=world.orders.pk)
    return list(permissions.only_viewable(rows, world.outsider, "pk").values_list("pk", flat=True))


def test_a_members_incidents_page_reads_the_members_groups_once(world: World) -> None:
    accounts.add_group_members(a_group_viewing_orders(world), [world.outsider.pk], by=world.admin)
    for n in range(3):
        incidents.create_incident(
            by=world.admin, title=f"Late {n}", check_result_ids=[world.orders_fail.pk], allow_duplicate=True
        )
    browser = Client()
    browser.force_login(world.outsider)

    with CaptureQueriesContext(connection) as captured:
        page = browser.get("/incidents/", {"q": "late"})

    assert page.status_code == 200
    assert page.content.count(b'href="/incidents/') >= 3
    assert group_reads(captured) == 1


def test_within_a_request_adding_and_removing_members_is_seen_by_the_next_check(world: World) -> None:
    group = a_group_viewing_orders(world)
    with permissions.groups_remembered():
        assert viewable(world) == []
        accounts.add_group_members(group, [world.outsider.pk], by=world.admin)
        assert viewable(world) == [world.orders.pk]
        accounts.remove_group_members(group, [world.outsider.pk], by=world.admin)
        assert viewable(world) == []
        accounts.set_group_members(group, [world.outsider.pk], by=world.admin)
        assert viewable(world) == [world.orders.pk]
        accounts.delete_group(group, by=world.admin)
        assert viewable(world) == []


def test_outside_a_request_the_groups_are_read_every_time(world: World) -> None:
    # Commands and background tasks run for a long time: they must see today's groups.
    with CaptureQueriesContext(connection) as captured:
        viewable(world)
        viewable(world)
    assert group_reads(captured) == 2
