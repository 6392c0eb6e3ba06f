"""The service functions the pages added: each refuses whom it must, and answers what it says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from quell.accounts import queries as account_queries
from quell.accounts import services as accounts
from quell.accounts.models import DatasetRole, Responsibility, User, UserGroup
from quell.catalog import ingest as catalog_ingest
from quell.catalog import queries as catalog_queries
from quell.catalog.models import Dataset, Scan
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from quell.lib.errors import Forbidden, NotFound
from tests.conftest import T0, World

ADMIN_ONLY: list[tuple[str, Callable[[AdminWorld, Any], Any]]] = [
    ("deactivate a user", lambda w, by: accounts.set_user_active(w.viewer.pk, False, by=by)),
    ("change a global role", lambda w, by: accounts.set_global_role(w.viewer.pk, "admin", by=by)),
    ("create a group", lambda w, by: accounts.create_group(by=by, name="Mine")),
    ("rename a group", lambda w, by: accounts.rename_group(w.group.pk, "Mine", by=by)),
    ("delete a group", lambda w, by: accounts.delete_group(w.group.pk, by=by)),
    ("set a group's members", lambda w, by: accounts.set_group_members(w.group.pk, [by.pk], by=by)),
    (
        "change a role",
        lambda w, by: accounts.update_dataset_role(w.custom.pk, by=by, name="Mine", permissions=set()),
    ),
    ("delete a role", lambda w, by: accounts.delete_dataset_role(w.custom.pk, by=by)),
    ("open the settings", lambda w, by: account_queries.require_settings_access(by=by)),
]


@dataclass
class AdminWorld:
    """The world, with a group and a custom role for admins to manage."""

    world: World
    group: UserGroup
    custom: DatasetRole

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)


@pytest.fixture
def admin_world(world: World) -> AdminWorld:
    return AdminWorld(
        world,
        group=UserGroup.objects.create(name="Team"),
        custom=DatasetRole.objects.create(name="Triage", manage_incidents=True),
    )


@pytest.mark.parametrize(("what", "call"), ADMIN_ONLY, ids=[what for what, _ in ADMIN_ONLY])
@pytest.mark.parametrize("role", ["manager", "editor", "viewer", "outsider"])
def test_only_admins_may(
    admin_world: AdminWorld, role: str, what: str, call: Callable[[AdminWorld, Any], Any]
) -> None:
    with pytest.raises(Forbidden):
        call(admin_world, admin_world.user(role))

    assert UserGroup.objects.filter(name="Team").exists()
    assert DatasetRole.objects.filter(name="Triage", manage_incidents=True).exists()
    admin_world.viewer.refresh_from_db()
    assert admin_world.viewer.is_active
    assert not admin_world.viewer.is_admin


def test_a_deactivated_user_sees_nobody(world: World) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)
    world.viewer.refresh_from_db()

    assert not account_queries.list_people(by=world.viewer).exists()
    assert not account_queries.list_groups(by=world.viewer).exists()


def test_lead_candidates_of_a_private_dataset_are_those_who_can_manage_its_incidents(world: World) -> None:
    candidates = set(incident_queries.lead_candidates({world.orders.pk}, by=world.editor))

    assert candidates == {world.admin, world.manager, world.editor}


def test_lead_candidates_include_members_of_a_group_whose_role_manages_incidents(world: World) -> None:
    team = UserGroup.objects.create(name="Team")
    team.members.add(world.outsider)
    Responsibility.objects.create(dataset=world.orders, group=team, role=world.role("Editor"))

    assert world.outsider in incident_queries.lead_candidates({world.orders.pk}, by=world.editor)


def test_a_group_that_may_only_view_makes_none_of_its_members_a_candidate(world: World) -> None:
    team = UserGroup.objects.create(name="Team")
    team.members.add(world.outsider)
    Responsibility.objects.create(dataset=world.orders, group=team, role=world.role("Viewer"))

    assert world.outsider not in incident_queries.lead_candidates({world.orders.pk}, by=world.editor)


def test_a_role_without_view_dataset_makes_nobody_a_candidate(world: World) -> None:
    blind = DatasetRole.objects.create(name="Blind", view_dataset=False, manage_incidents=True)
    Responsibility.objects.create(dataset=world.orders, user=world.outsider, role=blind)

    assert world.outsider not in incident_queries.lead_candidates({world.orders.pk}, by=world.editor)


def test_nobody_is_a_candidate_through_everyones_viewer_role(world: World) -> None:
    candidates = set(incident_queries.lead_candidates({world.customers.pk}, by=world.editor))

    # The admin brought customers in (Manager there); everyone else may only view it.
    assert candidates == {world.admin}


def test_everyone_is_a_candidate_where_everyone_may_manage_incidents(world: World) -> None:
    Responsibility.objects.filter(dataset=world.customers, group__is_everyone=True).update(
        role=world.role("Editor")
    )

    candidates = set(incident_queries.lead_candidates({world.customers.pk}, by=world.editor))

    assert candidates == {world.admin, world.manager, world.editor, world.viewer, world.outsider}


def test_lead_candidates_reveal_nothing_about_a_dataset_the_caller_cannot_see(world: World) -> None:
    assert not incident_queries.lead_candidates({world.orders.pk}, by=world.outsider).exists()


def test_viewers_have_no_results_to_attach(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Empty", check_result_ids=[world.orders_fail.pk]
    )

    assert incident_queries.attachable_results(incident.pk, by=world.viewer) == []


def test_outsiders_cannot_ask_what_could_be_attached(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Empty", check_result_ids=[world.orders_fail.pk]
    )

    with pytest.raises(NotFound):
        incident_queries.attachable_results(incident.pk, by=world.outsider)


def test_changes_since_a_version_are_exactly_the_later_changes(world: World) -> None:
    incident = incidents.create_incident(
        by=world.editor, title="Empty", check_result_ids=[world.orders_fail.pk]
    )
    incidents.update_incident(incident.pk, by=world.editor, status="investigating")
    incidents.add_comment(incident.pk, "Hmm.", by=world.editor)
    incidents.update_incident(incident.pk, by=world.manager, severity="critical", lead_id=world.manager.pk)
    incidents.attach_check_results(incident.pk, [world.orders_warn.pk], by=world.manager)

    changes = incident_queries.changes_since(incident.pk, 2, by=world.viewer)

    assert [(e.kind, e.field) for e in changes] == [
        ("changed", "severity"),
        ("changed", "lead"),
        ("resultAttached", ""),
    ]
    assert incident_queries.changes_since(incident.pk, Incident.objects.get().version, by=world.viewer) == []


def test_revoking_a_key_twice_keeps_the_first_time(world: World) -> None:
    key = account_queries.list_api_keys(by=world.editor).get()
    first = accounts.revoke_api_key(key.pk, by=world.editor).revoked_at

    assert accounts.revoke_api_key(key.pk, by=world.editor).revoked_at == first


def test_a_deleted_role_must_not_be_everyones_default(world: World) -> None:
    role = DatasetRole.objects.create(name="Triage")
    accounts.update_organization(by=world.admin, default_dataset_role_id=role.pk)

    with pytest.raises(Exception, match="the role Everyone gets on new datasets"):
        accounts.delete_dataset_role(role.pk, by=world.admin)


def test_a_data_source_is_found_by_whoever_can_view_one_of_its_datasets(world: World) -> None:
    source = catalog_queries.get_data_source(world.orders.data_source_id, by=world.outsider)

    assert source.name == "warehouse"  # through the public customers dataset


def test_a_data_source_whose_datasets_are_all_hidden_is_not_found(world: World, vault: Dataset) -> None:
    assert catalog_queries.get_data_source(vault.data_source_id, by=world.viewer) == vault.data_source
    with pytest.raises(NotFound):
        catalog_queries.get_data_source(vault.data_source_id, by=world.outsider)


def test_a_deactivated_user_finds_no_data_source(world: World) -> None:
    accounts.set_user_active(world.viewer.pk, False, by=world.admin)
    world.viewer.refresh_from_db()

    with pytest.raises(NotFound):
        catalog_queries.get_data_source(world.orders.data_source_id, by=world.viewer)


def test_scan_details_count_only_the_results_the_caller_can_view(world: World) -> None:
    scan, _ = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="a"), "fail"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="b"), "excluded"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "customers", catalog_ingest.CheckInput(name="c"), "pass"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "customers", catalog_ingest.CheckInput(name="d"), "unevaluated"
                ),
            ],
        ),
        by=world.admin,
    )

    def details(user: User) -> tuple[list[str], list[int]]:
        row = catalog_queries.with_scan_details(Scan.objects.filter(pk=scan.pk), by=user).get()
        counts = [row.passes, row.warns, row.fails, row.excluded, row.unevaluated]  # type: ignore[attr-defined]
        return [ds.name for ds in row.visible_datasets], counts  # type: ignore[attr-defined]

    assert details(world.viewer) == (["customers", "orders"], [1, 0, 1, 1, 1])
    assert details(world.outsider) == (["customers"], [1, 0, 0, 0, 1])
