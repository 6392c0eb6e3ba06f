"""The scan, data-source, result and ingestion-settings pages cost a fixed number of queries, however many
rows they show."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quell.catalog import ingest as catalog_ingest
from quell.catalog import services as catalog
from quell.catalog.models import CheckResult, Scan
from quell.incidents import services as incidents
from tests.conftest import World
from tests.web.conftest import ROLES, ClientAs, day, push_at
from tests.web.test_page_query_counts import queries


def scans_on_orders_and_customers(world: World, count: int, start: int = 0) -> None:
    """`count` scans, each over orders and customers with a pass, a warn and an excluded result."""
    for n in range(start, start + count):
        catalog_ingest.ingest_scan(
            catalog_ingest.ScanInput(
                data_timestamp=day(n),
                definition_name=f"run {n}",
                results=[
                    catalog_ingest.ResultInput(
                        "warehouse", "orders", catalog_ingest.CheckInput(name="a"), "pass", n
                    ),
                    catalog_ingest.ResultInput(
                        "warehouse", "orders", catalog_ingest.CheckInput(name="b"), "warn", n
                    ),
                    catalog_ingest.ResultInput(
                        "warehouse", "customers", catalog_ingest.CheckInput(name="c"), "excluded"
                    ),
                ],
            ),
            by=world.admin,
        )


SCAN_LISTS: list[tuple[str, Callable[[World], str], str]] = [
    (page, url, role)
    for page, url, roles in [
        ("orders' scans tab", lambda w: f"/datasets/{w.orders.pk}/scans", ["admin", "viewer"]),
        ("customers' scans tab", lambda w: f"/datasets/{w.customers.pk}/scans", ["viewer", "outsider"]),
        ("data source scans tab", lambda w: f"/data-sources/{w.orders.data_source_id}/scans", ROLES),
    ]
    for role in roles
]


@pytest.mark.parametrize(
    ("page", "url", "role"), SCAN_LISTS, ids=[f"{page}, {role}" for page, _, role in SCAN_LISTS]
)
def test_a_scan_list_costs_the_same_for_3_and_for_30_scans(
    client_as: ClientAs, world: World, page: str, url: Callable[[World], str], role: str
) -> None:
    client = client_as(role)
    scans_on_orders_and_customers(world, 3)
    client.get(url(world))
    few = queries(client, url(world))

    scans_on_orders_and_customers(world, 27, start=3)

    assert queries(client, url(world)) == few


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_the_data_source_datasets_tab_costs_the_same_for_3_and_for_30_datasets(
    client_as: ClientAs, world: World, role: str
) -> None:
    client = client_as(role)
    url = f"/data-sources/{world.orders.data_source_id}"
    for n in range(3):
        push_at(world.admin, f"table_{n}", day(n), ("row_count > 0", "fail", 0))
    client.get(url)
    few = queries(client, url)

    for n in range(3, 30):
        push_at(world.admin, f"table_{n}", day(n), ("row_count > 0", "fail", 0))

    assert queries(client, url) == few


@pytest.mark.parametrize("role", ["admin", "viewer", "outsider"])
def test_the_scan_page_costs_the_same_for_3_and_for_30_results(
    client_as: ClientAs, world: World, role: str
) -> None:
    def scan(size: int) -> Scan:
        made, _ = catalog_ingest.ingest_scan(
            catalog_ingest.ScanInput(
                data_timestamp=day(size),
                logs=[{"level": "info", "message": f"line {n}"} for n in range(size)],
                results=[
                    catalog_ingest.ResultInput(
                        "warehouse",
                        "orders" if n % 2 else "customers",
                        catalog_ingest.CheckInput(name=f"c{n}"),
                        "fail",
                        n,
                    )
                    for n in range(size)
                ],
            ),
            by=world.admin,
        )
        return made

    client = client_as(role)
    small, large = scan(3), scan(30)
    client.get(f"/scans/{small.pk}")

    assert queries(client, f"/scans/{large.pk}") == queries(client, f"/scans/{small.pk}")


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_the_result_page_costs_the_same_for_3_and_for_30_failed_rows_and_incidents(
    client_as: ClientAs, world: World, role: str
) -> None:
    def result(size: int) -> CheckResult:
        rows = b"".join(f'[{n}, null, "paid"]\n'.encode() for n in range(size))
        sample = catalog.store_failed_rows_sample(rows, by=world.admin)
        _, (stored,) = catalog_ingest.ingest_scan(
            catalog_ingest.ScanInput(
                data_timestamp=day(size),
                results=[
                    catalog_ingest.ResultInput(
                        "warehouse",
                        "orders",
                        catalog_ingest.CheckInput(name="missing_count(customer_id) = 0"),
                        "fail",
                        size,
                        samples=[catalog_ingest.SampleRef(sample.file_id, [{"name": "id"}], size)],
                    )
                ],
            ),
            by=world.admin,
        )
        for n in range(size // 3):
            incidents.create_incident(
                by=world.editor,
                title=f"Missing {size} {n}",
                check_result_ids=[stored.pk],
                allow_duplicate=True,
            )
        return stored

    client = client_as(role)
    small, large = result(3), result(30)
    client.get(f"/results/{small.pk}")

    assert queries(client, f"/results/{large.pk}") == queries(client, f"/results/{small.pk}")


def test_the_check_attributes_page_costs_the_same_for_3_and_for_30_attributes(
    client_as: ClientAs, world: World
) -> None:
    client = client_as("admin")
    for n in range(3):
        catalog.create_check_attribute_definition(by=world.admin, name=f"a{n}", attribute_type="text")
    client.get("/settings/check-attributes")
    few = queries(client, "/settings/check-attributes")

    for n in range(3, 30):
        catalog.create_check_attribute_definition(
            by=world.admin, name=f"a{n}", attribute_type="singleselect", allowed_values=["x", "y"]
        )

    assert queries(client, "/settings/check-attributes") == few
