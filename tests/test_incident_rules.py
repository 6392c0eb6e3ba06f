"""Incident rules, as configured: their defaults, what each field refuses, their order, who may make
and change which rule (a dataset's configurer only rules of datasets they configure, admins any,
including rules of every dataset), and what each reader is shown. Applying them on ingest is
quell.automation's, tested with it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quell.accounts.models import User
from quell.accounts.services import system_user
from quell.catalog.models import Dataset
from quell.incidents import rule_queries, rules
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentRule
from quell.lib.errors import Forbidden, Invalid, NotFound, Unprocessable
from tests.conftest import ClientFor, World


def make(world: World, name: str = "Rule", **fields: Any) -> IncidentRule:
    """A rule made by the admin through the service."""
    return rules.create_rule(by=world.admin, name=name, **fields).rule


def stored() -> list[tuple[Any, ...]]:
    """Every rule as stored, with its datasets and data sources: what a refused write must leave."""
    return [
        (
            *IncidentRule.objects.filter(pk=rule.pk).values_list().get(),
            sorted(rule.datasets.values_list("pk", flat=True)),
            sorted(rule.data_sources.values_list("pk", flat=True)),
        )
        for rule in IncidentRule.objects.order_by("pk")
    ]


def order() -> list[str]:
    return list(IncidentRule.objects.order_by("position", "id").values_list("name", flat=True))


def positions() -> list[int]:
    return list(IncidentRule.objects.order_by("position", "id").values_list("position", flat=True))


# --- Defaults and what is stored --------------------------------------------------------------------


def test_a_rule_made_with_a_name_only_takes_the_issues_defaults(world: World) -> None:
    shown = rules.create_rule(by=world.admin, name="Every failure")

    rule = shown.rule
    assert rule.enabled is True
    assert rule.outcomes == ["fail"]
    assert rule.consecutive == 1
    assert rule.severity == "major"
    assert rule.title_template == "{check} failed on {dataset}"
    assert rule.lead is None
    assert rule.resolve_after_passes is None
    assert rule.reopen_within_days is None
    assert rule.check_attributes == {}
    assert rule.dataset_scoped is False
    assert rule.created_by == world.admin
    assert shown.position == 0
    assert shown.changeable is True


def test_a_rule_keeps_every_field_it_was_made_with(world: World) -> None:
    rule = make(
        world,
        "Orders",
        enabled=False,
        dataset_ids=[world.orders.pk],
        data_source_ids=[world.orders.data_source_id],
        check_attributes={"tier": "gold", "weight": 2, "critical": True},
        outcomes=["fail", "warn"],
        consecutive=3,
        severity="critical",
        lead_id=world.manager.pk,
        title_template="{check} on {dataSource}/{dataset}",
        resolve_after_passes=2,
        reopen_within_days=7,
    )

    rule.refresh_from_db()
    assert rule.enabled is False
    assert list(rule.datasets.all()) == [world.orders]
    assert rule.dataset_scoped is True
    assert [source.pk for source in rule.data_sources.all()] == [world.orders.data_source_id]
    assert rule.check_attributes == {"tier": "gold", "weight": 2, "critical": True}
    # Stored warn first whatever order they came in, so equal rules read alike.
    assert rule.outcomes == ["warn", "fail"]
    assert (rule.consecutive, rule.severity, rule.lead) == (3, "critical", world.manager)
    assert (rule.resolve_after_passes, rule.reopen_within_days) == (2, 7)


def test_a_name_and_title_template_are_stored_without_surrounding_spaces(world: World) -> None:
    rule = make(world, "  Orders  ", title_template="  {check} broke  ")

    assert (rule.name, rule.title_template) == ("Orders", "{check} broke")


# --- Validation: each refusal names its field and writes nothing -----------------------------------

REFUSALS: list[tuple[str, dict[str, Any], type[Exception], str, str]] = [
    ("no name", {"name": "   "}, Invalid, "name_required", "name"),
    ("a long name", {"name": "x" * 201}, Invalid, "too_long", "name"),
    ("a name of two lines", {"name": "a\nb"}, Invalid, "invisible_character", "name"),
    ("no outcomes", {"outcomes": []}, Invalid, "outcomes_required", "outcomes"),
    ("an unknown outcome", {"outcomes": ["pass"]}, Invalid, "invalid_outcomes", "outcomes"),
    ("an outcome twice", {"outcomes": ["fail", "fail"]}, Invalid, "invalid_outcomes", "outcomes"),
    ("no result in a row", {"consecutive": 0}, Invalid, "invalid_consecutive", "consecutive"),
    ("too many in a row", {"consecutive": 101}, Invalid, "invalid_consecutive", "consecutive"),
    ("an unknown severity", {"severity": "huge"}, Invalid, "invalid_severity", "severity"),
    ("a blank title template", {"title_template": " "}, Invalid, "title_template_required", "titleTemplate"),
    (
        "an unknown placeholder",
        {"title_template": "{table} broke"},
        Invalid,
        "invalid_title_template",
        "titleTemplate",
    ),
    ("an unclosed brace", {"title_template": "{check"}, Invalid, "invalid_title_template", "titleTemplate"),
    # A format spec would make the title fail to render when the rule acts.
    ("a format spec", {"title_template": "{check:d}"}, Invalid, "invalid_title_template", "titleTemplate"),
    ("no passes", {"resolve_after_passes": 0}, Invalid, "invalid_resolveAfterPasses", "resolveAfterPasses"),
    (
        "many passes",
        {"resolve_after_passes": 101},
        Invalid,
        "invalid_resolveAfterPasses",
        "resolveAfterPasses",
    ),
    ("no days", {"reopen_within_days": 0}, Invalid, "invalid_reopenWithinDays", "reopenWithinDays"),
    ("over a year", {"reopen_within_days": 366}, Invalid, "invalid_reopenWithinDays", "reopenWithinDays"),
    (
        "nested attributes",
        {"check_attributes": {"tier": {"level": 1}}},
        Invalid,
        "invalid_check_attributes",
        "checkAttributes",
    ),
    (
        "a list as an attribute",
        {"check_attributes": {"tags": ["a"]}},
        Invalid,
        "invalid_check_attributes",
        "checkAttributes",
    ),
    (
        "too many attributes",
        {"check_attributes": {f"a{n}": n for n in range(21)}},
        Invalid,
        "invalid_check_attributes",
        "checkAttributes",
    ),
    ("an unknown dataset", {"dataset_ids": [10**9]}, Unprocessable, "unknown_datasets", "datasetIds"),
    (
        "an unknown data source",
        {"data_source_ids": [10**9]},
        Unprocessable,
        "unknown_data_sources",
        "dataSourceIds",
    ),
    ("an unknown lead", {"lead_id": 10**9}, Unprocessable, "unknown_lead", "leadId"),
]


@pytest.mark.parametrize(
    ("fields", "error", "code", "field"),
    [pytest.param(*refusal[1:], id=refusal[0]) for refusal in REFUSALS],
)
def test_making_a_rule_refuses_a_bad_field_by_name_and_makes_nothing(
    world: World, fields: dict[str, Any], error: type[Exception], code: str, field: str
) -> None:
    make(world, "Existing")
    before = stored()

    with pytest.raises(error) as refused:
        rules.create_rule(by=world.admin, **({"name": "New"} | fields))

    assert isinstance(refused.value, Invalid)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert stored() == before


@pytest.mark.parametrize(
    ("fields", "error", "code", "field"),
    [pytest.param(*refusal[1:], id=refusal[0]) for refusal in REFUSALS],
)
def test_changing_a_rule_refuses_a_bad_field_by_name_and_changes_nothing(
    world: World, fields: dict[str, Any], error: type[Exception], code: str, field: str
) -> None:
    rule = make(world, "Existing", dataset_ids=[world.orders.pk])
    make(world, "Another")
    before = stored()

    with pytest.raises(error) as refused:
        rules.update_rule(rule.pk, by=world.admin, position=1, **fields)

    assert isinstance(refused.value, Invalid)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert stored() == before


def test_the_lead_of_a_rule_of_datasets_must_manage_incidents_on_each(world: World) -> None:
    # The viewer sees orders but may not manage its incidents.
    with pytest.raises(Unprocessable) as refused:
        make(world, dataset_ids=[world.orders.pk], lead_id=world.viewer.pk)

    assert (refused.value.code, refused.value.field) == ("lead_cannot_manage", "leadId")
    assert "warehouse/orders" in refused.value.message
    assert not IncidentRule.objects.exists()


def test_the_lead_of_a_rule_of_two_datasets_must_manage_both(world: World) -> None:
    # The manager manages orders' incidents; on customers everyone is a viewer.
    with pytest.raises(Unprocessable) as refused:
        make(world, dataset_ids=[world.orders.pk, world.customers.pk], lead_id=world.manager.pk)

    assert refused.value.code == "lead_cannot_manage"
    assert "warehouse/customers" in refused.value.message
    assert "warehouse/orders" not in refused.value.message


def test_any_active_person_may_lead_a_rule_of_every_dataset(world: World) -> None:
    rule = make(world, lead_id=world.viewer.pk)

    assert rule.lead == world.viewer


@pytest.mark.parametrize("who", ["deactivated", "system"])
def test_a_deactivated_user_or_quell_itself_cannot_lead_a_rule(world: World, who: str) -> None:
    if who == "deactivated":
        User.objects.filter(pk=world.manager.pk).update(is_active=False)
        lead_id = world.manager.pk
    else:
        lead_id = system_user().pk

    with pytest.raises(Unprocessable) as refused:
        make(world, lead_id=lead_id)

    assert refused.value.code == "unknown_lead"


def test_changing_the_datasets_checks_the_lead_kept_against_them(world: World) -> None:
    rule = make(world, dataset_ids=[world.orders.pk], lead_id=world.manager.pk)

    with pytest.raises(Unprocessable) as refused:
        rules.update_rule(rule.pk, by=world.admin, dataset_ids=[world.customers.pk])

    assert refused.value.code == "lead_cannot_manage"
    assert list(IncidentRule.objects.get(pk=rule.pk).datasets.all()) == [world.orders]


def test_null_clears_the_lead_recovery_and_recurrence_and_leaves_the_rest(world: World) -> None:
    rule = make(
        world, lead_id=world.manager.pk, resolve_after_passes=2, reopen_within_days=3, severity="minor"
    )

    rules.update_rule(
        rule.pk,
        by=world.admin,
        lead_id=None,
        resolve_after_passes=None,
        reopen_within_days=None,
        severity=None,
    )

    rule.refresh_from_db()
    assert (rule.lead, rule.resolve_after_passes, rule.reopen_within_days) == (None, None, None)
    assert rule.severity == "minor"


# --- Order ------------------------------------------------------------------------------------------


def test_new_rules_go_last(world: World) -> None:
    for name in ("First", "Second", "Third"):
        make(world, name)

    assert order() == ["First", "Second", "Third"]
    assert positions() == [0, 1, 2]


def test_moving_a_rule_puts_it_at_that_index_and_renumbers_the_rest(world: World) -> None:
    *_, third = (make(world, name) for name in ("First", "Second", "Third"))

    moved = rules.move_rule(third.pk, 0, by=world.admin)

    assert moved.position == 0
    assert order() == ["Third", "First", "Second"]
    assert positions() == [0, 1, 2]

    rules.update_rule(third.pk, by=world.admin, position=1)
    assert order() == ["First", "Third", "Second"]


def test_a_position_past_the_last_rule_moves_it_last(world: World) -> None:
    first, _, _ = (make(world, name) for name in ("First", "Second", "Third"))

    rules.update_rule(first.pk, by=world.admin, position=99)

    assert order() == ["Second", "Third", "First"]
    assert positions() == [0, 1, 2]


def test_deleting_a_rule_moves_those_after_it_up(world: World) -> None:
    _, second, _ = (make(world, name) for name in ("First", "Second", "Third"))

    rules.delete_rule(second.pk, by=world.admin)

    assert order() == ["First", "Third"]
    assert positions() == [0, 1]


def test_rules_stored_with_gaps_or_ties_in_their_positions_move_by_their_order(world: World) -> None:
    # Rules written by other means (a restore, the demo) may hold any positions: order by position, id.
    names = ("A", "B", "C")
    made = [IncidentRule.objects.create(name=name, position=5) for name in names]

    shown = rule_queries.list_rules(by=world.admin)
    assert [(s.rule.name, s.position) for s in shown] == [("A", 0), ("B", 1), ("C", 2)]

    rules.move_rule(made[2].pk, 1, by=world.admin)
    assert order() == ["A", "C", "B"]
    assert positions() == [0, 1, 2]


def test_the_engine_gets_the_enabled_rules_in_order_with_everything_it_matches_on_at_hand(
    world: World,
) -> None:
    make(world, "Off", enabled=False)
    make(world, "Orders", dataset_ids=[world.orders.pk], data_source_ids=[world.orders.data_source_id])
    make(world, "Everything", lead_id=world.manager.pk)

    found = rule_queries.enabled_rules()

    with CaptureQueriesContext(connection) as captured:
        seen = [
            (
                enabled.rule.name,
                sorted(enabled.dataset_ids),
                sorted(enabled.data_source_ids),
                enabled.rule.lead,
            )
            for enabled in found
        ]
    assert seen == [
        ("Orders", [world.orders.pk], [world.orders.data_source_id], None),
        ("Everything", [], [], world.manager),
    ]
    assert captured.captured_queries == []


# --- Who may make and change which rule -----------------------------------------------------------


def test_a_configurer_of_orders_makes_a_rule_for_orders(world: World) -> None:
    shown = rules.create_rule(by=world.editor, name="Orders", dataset_ids=[world.orders.pk])

    assert [d.pk for d in shown.datasets] == [world.orders.pk]
    assert shown.changeable is True


def test_a_configurer_of_orders_cannot_make_a_rule_that_reaches_customers_too(world: World) -> None:
    with pytest.raises(Forbidden) as refused:
        rules.create_rule(by=world.editor, name="Both", dataset_ids=[world.orders.pk, world.customers.pk])

    assert "Configure dataset" in refused.value.message
    assert "warehouse/customers" in refused.value.message
    assert not IncidentRule.objects.exists()


def test_a_configurer_cannot_make_a_rule_of_every_dataset(world: World) -> None:
    with pytest.raises(Forbidden) as refused:
        rules.create_rule(by=world.manager, name="Everything")

    assert "Only an admin" in refused.value.message
    assert not IncidentRule.objects.exists()


def test_a_viewer_cannot_make_a_rule_for_the_dataset_they_view(world: World) -> None:
    with pytest.raises(Forbidden):
        rules.create_rule(by=world.viewer, name="Orders", dataset_ids=[world.orders.pk])

    assert not IncidentRule.objects.exists()


def test_a_dataset_hidden_from_the_caller_is_as_unknown_as_a_missing_one(world: World) -> None:
    with pytest.raises(Unprocessable) as refused:
        rules.create_rule(by=world.outsider, name="Orders", dataset_ids=[world.orders.pk])

    assert refused.value.code == "unknown_datasets"


def test_a_configurer_cannot_widen_their_rule_to_another_dataset_or_to_every_dataset(world: World) -> None:
    rule = rules.create_rule(by=world.editor, name="Orders", dataset_ids=[world.orders.pk]).rule
    before = stored()

    with pytest.raises(Forbidden):
        rules.update_rule(rule.pk, by=world.editor, dataset_ids=[world.orders.pk, world.customers.pk])
    with pytest.raises(Forbidden):
        rules.update_rule(rule.pk, by=world.editor, dataset_ids=[])

    assert stored() == before


@pytest.mark.parametrize("reach", ["every dataset", "orders and customers"])
def test_a_configurer_may_not_change_move_or_delete_a_rule_reaching_beyond_their_datasets(
    world: World, reach: str
) -> None:
    dataset_ids = [] if reach == "every dataset" else [world.orders.pk, world.customers.pk]
    rule = make(world, "Admin's", dataset_ids=dataset_ids)
    before = stored()

    with pytest.raises(Forbidden):
        rules.update_rule(rule.pk, by=world.editor, name="Mine now")
    with pytest.raises(Forbidden):
        rules.move_rule(rule.pk, 0, by=world.editor)
    with pytest.raises(Forbidden):
        rules.delete_rule(rule.pk, by=world.editor)

    assert stored() == before


def test_a_configurer_changes_moves_and_deletes_a_rule_of_their_datasets_made_by_an_admin(
    world: World,
) -> None:
    make(world, "First")
    rule = make(world, "Orders", dataset_ids=[world.orders.pk])

    rules.update_rule(rule.pk, by=world.manager, name="Orders, nightly", consecutive=2)
    rules.move_rule(rule.pk, 0, by=world.manager)
    assert order() == ["Orders, nightly", "First"]

    rules.delete_rule(rule.pk, by=world.manager)
    assert order() == ["First"]


def test_an_admin_makes_any_rule(world: World) -> None:
    rules.create_rule(by=world.admin, name="Everything")
    rules.create_rule(by=world.admin, name="Both", dataset_ids=[world.orders.pk, world.customers.pk])

    assert order() == ["Everything", "Both"]


def test_a_rule_whose_datasets_were_all_deleted_matches_nothing_and_only_admins_see_it(world: World) -> None:
    rule = rules.create_rule(by=world.editor, name="Orders", dataset_ids=[world.orders.pk]).rule

    Dataset.objects.filter(pk=world.orders.pk).delete()

    rule.refresh_from_db()
    # Still a rule of datasets (none left): not a rule of every dataset.
    assert rule.dataset_scoped is True
    assert rule_queries.list_rules(by=world.editor) == []
    assert [s.rule.pk for s in rule_queries.list_rules(by=world.admin)] == [rule.pk]
    with pytest.raises(NotFound):
        rules.update_rule(rule.pk, by=world.editor, name="Renamed")


# --- Reading ----------------------------------------------------------------------------------------


def test_each_reader_sees_the_rules_of_every_dataset_and_of_the_datasets_they_view(world: World) -> None:
    make(world, "Everything")
    make(world, "Orders", dataset_ids=[world.orders.pk])
    make(world, "Customers", dataset_ids=[world.customers.pk])

    def names(user: User) -> list[str]:
        return [shown.rule.name for shown in rule_queries.list_rules(by=user)]

    assert names(world.admin) == ["Everything", "Orders", "Customers"]
    assert names(world.viewer) == ["Everything", "Orders", "Customers"]
    assert names(world.outsider) == ["Everything", "Customers"]


def test_a_reader_sees_only_the_datasets_of_a_rule_they_can_view(world: World) -> None:
    rule = make(world, "Both", dataset_ids=[world.orders.pk, world.customers.pk])

    outsider = rule_queries.get_rule(rule.pk, by=world.outsider)
    viewer = rule_queries.get_rule(rule.pk, by=world.viewer)

    assert [d.pk for d in outsider.datasets] == [world.customers.pk]
    assert {d.pk for d in viewer.datasets} == {world.orders.pk, world.customers.pk}
    assert outsider.changeable is viewer.changeable is False


def test_a_rule_of_datasets_hidden_from_the_reader_does_not_exist_for_them(world: World) -> None:
    rule = make(world, "Orders", dataset_ids=[world.orders.pk])

    with pytest.raises(NotFound):
        rule_queries.get_rule(rule.pk, by=world.outsider)
    with pytest.raises(NotFound):
        rules.delete_rule(rule.pk, by=world.outsider)
    assert IncidentRule.objects.filter(pk=rule.pk).exists()


def test_the_open_incident_count_counts_the_rules_open_incidents_the_reader_can_see(world: World) -> None:
    rule = make(world, "Both", dataset_ids=[world.orders.pk, world.customers.pk])
    quell = system_user()
    on_orders = incidents.create_incident(
        by=quell, title="Orders", check_result_ids=[world.orders_fail.pk], rule=rule
    )
    incidents.create_incident(
        by=quell, title="Customers", check_result_ids=[world.customers_fail.pk], rule=rule
    )
    resolved = incidents.create_incident(
        by=quell, title="Old", check_result_ids=[world.orders_warn.pk], rule=rule
    )
    incidents.update_incident(resolved.pk, by=quell, status="resolved", resolution_notes="Passed.")

    assert rule_queries.get_rule(rule.pk, by=world.admin).open_incidents == 2
    assert rule_queries.get_rule(rule.pk, by=world.outsider).open_incidents == 1
    assert on_orders.rule == rule


def test_deleting_a_rule_keeps_its_incidents_as_opened_by_no_rule(world: World) -> None:
    rule = make(world, "Orders", dataset_ids=[world.orders.pk])
    incident = incidents.create_incident(
        by=system_user(), title="Orders", check_result_ids=[world.orders_fail.pk], rule=rule
    )

    rules.delete_rule(rule.pk, by=world.admin)

    assert Incident.objects.get(pk=incident.pk).rule is None


# --- The API ----------------------------------------------------------------------------------------


def test_the_api_makes_a_rule_with_the_defaults_and_answers_it_in_camel_case(
    client_for: ClientFor, world: World
) -> None:
    response = client_for("admin").post("/incidentRules", json={"name": "Every failure"})

    assert response.status_code == 201, response.text
    body = response.json()
    rule = IncidentRule.objects.get()
    assert body == {
        "id": rule.pk,
        "name": "Every failure",
        "enabled": True,
        "position": 0,
        "datasetIds": [],
        "dataSourceIds": [],
        "checkAttributes": {},
        "outcomes": ["fail"],
        "consecutive": 1,
        "severity": "major",
        "leadId": None,
        "lead": None,
        "titleTemplate": "{check} failed on {dataset}",
        "resolveAfterPasses": None,
        "reopenWithinDays": None,
        "createdBy": {"id": world.admin.pk, "email": world.admin.email, "name": world.admin.name},
        "createdAt": body["createdAt"],
        "updatedAt": body["updatedAt"],
        "openIncidentCount": 0,
    }


def test_the_api_lists_gets_changes_moves_and_deletes_rules(client_for: ClientFor, world: World) -> None:
    editor = client_for("editor")
    first = editor.post("/incidentRules", json={"name": "First", "datasetIds": [world.orders.pk]}).json()
    second = editor.post(
        "/incidentRules",
        json={
            "name": "Second",
            "datasetIds": [world.orders.pk],
            "checkAttributes": {"tier": "gold", "weight": 1.5, "pii": False},
            "outcomes": ["warn", "fail"],
            "leadId": world.manager.pk,
        },
    ).json()

    changed = editor.patch(
        f"/incidentRules/{second['id']}", json={"position": 0, "severity": "critical", "leadId": None}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["position"], changed.json()["severity"], changed.json()["lead"]) == (
        0,
        "critical",
        None,
    )
    assert changed.json()["checkAttributes"] == {"tier": "gold", "weight": 1.5, "pii": False}

    listed = editor.get("/incidentRules").json()
    assert [(rule["name"], rule["position"]) for rule in listed] == [("Second", 0), ("First", 1)]
    assert editor.get(f"/incidentRules/{first['id']}").json()["position"] == 1

    deleted = editor.delete(f"/incidentRules/{second['id']}")
    assert deleted.status_code == 204
    assert editor.get(f"/incidentRules/{second['id']}").status_code == 404
    assert [rule["position"] for rule in editor.get("/incidentRules").json()] == [0]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_request"),
        ({"name": " "}, "name_required"),
        ({"name": "x", "outcomes": []}, "invalid_request"),
        ({"name": "x", "outcomes": ["fail", "fail"]}, "invalid_outcomes"),
        ({"name": "x", "consecutive": 0}, "invalid_request"),
        ({"name": "x", "severity": "huge"}, "invalid_request"),
        ({"name": "x", "titleTemplate": "{table}"}, "invalid_title_template"),
        ({"name": "x", "checkAttributes": {"a": [1]}}, "invalid_request"),
        ({"name": "x", "checkAttributes": {f"a{n}": n for n in range(21)}}, "invalid_check_attributes"),
        ({"name": "x", "datasetIds": [10**9]}, "unknown_datasets"),
        ({"name": "x", "leadId": 10**9}, "unknown_lead"),
        ({"name": "x", "resolveAfterPasses": 0}, "invalid_request"),
        ({"name": "x", "reopenWithinDays": 400}, "invalid_request"),
    ],
)
def test_the_api_refuses_a_bad_rule_with_a_400_and_makes_nothing(
    client_for: ClientFor, world: World, body: dict[str, Any], code: str
) -> None:
    response = client_for("admin").post("/incidentRules", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert not IncidentRule.objects.exists()


def test_the_api_refuses_a_configurer_a_rule_that_reaches_another_dataset_with_a_403(
    client_for: ClientFor, world: World
) -> None:
    response = client_for("editor").post(
        "/incidentRules", json={"name": "Both", "datasetIds": [world.orders.pk, world.customers.pk]}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "warehouse/customers" in response.json()["message"]
    assert not IncidentRule.objects.exists()


def test_the_api_shows_an_outsider_only_the_datasets_of_a_rule_they_can_view(
    client_for: ClientFor, world: World
) -> None:
    rule = make(world, "Both", dataset_ids=[world.orders.pk, world.customers.pk])
    make(world, "Orders", dataset_ids=[world.orders.pk])

    listed = client_for("outsider").get("/incidentRules").json()

    assert [(r["id"], r["datasetIds"]) for r in listed] == [(rule.pk, [world.customers.pk])]


@pytest.mark.parametrize("who", ["anonymous", "badkey"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/incidentRules"), ("POST", "/incidentRules"), ("DELETE", "/incidentRules/1")],
)
def test_the_api_asks_an_unauthenticated_caller_to_authenticate(
    client_for: ClientFor, world: World, who: str, method: str, path: str
) -> None:
    make(world)

    response: httpx.Response = client_for(who).request(method, path, json={"name": "x"})

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert IncidentRule.objects.count() == 1
