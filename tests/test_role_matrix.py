"""Every operation of the API, called by every kind of caller, answers the status the permission model gives.

The expectations follow quell/accounts/permissions.py and docs/permissions.md:
- admin holds every permission everywhere; users, roles and organisation settings are for admins only;
- on the private dataset `orders`, manager holds Manager, editor holds Editor and viewer holds Viewer (read only);
  the outsider holds nothing, so to them its dataset, checks, results and incidents do not exist (404);
- on `customers` everyone holds Viewer, so everyone but the admin may read it and not change it (403);
- a bad key or no key at all is 401 with `{"code": "unauthorized", ...}`.

A refused write leaves the database exactly as it was. The second half checks that lists and incidents never
show an outsider anything of `orders`, even when an incident spans `orders` and `customers`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from quell.accounts.models import DatasetRole, Organization, Responsibility, User
from quell.catalog import services as catalog
from quell.catalog.models import (
    Check,
    CheckAttributeDefinition,
    CheckResult,
    Dataset,
    DataSource,
    Scan,
)
from quell.incidents import mute_services
from quell.incidents import rules as incident_rules
from quell.incidents import services as incidents
from quell.incidents.models import (
    Incident,
    IncidentCheckResult,
    IncidentDataset,
    IncidentRule,
    Mute,
    TimelineEvent,
)
from quell.integrations import services as integration_services
from quell.integrations.models import Delivery, Event, Integration
from tests.conftest import ClientFor, World

USERS = ("admin", "manager", "editor", "viewer", "outsider")
UNAUTHENTICATED = ("badkey", "anonymous")
ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


@dataclass(frozen=True)
class Targets:
    """The ids that requests name; made afresh for every test."""

    orders: int
    customers: int
    orders_check: int
    customers_check: int
    orders_incident: int  # from orders results only
    customers_incident: int  # from the customers result only
    spanning_incident: int  # from an orders result and the customers result
    unlinked_orders_result: int  # a failing orders result in no incident yet
    orders_incident_result: int  # the failing orders result in orders_incident
    customers_result: int
    manager: int
    editor: int
    viewer: int
    outsider: int
    manager_role: int
    editor_role: int
    viewer_role: int
    admin_role: int
    everyone: int
    # Added for the ingest endpoints (scans, failed rows, check attributes).
    orders_scan: int = 0
    attribute: int = 0
    # Added for the integrations endpoints.
    integration: int = 0
    delivery: int = 0
    # Added for the incident rules: one of orders (the manager's and editor's to change), one of
    # every dataset and one of orders and customers (both an admin's alone).
    orders_rule: int = 0
    everywhere_rule: int = 0
    spanning_rule: int = 0


Body = Callable[[Targets], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str  # formatted with the fields of Targets
    body: Body | None
    # The statuses for admin, manager, editor, viewer and outsider; a bad key and no key always get 401.
    statuses: tuple[int, int, int, int, int]
    # Callers whose 200 changes nothing: a bulk write that answers which items it refused, and why.
    refused_inside: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def expected(self) -> dict[str, int]:
        return dict(zip(USERS, self.statuses, strict=True)) | dict.fromkeys(UNAUTHENTICATED, 401)


def scan_of(dataset: str, check: str = "row_count > 0") -> Body:
    def body(t: Targets) -> dict[str, Any]:
        return {
            "dataTimestamp": "2026-11-02T06:00:00Z",
            "results": [
                {"dataSource": "warehouse", "dataset": dataset, "check": {"name": check}, "outcome": "fail"}
            ],
        }

    return body


def responsibilities_granting_the_outsider_admin(t: Targets) -> dict[str, Any]:
    return {
        "responsibilities": [
            {"type": "user", "userId": t.manager, "roleId": t.manager_role},
            {"type": "user", "userId": t.editor, "roleId": t.editor_role},
            {"type": "user", "userId": t.viewer, "roleId": t.viewer_role},
            {"type": "user", "userId": t.outsider, "roleId": t.admin_role},
        ]
    }


def everyone_as_editor(t: Targets) -> dict[str, Any]:
    return {"responsibilities": [{"type": "userGroup", "userGroupId": t.everyone, "roleId": t.editor_role}]}


# Statuses in the order admin, manager, editor, viewer, outsider.
ALL_200 = (200, 200, 200, 200, 200)
ADMIN_ONLY = (200, 403, 403, 403, 403)
READ_ORDERS = (200, 200, 200, 200, 404)
CHANGE_ORDERS_INCIDENT = (200, 200, 200, 403, 404)

# Each call: a name, the method, the path (formatted with Targets), the body, and the statuses as above.
CALLS = [
    Call("GET test-login", "GET", "/test-login", None, ALL_200),
    Call("GET users", "GET", "/users", None, ADMIN_ONLY),
    Call(
        "POST users", "POST", "/users", lambda t: {"email": "newcomer@example.com"}, (201, 403, 403, 403, 403)
    ),
    # Everyone may change their own password (the current one is required, so a key alone is not enough).
    Call(
        "POST own password",
        "POST",
        "/users/me/password",
        lambda t: {"currentPassword": "pw-for-tests", "newPassword": "a fresh and long passphrase"},
        (204, 204, 204, 204, 204),
    ),
    Call("GET organization", "GET", "/organization", None, ALL_200),
    Call("PUT organization", "PUT", "/organization", lambda t: {"name": "Renamed"}, ADMIN_ONLY),
    Call("GET retention", "GET", "/organization/retention", None, ALL_200),
    Call("PUT retention", "PUT", "/organization/retention", lambda t: {"scansDays": 7}, ADMIN_ONLY),
    Call("GET dataset roles", "GET", "/datasets/roles", None, ALL_200),
    Call("GET datasets", "GET", "/datasets", None, ALL_200),
    Call("GET orders", "GET", "/datasets/{orders}", None, READ_ORDERS),
    Call("GET customers", "GET", "/datasets/{customers}", None, ALL_200),
    Call(
        "GET orders responsibilities",
        "GET",
        "/datasets/{orders}/responsibilities",
        None,
        (200, 200, 403, 403, 404),
    ),
    Call("GET customers responsibilities", "GET", "/datasets/{customers}/responsibilities", None, ADMIN_ONLY),
    Call(
        "POST orders responsibilities",
        "POST",
        "/datasets/{orders}/responsibilities",
        responsibilities_granting_the_outsider_admin,
        (200, 200, 403, 403, 404),
    ),
    Call(
        "POST customers responsibilities",
        "POST",
        "/datasets/{customers}/responsibilities",
        everyone_as_editor,
        ADMIN_ONLY,
    ),
    Call("GET checks", "GET", "/checks", None, ALL_200),
    Call("GET an orders check", "GET", "/checks/{orders_check}", None, READ_ORDERS),
    Call("GET a customers check", "GET", "/checks/{customers_check}", None, ALL_200),
    Call("GET an orders check's results", "GET", "/checks/{orders_check}/results", None, READ_ORDERS),
    Call("GET a customers check's results", "GET", "/checks/{customers_check}/results", None, ALL_200),
    # Results are pushed by dataset name, not id: refusing an outsider is 403, as the name is theirs.
    Call(
        "POST checkResults to orders", "POST", "/checkResults", scan_of("orders"), (201, 201, 201, 403, 403)
    ),
    Call(
        "POST checkResults to customers",
        "POST",
        "/checkResults",
        scan_of("customers", "row_count > 10"),
        (201, 403, 403, 403, 403),
    ),
    # Users may create datasets by pushing results unless an admin turns that off, but not in a data
    # source holding a dataset hidden from them where they push to none: orders is the outsider's.
    Call(
        "POST checkResults to a new dataset",
        "POST",
        "/checkResults",
        scan_of("invoices"),
        (201, 201, 201, 201, 403),
    ),
    Call("GET incidents", "GET", "/incidents", None, ALL_200),
    # An orders result id is as unknown to the outsider as an id that does not exist: 400.
    Call(
        "POST incidents from an orders result",
        "POST",
        "/incidents",
        lambda t: {"title": "Late orders", "checkResultIds": [t.unlinked_orders_result]},
        (201, 201, 201, 403, 400),
    ),
    # The customers result is in two open incidents: a separate one needs allowDuplicate.
    Call(
        "POST incidents from a customers result",
        "POST",
        "/incidents",
        lambda t: {"title": "Few customers", "checkResultIds": [t.customers_result], "allowDuplicate": True},
        (201, 403, 403, 403, 403),
    ),
    # Results already in an open incident: the permission answer first (403, or 400 for a result
    # the caller cannot see), the duplicate guard's 409 only for those who may create.
    Call(
        "POST incidents from an orders result in an open incident",
        "POST",
        "/incidents",
        lambda t: {"title": "Late orders", "checkResultIds": [t.orders_incident_result]},
        (409, 409, 409, 403, 400),
    ),
    Call(
        "POST incidents from a customers result in an open incident",
        "POST",
        "/incidents",
        lambda t: {"title": "Few customers", "checkResultIds": [t.customers_result]},
        (409, 403, 403, 403, 403),
    ),
    Call("GET an orders incident", "GET", "/incidents/{orders_incident}", None, READ_ORDERS),
    Call("GET a customers incident", "GET", "/incidents/{customers_incident}", None, ALL_200),
    Call("GET a spanning incident", "GET", "/incidents/{spanning_incident}", None, ALL_200),
    Call(
        "POST an orders incident",
        "POST",
        "/incidents/{orders_incident}",
        lambda t: {"status": "investigating"},
        CHANGE_ORDERS_INCIDENT,
    ),
    Call(
        "PATCH an orders incident",
        "PATCH",
        "/incidents/{orders_incident}",
        lambda t: {"severity": "critical"},
        CHANGE_ORDERS_INCIDENT,
    ),
    Call(
        "POST a customers incident",
        "POST",
        "/incidents/{customers_incident}",
        lambda t: {"status": "investigating"},
        ADMIN_ONLY,
    ),
    Call(
        "PATCH a customers incident",
        "PATCH",
        "/incidents/{customers_incident}",
        lambda t: {"title": "Renamed"},
        ADMIN_ONLY,
    ),
    # Resolving with a reason needs Manage incidents, as any change does.
    Call(
        "PATCH an orders incident to resolve it, with a reason",
        "PATCH",
        "/incidents/{orders_incident}",
        lambda t: {"status": "resolved", "resolutionNotes": "Planned.", "resolutionReason": "expected"},
        CHANGE_ORDERS_INCIDENT,
    ),
    Call(
        "POST a customers incident to resolve it, with a reason",
        "POST",
        "/incidents/{customers_incident}",
        lambda t: {
            "status": "resolved",
            "resolutionNotes": "A test row.",
            "resolutionReason": "falsePositive",
        },
        ADMIN_ONLY,
    ),
    # Manage incidents on one of its datasets (orders) is enough to change a spanning incident.
    Call(
        "PATCH a spanning incident",
        "PATCH",
        "/incidents/{spanning_incident}",
        lambda t: {"status": "fixing"},
        (200, 200, 200, 403, 403),
    ),
    Call(
        "POST an orders incident's checkResults",
        "POST",
        "/incidents/{orders_incident}/checkResults",
        lambda t: {"checkResultIds": [t.unlinked_orders_result]},
        CHANGE_ORDERS_INCIDENT,
    ),
    Call(
        "POST a spanning incident's checkResults",
        "POST",
        "/incidents/{spanning_incident}/checkResults",
        lambda t: {"checkResultIds": [t.unlinked_orders_result]},
        (200, 200, 200, 403, 403),
    ),
    Call(
        "GET an orders incident's timeline", "GET", "/incidents/{orders_incident}/timeline", None, READ_ORDERS
    ),
    Call(
        "GET a spanning incident's timeline", "GET", "/incidents/{spanning_incident}/timeline", None, ALL_200
    ),
    Call(
        "POST an orders incident's comments",
        "POST",
        "/incidents/{orders_incident}/comments",
        lambda t: {"text": "Looking into it."},
        (201, 201, 201, 403, 404),
    ),
    Call(
        "POST a customers incident's comments",
        "POST",
        "/incidents/{customers_incident}/comments",
        lambda t: {"text": "Looking into it."},
        (201, 403, 403, 403, 403),
    ),
]


# Merging needs Manage incidents on the incident merged into and on every one merged (all or nothing);
# a bulk change answers 200 and lists the incidents it refused, changing the others.
CALLS += [
    Call(
        "POST a merge of a spanning incident into an orders incident",
        "POST",
        "/incidents/{orders_incident}/merge",
        lambda t: {"incidentIds": [t.spanning_incident]},
        CHANGE_ORDERS_INCIDENT,
    ),
    Call(
        "POST a merge of a customers incident into an orders incident",
        "POST",
        "/incidents/{orders_incident}/merge",
        lambda t: {"incidentIds": [t.customers_incident]},
        (200, 403, 403, 403, 404),
    ),
    Call(
        "POST a merge of an orders incident into a customers incident",
        "POST",
        "/incidents/{customers_incident}/merge",
        lambda t: {"incidentIds": [t.orders_incident]},
        (200, 403, 403, 403, 404),
    ),
    Call(
        "POST a bulk change of an orders and a customers incident",
        "POST",
        "/incidents/bulk",
        lambda t: {"incidentIds": [t.orders_incident, t.customers_incident], "status": "investigating"},
        ALL_200,
        refused_inside=("viewer", "outsider"),
    ),
]


def _fixture(path: str) -> Any:
    return json.loads((Path(__file__).parent / "ingest" / "fixtures" / path).read_text())


def soda_results_for_orders(t: Targets) -> dict[str, Any]:
    body = dict(_fixture("soda/soda-core-3.5.6-upload.json")["sodaCoreInsertScanResults"]["body"])
    body["checks"] = [{**check, "dataSource": "warehouse"} for check in body["checks"]]
    return {"results": {k: v for k, v in body.items() if k not in {"type", "token"}}}


def gx_result_for_orders(t: Targets) -> dict[str, Any]:
    expectation = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}
    return {
        "result": {
            "results": [{"success": False, "expectation_config": expectation}],
            "meta": {
                "active_batch_definition": {"datasource_name": "warehouse", "data_asset_name": "orders"}
            },
        }
    }


def dbt_artifacts(t: Targets) -> dict[str, Any]:
    return {"runResults": _fixture("dbt/run_results.json"), "manifest": _fixture("dbt/manifest.json")}


PUSH_TO_ORDERS = (201, 201, 201, 403, 403)

CALLS += [
    Call("GET scans", "GET", "/scans", None, ALL_200),
    Call("GET an orders scan", "GET", "/scans/{orders_scan}", None, READ_ORDERS),
    Call("GET an orders scan's results", "GET", "/scans/{orders_scan}/results", None, READ_ORDERS),
    Call("GET an orders scan's logs", "GET", "/scans/{orders_scan}/logs", None, READ_ORDERS),
    Call(
        "GET an orders result's failed rows",
        "GET",
        "/checkResults/{unlinked_orders_result}/failedRows",
        None,
        READ_ORDERS,
    ),
    Call("GET orders contract", "GET", "/datasets/{orders}/contract", None, READ_ORDERS),
    Call("GET check attributes", "GET", "/checkAttributes", None, ALL_200),
    Call(
        "POST check attributes",
        "POST",
        "/checkAttributes",
        lambda t: {"name": "domain", "type": "text"},
        (201, 403, 403, 403, 403),
    ),
    Call(
        "DELETE a check attribute", "DELETE", "/checkAttributes/{attribute}", None, (204, 403, 403, 403, 403)
    ),
    Call("GET failed rows settings", "GET", "/organization/failedRows", None, ALL_200),
    Call(
        "POST failed rows settings",
        "POST",
        "/organization/failedRows",
        lambda t: {"collectFailedRows": False},
        ADMIN_ONLY,
    ),
    Call("POST a soda import to orders", "POST", "/imports/soda", soda_results_for_orders, PUSH_TO_ORDERS),
    Call(
        "POST a GX import to orders",
        "POST",
        "/imports/greatExpectations",
        gx_result_for_orders,
        PUSH_TO_ORDERS,
    ),
    Call(
        "POST a dbt import of new datasets", "POST", "/imports/dbt", dbt_artifacts, (201, 201, 201, 201, 201)
    ),
]

ADMIN_CREATES = (201, 403, 403, 403, 403)
ADMIN_QUEUES = (202, 403, 403, 403, 403)

CALLS += [
    Call("GET integrations", "GET", "/integrations", None, ADMIN_ONLY),
    Call(
        "POST integrations",
        "POST",
        "/integrations",
        lambda t: {"name": "Pager", "kind": "webhook", "url": "https://example.com/pager"},
        ADMIN_CREATES,
    ),
    Call("GET an integration", "GET", "/integrations/{integration}", None, ADMIN_ONLY),
    Call(
        "PATCH an integration",
        "PATCH",
        "/integrations/{integration}",
        lambda t: {"name": "Renamed"},
        ADMIN_ONLY,
    ),
    Call("DELETE an integration", "DELETE", "/integrations/{integration}", None, (204, 403, 403, 403, 403)),
    Call("POST rotateSecret", "POST", "/integrations/{integration}/rotateSecret", None, ADMIN_ONLY),
    Call("POST an integration test", "POST", "/integrations/{integration}/test", None, ADMIN_QUEUES),
    Call("GET deliveries", "GET", "/integrations/{integration}/deliveries", None, ADMIN_ONLY),
    Call("GET a delivery", "GET", "/integrations/{integration}/deliveries/{delivery}", None, ADMIN_ONLY),
    Call(
        "POST a redelivery",
        "POST",
        "/integrations/{integration}/deliveries/{delivery}/redeliver",
        None,
        ADMIN_QUEUES,
    ),
]

# Incident rules: anyone reads the rules of every dataset and of datasets they view; making or changing
# one takes Configure dataset on each of its datasets (the manager and editor on orders), and a rule of
# every dataset, or one reaching a dataset the caller does not configure, is an admin's alone. A dataset
# the caller cannot see is as unknown as a missing one (400 unknown_datasets).
CHANGE_ORDERS_RULE = (200, 200, 200, 403, 404)
CALLS += [
    Call("GET incidentRules", "GET", "/incidentRules", None, ALL_200),
    Call(
        "POST incidentRules for orders",
        "POST",
        "/incidentRules",
        lambda t: {"name": "Orders", "datasetIds": [t.orders]},
        (201, 201, 201, 403, 400),
    ),
    Call(
        "POST incidentRules for orders and customers",
        "POST",
        "/incidentRules",
        lambda t: {"name": "Both", "datasetIds": [t.orders, t.customers]},
        (201, 403, 403, 403, 400),
    ),
    Call(
        "POST incidentRules for every dataset",
        "POST",
        "/incidentRules",
        lambda t: {"name": "Everything"},
        ADMIN_CREATES,
    ),
    Call("GET an orders rule", "GET", "/incidentRules/{orders_rule}", None, READ_ORDERS),
    Call("GET a rule of every dataset", "GET", "/incidentRules/{everywhere_rule}", None, ALL_200),
    Call("GET a spanning rule", "GET", "/incidentRules/{spanning_rule}", None, ALL_200),
    Call(
        "PATCH an orders rule",
        "PATCH",
        "/incidentRules/{orders_rule}",
        lambda t: {"name": "Orders, nightly", "position": 0},
        CHANGE_ORDERS_RULE,
    ),
    Call(
        "PATCH an orders rule to reach customers too",
        "PATCH",
        "/incidentRules/{orders_rule}",
        lambda t: {"datasetIds": [t.orders, t.customers]},
        (200, 403, 403, 403, 404),
    ),
    Call(
        "PATCH a rule of every dataset",
        "PATCH",
        "/incidentRules/{everywhere_rule}",
        lambda t: {"enabled": False},
        ADMIN_ONLY,
    ),
    Call(
        "PATCH a spanning rule",
        "PATCH",
        "/incidentRules/{spanning_rule}",
        lambda t: {"severity": "critical"},
        ADMIN_ONLY,
    ),
    Call("DELETE an orders rule", "DELETE", "/incidentRules/{orders_rule}", None, (204, 204, 204, 403, 404)),
    Call(
        "DELETE a rule of every dataset",
        "DELETE",
        "/incidentRules/{everywhere_rule}",
        None,
        (204, 403, 403, 403, 403),
    ),
]


def a_mute(t: Targets) -> dict[str, Any]:
    # From the moment it is sent: a mute must end in the future.
    return {"until": (timezone.now() + dt.timedelta(days=1)).isoformat(), "reason": "Planned migration."}


# Muting takes Manage incidents on the dataset. The targets' checks and datasets are muted already
# (muted_before), so unmuting any of them changes what is stored.
CALLS += [
    Call(
        "POST an orders check's mute", "POST", "/checks/{orders_check}/mute", a_mute, CHANGE_ORDERS_INCIDENT
    ),
    Call(
        "DELETE an orders check's mute",
        "DELETE",
        "/checks/{orders_check}/mute",
        None,
        (204, 204, 204, 403, 404),
    ),
    Call("POST a customers check's mute", "POST", "/checks/{customers_check}/mute", a_mute, ADMIN_ONLY),
    Call(
        "DELETE a customers check's mute",
        "DELETE",
        "/checks/{customers_check}/mute",
        None,
        (204, 403, 403, 403, 403),
    ),
    Call("POST orders' mute", "POST", "/datasets/{orders}/mute", a_mute, CHANGE_ORDERS_INCIDENT),
    Call("DELETE orders' mute", "DELETE", "/datasets/{orders}/mute", None, (204, 204, 204, 403, 404)),
    Call("POST customers' mute", "POST", "/datasets/{customers}/mute", a_mute, ADMIN_ONLY),
    Call("DELETE customers' mute", "DELETE", "/datasets/{customers}/mute", None, (204, 403, 403, 403, 403)),
]


def muted_before(world: World) -> None:
    """Both datasets and a check of each muted for a week, so that unmuting them changes something."""
    until = timezone.now() + dt.timedelta(days=7)
    for check in (world.orders_fail, world.customers_fail):
        mute_services.mute_check(check.check_ref_id, by=world.admin, until=until, reason="Before.")
    for dataset in (world.orders, world.customers):
        mute_services.mute_dataset(dataset.pk, by=world.admin, until=until, reason="Before.")


def rules_to_change(world: World) -> dict[str, int]:
    """A rule of every dataset, one of orders and one of orders and customers, in that order."""

    def rule(name: str, *datasets: Any) -> int:
        made = incident_rules.create_rule(by=world.admin, name=name, dataset_ids=[d.pk for d in datasets])
        return made.rule.pk

    return {
        "everywhere_rule": rule("Everything"),
        "orders_rule": rule("Orders", world.orders),
        "spanning_rule": rule("Both", world.orders, world.customers),
    }


def integration_with_a_delivery(world: World) -> tuple[int, int]:
    """A webhook (hearing no event) and a delivered test message of it, to read and redeliver."""
    hook, _ = integration_services.create_integration(
        by=world.admin, name="Jira", kind="webhook", url="https://example.com/hook", events=[]
    )
    delivery = integration_services.send_test(hook.pk, by=world.admin)
    Delivery.objects.filter(pk=delivery.pk).update(status="delivered")
    return hook.pk, delivery.pk


# A read changes nothing, so one test asks it as every caller in turn; a write gets a fresh world per caller.
READS = [pytest.param(call, id=call.name) for call in CALLS if not call.writes]
WRITES = [
    pytest.param(call, role, status, id=f"{call.name} as {role}")
    for call in CALLS
    if call.writes
    for role, status in call.expected().items()
]


# --- Helpers --------------------------------------------------------------------------------------


def report(by: User, title: str, *results: CheckResult) -> Incident:
    # The spanning incident shares the customers result with the customers incident, on purpose.
    return incidents.create_incident(
        by=by, title=title, check_result_ids=[r.pk for r in results], allow_duplicate=True
    )


@pytest.fixture
def targets(world: World) -> Targets:
    def role_id(name: str) -> int:
        return world.role(name).pk

    integration, delivery = integration_with_a_delivery(world)
    muted_before(world)
    return Targets(
        orders=world.orders.pk,
        customers=world.customers.pk,
        orders_check=world.orders_fail.check_ref_id,
        customers_check=world.customers_fail.check_ref_id,
        orders_incident=report(world.editor, "Nightly load wrote nothing", world.orders_fail).pk,
        customers_incident=report(world.admin, "Too few customers", world.customers_fail).pk,
        spanning_incident=report(
            world.admin, "Both tables short", world.orders_warn, world.customers_fail
        ).pk,
        unlinked_orders_result=world.orders_fail_2.pk,
        orders_incident_result=world.orders_fail.pk,
        customers_result=world.customers_fail.pk,
        manager=world.manager.pk,
        editor=world.editor.pk,
        viewer=world.viewer.pk,
        outsider=world.outsider.pk,
        manager_role=role_id("Manager"),
        editor_role=role_id("Editor"),
        viewer_role=role_id("Viewer"),
        admin_role=role_id("Admin"),
        everyone=world.customers.responsibilities.get(group__is_everyone=True).group_id or 0,
        orders_scan=world.orders_fail.scan_id or 0,
        attribute=catalog.create_check_attribute_definition(
            by=world.admin, name="tier", attribute_type="text"
        ).pk,
        integration=integration,
        delivery=delivery,
        **rules_to_change(world),
    )


def database_state() -> dict[str, list[Any]]:
    """Every row a write through the API could touch (API keys aside: using one records when)."""
    models: list[Any] = [
        User,
        Organization,
        DatasetRole,
        Responsibility,
        DataSource,
        Dataset,
        Check,
        Scan,
        CheckResult,
        Incident,
        IncidentDataset,
        IncidentCheckResult,
        TimelineEvent,
        CheckAttributeDefinition,
        Integration,
        Event,
        Delivery,
        IncidentRule,
        IncidentRule.datasets.through,
        IncidentRule.data_sources.through,
        Mute,
    ]
    return {model.__name__: list(model.objects.order_by("pk").values_list()) for model in models}


def send(client: httpx.Client, call: Call, t: Targets) -> httpx.Response:
    body = call.body(t) if call.body else None
    return client.request(call.method, call.path.format_map(vars(t)), json=body)


def ids(response: httpx.Response) -> set[int]:
    return {item["id"] for item in response.json()["content"]}


# --- The matrix -----------------------------------------------------------------------------------


def assert_error_shape(response: httpx.Response) -> None:
    if response.status_code >= 400:
        body = response.json()
        assert {"code", "message"} <= set(body), body
        if response.status_code in ERROR_CODES:
            assert body["code"] == ERROR_CODES[response.status_code], body


@pytest.mark.parametrize("call", READS)
def test_every_caller_reading_gets_exactly_the_status_the_permission_model_gives(
    client_for: ClientFor, targets: Targets, call: Call
) -> None:
    statuses = {}
    for role in call.expected():
        response = send(client_for(role), call, targets)
        assert_error_shape(response)
        statuses[role] = response.status_code

    assert statuses == call.expected()


@pytest.mark.parametrize(("call", "role", "status"), WRITES)
def test_every_caller_writing_gets_exactly_the_status_the_permission_model_gives(
    client_for: ClientFor, targets: Targets, call: Call, role: str, status: int
) -> None:
    before = database_state()

    response = send(client_for(role), call, targets)

    assert response.status_code == status, response.text
    assert_error_shape(response)
    if status >= 400 or role in call.refused_inside:
        assert database_state() == before, "a refused write changed the database"
    else:
        assert database_state() != before, "the request body did not exercise the write"


@pytest.mark.parametrize("role", UNAUTHENTICATED)
def test_an_unauthenticated_caller_is_told_how_to_authenticate(client_for: ClientFor, role: str) -> None:
    response = client_for(role).get("/incidents")

    assert response.status_code == 401
    assert response.json() == {
        "code": "unauthorized",
        "message": "Authenticate with HTTP Basic using an API key id and secret.",
    }
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Quell"'


def test_every_operation_of_the_api_is_in_the_matrix(client_for: ClientFor) -> None:
    schema = client_for("anonymous").get("/openapi.json").json()
    operations = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, item in schema["paths"].items()
        for method in item
    }
    called = {(call.method, call.path) for call in CALLS}
    templates = {
        "{orders}": "{dataset_id}",
        "{customers}": "{dataset_id}",
        "{orders_check}": "{check_id}",
        "{customers_check}": "{check_id}",
        "{orders_incident}": "{incident_id}",
        "{customers_incident}": "{incident_id}",
        "{spanning_incident}": "{incident_id}",
        "{orders_scan}": "{scan_id}",
        "{unlinked_orders_result}/failedRows": "{result_id}/failedRows",
        "{attribute}": "{definition_id}",
        "{integration}": "{integration_id}",
        "{delivery}": "{delivery_id}",
        "{orders_rule}": "{rule_id}",
        "{everywhere_rule}": "{rule_id}",
        "{spanning_rule}": "{rule_id}",
    }
    for ours, theirs in templates.items():
        called = {(method, path.replace(ours, theirs)) for method, path in called}
    assert called == operations


# --- Lists and incidents never leak orders to the outsider ----------------------------------------


def test_an_outsider_lists_no_incident_that_touches_only_orders(
    client_for: ClientFor, targets: Targets
) -> None:
    response = client_for("outsider").get("/incidents")

    assert response.status_code == 200
    assert ids(response) == {targets.customers_incident, targets.spanning_incident}


def test_an_outsider_lists_no_result_or_dataset_of_orders_in_incidents(
    client_for: ClientFor, targets: Targets
) -> None:
    content = client_for("outsider").get("/incidents").json()["content"]

    assert content
    for incident in content:
        assert {r["datasetId"] for r in incident["checkResults"]} == {targets.customers}
        assert [d["name"] for d in incident["datasets"]] == ["customers"]


def test_an_outsider_lists_only_the_datasets_they_may_view(client_for: ClientFor, targets: Targets) -> None:
    response = client_for("outsider").get("/datasets")

    assert response.status_code == 200
    assert ids(response) == {targets.customers}
    assert "orders" not in response.text


def test_an_outsider_lists_only_the_checks_they_may_view(client_for: ClientFor, world: World) -> None:
    response = client_for("outsider").get("/checks")

    assert response.status_code == 200
    assert ids(response) == {world.customers_fail.check_ref_id}
    assert {check["datasetId"] for check in response.json()["content"]} == {world.customers.pk}


def test_an_outsider_finds_no_checks_when_filtering_by_orders(client_for: ClientFor, world: World) -> None:
    response = client_for("outsider").get("/checks", params={"datasetId": world.orders.pk})

    assert response.status_code == 200
    assert response.json()["content"] == []
    assert response.json()["totalElements"] == 0


def test_an_outsider_finds_no_incidents_when_filtering_by_orders(
    client_for: ClientFor, targets: Targets
) -> None:
    # The spanning incident is visible through customers, but finding it by orders' id would tell the
    # outsider that the private dataset exists and what it is linked to.
    response = client_for("outsider").get("/incidents", params={"datasetId": targets.orders})

    assert response.status_code == 200
    assert response.json()["content"] == []
    assert response.json()["totalElements"] == 0


def test_a_viewer_of_orders_finds_the_spanning_incident_by_orders(
    client_for: ClientFor, targets: Targets
) -> None:
    response = client_for("viewer").get("/incidents", params={"datasetId": targets.orders})

    assert ids(response) == {targets.orders_incident, targets.spanning_incident}


def test_a_spanning_incident_shows_the_outsider_only_the_customers_result_and_dataset(
    client_for: ClientFor, targets: Targets, world: World
) -> None:
    response = client_for("outsider").get(f"/incidents/{targets.spanning_incident}")

    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body["checkResults"]] == [world.customers_fail.pk]
    assert [d["id"] for d in body["datasets"]] == [world.customers.pk]
    assert "orders" not in response.text


def test_a_spanning_incident_shows_a_viewer_of_orders_both_results_and_datasets(
    client_for: ClientFor, targets: Targets, world: World
) -> None:
    body = client_for("viewer").get(f"/incidents/{targets.spanning_incident}").json()

    assert {r["id"] for r in body["checkResults"]} == {world.orders_warn.pk, world.customers_fail.pk}
    assert {d["id"] for d in body["datasets"]} == {world.orders.pk, world.customers.pk}


def test_a_spanning_incident_in_the_outsiders_list_shows_only_customers(
    client_for: ClientFor, targets: Targets, world: World
) -> None:
    content = client_for("outsider").get("/incidents", params={"incidentIds": targets.spanning_incident})

    (incident,) = content.json()["content"]
    assert [r["id"] for r in incident["checkResults"]] == [world.customers_fail.pk]
    assert [d["id"] for d in incident["datasets"]] == [world.customers.pk]


def test_a_spanning_incidents_timeline_shows_the_outsider_only_the_customers_result(
    client_for: ClientFor, targets: Targets, world: World
) -> None:
    response = client_for("outsider").get(f"/incidents/{targets.spanning_incident}/timeline")

    assert response.status_code == 200
    attached = [e["checkResult"]["id"] for e in response.json() if e["type"] == "resultAttached"]
    assert attached == [world.customers_fail.pk]
    assert "orders" not in response.text


def test_a_result_attached_later_to_a_spanning_incident_stays_hidden_from_the_outsider(
    client_for: ClientFor, targets: Targets, world: World
) -> None:
    attached = client_for("editor").post(
        f"/incidents/{targets.spanning_incident}/checkResults",
        json={"checkResultIds": [world.orders_fail_2.pk]},
    )
    assert attached.status_code == 200, attached.text

    incident = client_for("outsider").get(f"/incidents/{targets.spanning_incident}").json()
    timeline = client_for("outsider").get(f"/incidents/{targets.spanning_incident}/timeline").json()

    assert [r["id"] for r in incident["checkResults"]] == [world.customers_fail.pk]
    assert world.orders_fail_2.pk not in {e["checkResult"]["id"] for e in timeline if e["checkResult"]}


def test_an_outsider_cannot_tell_a_private_incident_from_a_missing_one(
    client_for: ClientFor, targets: Targets
) -> None:
    missing_id = targets.spanning_incident + 1000
    private = client_for("outsider").get(f"/incidents/{targets.orders_incident}")
    missing = client_for("outsider").get(f"/incidents/{missing_id}")

    assert private.status_code == missing.status_code == 404
    assert private.json() == {
        "code": "not_found",
        "message": f"Incident {targets.orders_incident} not found.",
    }
    assert missing.json() == {"code": "not_found", "message": f"Incident {missing_id} not found."}


def test_an_outsider_cannot_tell_a_private_result_from_a_missing_one(
    client_for: ClientFor, targets: Targets
) -> None:
    outsider = client_for("outsider")
    private = outsider.post(
        "/incidents", json={"title": "x", "checkResultIds": [targets.unlinked_orders_result]}
    )
    missing = outsider.post("/incidents", json={"title": "x", "checkResultIds": [10**9]})

    assert private.status_code == missing.status_code == 400
    assert private.json()["code"] == missing.json()["code"] == "unknown_check_results"


def test_an_outsider_lists_no_rule_of_orders_and_only_customers_of_a_spanning_rule(
    client_for: ClientFor, targets: Targets
) -> None:
    response = client_for("outsider").get("/incidentRules")

    assert response.status_code == 200
    shown = {rule["id"]: rule["datasetIds"] for rule in response.json()}
    assert shown == {targets.everywhere_rule: [], targets.spanning_rule: [targets.customers]}


def test_a_configurer_of_orders_sees_which_rules_reach_orders(
    client_for: ClientFor, targets: Targets
) -> None:
    shown = {rule["id"]: rule["datasetIds"] for rule in client_for("editor").get("/incidentRules").json()}

    assert shown == {
        targets.everywhere_rule: [],
        targets.orders_rule: [targets.orders],
        targets.spanning_rule: sorted([targets.orders, targets.customers]),
    }
