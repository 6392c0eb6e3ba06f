"""`quell loadgen` writes valid data, and the benchmark harness measures it end to end (never timing)."""

from __future__ import annotations

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count

from quell.accounts.models import ApiKey, User
from quell.bench import harness, loadgen, queries
from quell.catalog import access
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult, Dataset
from quell.incidents import services
from quell.incidents.models import Incident, IncidentCheckResult, IncidentDataset, NumberSequence

SCALE = loadgen.Scale(incidents=200, days=30)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def generated(builtin_rows: None) -> loadgen.Summary:
    return loadgen.generate(SCALE, seed=7, progress=False)


def test_loadgen_writes_the_scale_asked_for(generated: loadgen.Summary) -> None:
    assert Incident.objects.count() == 200
    assert User.objects.count() == SCALE.users + 1
    assert Dataset.objects.count() == SCALE.datasets
    assert Check.objects.count() == SCALE.checks
    assert CheckResult.objects.count() == SCALE.checks * SCALE.days
    assert generated.counts["incidents"] == 200


def test_every_incident_links_only_warn_and_fail_results(generated: loadgen.Summary) -> None:
    assert not Incident.objects.annotate(n=Count("links")).filter(n=0).exists()
    assert not IncidentCheckResult.objects.exclude(check_result__outcome__in=FAILING_OUTCOMES).exists()


def test_incident_datasets_are_exactly_those_of_the_linked_results(generated: loadgen.Summary) -> None:
    linked = set(
        IncidentCheckResult.objects.values_list("incident_id", "check_result__dataset_id").distinct()
    )
    recorded = set(IncidentDataset.objects.values_list("incident_id", "dataset_id"))
    assert linked == recorded


def test_numbers_are_unique_and_the_next_incident_gets_a_fresh_one(generated: loadgen.Summary) -> None:
    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(set(numbers)) == len(numbers)
    assert NumberSequence.objects.get(name="incident").last_value == max(numbers)
    admin = User.objects.get(email=generated.admin_email)
    result = CheckResult.objects.filter(outcome__in=FAILING_OUTCOMES).first()
    assert result is not None
    created = services.create_incident(by=admin, title="After loadgen", check_result_ids=[result.pk])
    assert created.number == max(numbers) + 1


def test_leads_and_reporters_may_manage_the_incidents_they_handle(generated: loadgen.Summary) -> None:
    for incident in Incident.objects.select_related("lead", "reporter")[:50]:
        dataset_ids = set(incident.datasets.values_list("pk", flat=True))
        for user in (incident.lead, incident.reporter):
            held = access.permissions_on_many(user, dataset_ids)
            assert any(access.MANAGE_INCIDENTS in perms for perms in held.values()), (incident, user)


def test_members_see_some_incidents_but_not_all(generated: loadgen.Summary) -> None:
    visible = [services.visible_incidents(u).count() for u in User.objects.filter(global_role="user")]
    assert max(visible) > 0
    assert min(visible) < 200


def test_loadgen_refuses_a_database_that_has_incidents(generated: loadgen.Summary) -> None:
    with pytest.raises(CommandError, match="already holds incidents"):
        call_command("loadgen", "--incidents", "10", "--no-progress")
    assert Incident.objects.count() == 200


def test_loadgen_appends_when_asked(generated: loadgen.Summary) -> None:
    call_command("loadgen", "--incidents", "20", "--days", "30", "--append", "--no-progress")
    assert Incident.objects.count() == 220
    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(set(numbers)) == 220
    assert NumberSequence.objects.get(name="incident").last_value == max(numbers)


def test_the_api_lists_generated_incidents_to_their_admin(
    generated: loadgen.Summary, live_server: object
) -> None:
    admin = User.objects.get(email=generated.admin_email)
    key, secret = ApiKey.issue(admin)
    response = httpx.get(
        f"{live_server.url}/api/v1/incidents",  # type: ignore[attr-defined]
        params={"size": 20},
        auth=(key.key_id, secret),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["totalElements"] == 200
    newest = list(Incident.objects.order_by("-created_at", "-id").values_list("pk", flat=True)[:20])
    assert [i["id"] for i in body["content"]] == newest


def test_the_hand_written_list_answers_the_same_page_as_quell(generated: loadgen.Summary) -> None:
    member = User.objects.filter(global_role="user").annotate(n=Count("user_groups")).order_by("-n").first()
    assert member is not None
    expected = list(
        services.list_incidents(services.IncidentFilters(statuses=["resolved"]), by=member).values_list(
            "pk", flat=True
        )[:50]
    )
    with connection.cursor() as cursor:
        page = queries.incident_list(
            cursor, queries.Caller(member.pk, False), queries.ListQuery(statuses=["resolved"], size=50)
        )
    assert [i["id"] for i in page["content"]] == expected


def test_the_floor_endpoint_is_absent_in_normal_operation(world: object, live_server: object) -> None:
    response = httpx.get(f"{live_server.url}/bench/floor/incidents")  # type: ignore[attr-defined]
    assert response.status_code == 404


def test_the_harness_measures_every_operation(generated: loadgen.Summary, tmp_path: object) -> None:
    targets = harness.pick_targets()
    creds = harness.credentials(targets)
    ops = harness.operations(targets)
    with harness.server() as base_url:
        results = harness.measure(ops, base_url, creds, repeats=2, warmup=0)
    assert [m.operation for m in results] == [op.name for op in ops]
    for op, m in zip(ops, results, strict=True):
        assert (m.end_to_end is not None) == bool(op.path), op.name
        assert (m.floor is not None) == bool(op.floor_path), op.name
        assert (m.hand_sql is not None) == bool(op.hand), op.name
        if op.method == "GET":
            assert m.quell_sql is not None, op.name
            assert m.quell_queries, op.name
    assert "| list, first page |" in harness.markdown(results)
