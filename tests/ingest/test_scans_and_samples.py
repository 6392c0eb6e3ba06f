"""Who sees which scans, logs and failed-row samples, and who defines attributes and sample settings."""

from __future__ import annotations

import pytest

from quell.accounts.models import DatasetRole, Organization, Responsibility
from quell.catalog import ingest as catalog_ingest
from quell.catalog import queries as catalog_queries
from quell.catalog import services as catalog
from quell.catalog.models import CheckResult, FailedRowsSample, Scan
from quell.lib.errors import Forbidden, Invalid, NotFound
from tests.conftest import T0, ClientFor, World


def scan_with_sample(world: World, data_source: str = "warehouse", dataset: str = "orders") -> CheckResult:
    """One scan by the admin with a failing result that carries a two-row sample."""
    sample = catalog.store_failed_rows_sample(
        b"[1, null]\n[2, null]\n", by=world.admin, file_path="x/y.jsonl"
    )
    _, (result,) = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            definition_name="nightly",
            logs=[{"level": "info", "message": "Scan summary:"}],
            results=[
                catalog_ingest.ResultInput(
                    data_source=data_source,
                    dataset=dataset,
                    check=catalog_ingest.CheckInput(name="missing_count(customer_id) = 0"),
                    outcome="fail",
                    value=2,
                    samples=[
                        catalog_ingest.SampleRef(sample.file_id, [{"name": "id"}, {"name": "customer_id"}], 2)
                    ],
                )
            ],
        ),
        by=world.admin,
    )
    return result


def test_a_scan_is_listed_for_its_dataset_and_data_source(world: World) -> None:
    result = scan_with_sample(world)
    assert result.scan is not None

    by_dataset = catalog_queries.list_scans(by=world.viewer, dataset_id=world.orders.pk)
    by_source = catalog_queries.list_scans(by=world.viewer, data_source_id=world.orders.data_source_id)

    assert result.scan in by_dataset
    assert result.scan in by_source
    assert list(catalog_queries.list_scans(by=world.viewer, dataset_id=world.customers.pk)) == [
        s for s in Scan.objects.order_by("-data_timestamp", "-id") if s.datasets.filter(pk=world.customers.pk)
    ]


def test_a_scan_of_a_private_dataset_is_hidden_from_outsiders(world: World) -> None:
    result = scan_with_sample(world)
    assert result.scan is not None

    assert result.scan not in catalog_queries.list_scans(by=world.outsider)
    with pytest.raises(NotFound):
        catalog_queries.get_scan(result.scan.pk, by=world.outsider)
    with pytest.raises(NotFound):
        catalog_queries.list_scans(by=world.outsider, dataset_id=world.orders.pk)


def test_a_scans_results_are_those_the_caller_can_view(world: World) -> None:
    result = scan_with_sample(world)
    assert result.scan is not None

    assert list(catalog_queries.scan_results(result.scan.pk, by=world.viewer)) == [result]


def test_scan_logs_are_for_those_who_can_view_all_of_its_datasets(world: World) -> None:
    _, results = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            logs=[{"level": "info", "message": "orders and customers"}],
            results=[
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="a"), "pass"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "customers", catalog_ingest.CheckInput(name="b"), "pass"
                ),
            ],
        ),
        by=world.admin,
    )
    scan = results[0].scan
    assert scan is not None
    # The outsider sees the customers part (Everyone may view it) but not the private orders.
    assert list(catalog_queries.scan_results(scan.pk, by=world.outsider)) == [results[1]]

    with pytest.raises(Forbidden):
        catalog_queries.scan_logs(scan.pk, by=world.outsider)
    assert catalog_queries.scan_logs(scan.pk, by=world.viewer) == [
        {"level": "info", "message": "orders and customers"}
    ]


def test_failed_rows_are_shown_to_a_role_with_the_failed_rows_permission(world: World) -> None:
    result = scan_with_sample(world)

    (sample,) = catalog_queries.failed_rows(result.pk, by=world.viewer)

    assert sample.rows == [[1, None], [2, None]]
    assert sample.columns == [{"name": "id"}, {"name": "customer_id"}]
    assert sample.total_row_count == 2
    assert catalog_queries.can_view_failed_rows(result, world.viewer)


def test_failed_rows_are_refused_to_a_role_without_that_permission(world: World) -> None:
    result = scan_with_sample(world)
    no_rows = DatasetRole.objects.create(name="Looker", view_dataset=True)
    Responsibility.objects.filter(dataset=world.orders, user=world.viewer).update(role=no_rows)

    with pytest.raises(Forbidden, match="Access failed row samples for checks"):
        catalog_queries.failed_rows(result.pk, by=world.viewer)
    assert not catalog_queries.can_view_failed_rows(result, world.viewer)


def test_failed_rows_of_a_result_one_cannot_see_are_not_found(world: World) -> None:
    result = scan_with_sample(world)

    with pytest.raises(NotFound):
        catalog_queries.failed_rows(result.pk, by=world.outsider)


def test_a_sample_uploaded_by_someone_else_is_not_attached(world: World) -> None:
    foreign = catalog.store_failed_rows_sample(b"[9]\n", by=world.editor)

    catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse",
                    "orders",
                    catalog_ingest.CheckInput(name="a"),
                    "fail",
                    samples=[catalog_ingest.SampleRef(foreign.file_id)],
                )
            ],
        ),
        by=world.admin,
    )

    foreign.refresh_from_db()
    assert foreign.check_result is None


def test_only_an_admin_changes_failed_row_settings(world: World) -> None:
    with pytest.raises(Forbidden):
        catalog.update_failed_rows_settings(by=world.manager, collect=False)

    org = catalog.update_failed_rows_settings(by=world.admin, collect=False, max_bytes=4096)

    assert (org.collect_failed_rows, org.failed_rows_max_bytes) == (False, 4096)
    assert catalog_queries.samples_disabled()


def test_a_sample_size_limit_out_of_range_is_refused(world: World) -> None:
    with pytest.raises(Invalid, match="between"):
        catalog.update_failed_rows_settings(by=world.admin, max_bytes=10)
    assert Organization.get().failed_rows_max_bytes == 1024 * 1024


def test_samples_are_refused_while_collection_is_off(world: World) -> None:
    catalog.update_failed_rows_settings(by=world.admin, collect=False)

    with pytest.raises(Forbidden) as refused:
        catalog.store_failed_rows_sample(b"[1]\n", by=world.editor)

    assert refused.value.code == "soda_core_uploads_disabled"
    assert not FailedRowsSample.objects.exists()


def test_only_an_admin_defines_check_attributes(world: World) -> None:
    with pytest.raises(Forbidden):
        catalog.create_check_attribute_definition(by=world.manager, name="domain", attribute_type="text")

    created = catalog.create_check_attribute_definition(by=world.admin, name="domain", attribute_type="text")

    assert list(catalog_queries.list_check_attribute_definitions(by=world.viewer)) == [created]


@pytest.mark.parametrize(
    ("name", "attribute_type", "allowed", "field"),
    [
        ("has space", "text", [], "name"),
        ("domain", "colour", [], "type"),
        ("domain", "singleselect", [], "allowedValues"),
        ("domain", "multiselect", ["a", "a"], "allowedValues"),
        ("domain", "number", ["1"], "allowedValues"),
    ],
)
def test_a_check_attribute_definition_must_make_sense(
    world: World, name: str, attribute_type: str, allowed: list[str], field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        catalog.create_check_attribute_definition(
            by=world.admin, name=name, attribute_type=attribute_type, allowed_values=allowed
        )

    assert refused.value.field == field


def test_a_check_attribute_name_is_taken_once(world: World) -> None:
    catalog.create_check_attribute_definition(by=world.admin, name="domain", attribute_type="text")

    with pytest.raises(Invalid, match="already"):
        catalog.create_check_attribute_definition(by=world.admin, name="domain", attribute_type="number")


def test_scans_and_samples_over_the_rest_api(world: World, client_for: ClientFor) -> None:
    api = client_for("viewer")
    result = scan_with_sample(world)
    assert result.scan is not None

    scan = api.get(f"/scans/{result.scan.pk}").json()
    rows = api.get(f"/checkResults/{result.pk}/failedRows").json()
    results = api.get(f"/scans/{result.scan.pk}/results").json()["content"]

    assert scan["definitionName"] == "nightly"
    assert scan["resultCounts"] == {"pass": 0, "warn": 0, "fail": 1, "other": 0}
    assert rows["samples"][0]["rows"] == [[1, None], [2, None]]
    assert [r["id"] for r in results] == [result.pk]
    assert client_for("outsider").get(f"/scans/{result.scan.pk}").status_code == 404


def scan_failing_on_the_private_dataset(world: World) -> Scan:
    """One scan by the admin: a fail and a warn on the private orders, a pass on the public customers."""
    scan, _ = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="orders fail"), "fail"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="orders warn"), "warn"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "customers", catalog_ingest.CheckInput(name="customers ok"), "pass"
                ),
            ],
        ),
        by=world.admin,
    )
    return scan


@pytest.mark.parametrize("role", ["admin", "manager", "editor", "viewer", "outsider"])
def test_a_scans_state_and_flags_count_only_what_the_caller_can_view(
    world: World, client_for: ClientFor, role: str
) -> None:
    scan = scan_failing_on_the_private_dataset(world)
    api = client_for(role)

    one = api.get(f"/scans/{scan.pk}").json()
    (listed,) = [
        s
        for s in api.get("/scans", params={"datasetId": world.customers.pk}).json()["content"]
        if s["id"] == scan.pk
    ]

    for shown in (one, listed):
        if role == "outsider":
            # The fail and the warn are on orders, which the outsider may not know exists: a clean scan.
            assert shown["state"] == "completed"
            assert (shown["hasFailures"], shown["hasWarnings"]) == (False, False)
            assert shown["resultCounts"] == {"pass": 1, "warn": 0, "fail": 0, "other": 0}
        else:
            assert shown["state"] == "completedWithFailures"
            assert (shown["hasFailures"], shown["hasWarnings"]) == (True, True)
            assert shown["resultCounts"] == {"pass": 1, "warn": 1, "fail": 1, "other": 0}
