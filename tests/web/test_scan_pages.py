"""Scans in the UI: the Scans tab of a dataset, a data source's tabs, and the scan page with its logs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import Dataset, Scan
from tests.conftest import T0, World
from tests.web.conftest import ROLES, ClientAs, day, missing_customers, push_at

EVERYONE = frozenset(ROLES)
ON_ORDERS = frozenset({"admin", "manager", "editor", "viewer"})


@dataclass(frozen=True)
class Page:
    name: str
    url: str  # {orders}, {customers}, {warehouse}, {vault}, {orders_scan}, {customers_scan} filled in
    allowed: frozenset[str]


PAGES = [
    Page("orders' scans tab", "/datasets/{orders}/scans", ON_ORDERS),
    Page("customers' scans tab", "/datasets/{customers}/scans", EVERYONE),
    Page("warehouse's datasets", "/data-sources/{warehouse}", EVERYONE),
    Page("warehouse's scans", "/data-sources/{warehouse}/scans", EVERYONE),
    Page("the private vault's datasets", "/data-sources/{vault}", ON_ORDERS),
    Page("the private vault's scans", "/data-sources/{vault}/scans", ON_ORDERS),
    Page("a scan of orders", "/scans/{orders_scan}", ON_ORDERS),
    Page("a scan of customers", "/scans/{customers_scan}", EVERYONE),
]


def url_of(page: Page, world: World, vault: Dataset) -> str:
    orders_scan, customers_scan = world.orders_fail.scan, world.customers_fail.scan
    assert orders_scan is not None
    assert customers_scan is not None
    return page.url.format(
        orders=world.orders.pk,
        customers=world.customers.pk,
        warehouse=world.orders.data_source_id,
        vault=vault.data_source_id,
        orders_scan=orders_scan.pk,
        customers_scan=customers_scan.pk,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_each_scan_page_answers_each_role_as_its_datasets_allow(
    client_as: ClientAs, world: World, vault: Dataset, page: Page, role: str
) -> None:
    response = client_as(role).get(url_of(page, world, vault))

    # Nothing here is refused with 403: whoever may not view the datasets may not know they exist.
    assert response.status_code == (200 if role in page.allowed else 404)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_anonymous_visitors_are_sent_to_log_in(
    client_as: ClientAs, world: World, vault: Dataset, page: Page
) -> None:
    response = client_as("anonymous").get(url_of(page, world, vault))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login") + "?next=")


def test_a_hidden_scan_shows_nothing_of_itself(client_as: ClientAs, world: World, soda_scan: Scan) -> None:
    response = client_as("outsider").get(f"/scans/{soda_scan.pk}")

    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body
    for secret in ("orders", "Soda Core CLI", "No missing customers", "SodaCore"):
        assert secret not in body


def test_a_hidden_data_source_shows_nothing_of_itself(
    client_as: ClientAs, world: World, vault: Dataset
) -> None:
    body = client_as("outsider").get(f"/data-sources/{vault.data_source_id}/scans").content.decode()

    assert "vault" not in body
    assert "secrets" not in body


def test_the_scan_page_shows_state_times_client_and_definition(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    body = client_as("viewer").get(f"/scans/{soda_scan.pk}").content.decode()

    assert "Soda Core CLI" in body  # the definition name
    assert "SodaCore/3.5.6" in body  # the client
    assert 'class="badge scan-completedWithFailures"' in body
    assert "Completed with failures" in body
    assert "2026-11-26 15:24:41" in body  # the data time
    assert "Took" in body


def test_the_scan_page_counts_its_outcomes_with_symbols_and_words(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    body = client_as("viewer").get(f"/scans/{soda_scan.pk}").content.decode()
    counts = body.split('class="outcome-counts"')[1].split("</ul>")[0]

    # The captured scan: row count and schema pass, four checks fail.
    assert '<span aria-hidden="true">✓</span> 2 Pass' in counts
    assert '<span aria-hidden="true">✕</span> 4 Fail' in counts
    assert "0 Warn" in counts
    assert "0 Excluded" in counts
    assert "0 Not evaluated" in counts


def test_the_scan_page_lists_its_results_linking_checks_and_result_pages(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    body = client_as("viewer").get(f"/scans/{soda_scan.pk}").content.decode()
    result = missing_customers(soda_scan)

    assert f'href="/checks/{result.check_ref_id}">No missing customers</a>' in body
    assert f'href="/results/{result.pk}"' in body
    assert body.count('href="/results/') == 6


def test_the_scan_page_shows_the_logs_to_those_who_can_view_all_its_datasets(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    body = client_as("viewer").get(f"/scans/{soda_scan.pk}").content.decode()
    logs = body.split('id="scan-logs-heading"')[1]

    assert "Soda Core 3.5.6" in logs
    assert "Using DefaultSampler" in logs
    assert logs.count('<tr class="log-') == 23


def mixed_scan(world: World) -> Scan:
    """One scan by the admin over the private orders and the public customers, with a log naming both."""
    scan, _ = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            definition_name="nightly",
            logs=[{"level": "info", "message": "Scanned orders and customers", "timestamp": "06:00"}],
            results=[
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="orders ok"), "pass"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "customers", catalog_ingest.CheckInput(name="customers ok"), "fail"
                ),
            ],
        ),
        by=world.admin,
    )
    return scan


def test_logs_are_hidden_with_the_reason_from_whoever_cannot_view_every_dataset(
    client_as: ClientAs, world: World
) -> None:
    scan = mixed_scan(world)

    response = client_as("outsider").get(f"/scans/{scan.pk}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "The logs are hidden" in body
    assert "cover datasets you cannot view" in body
    assert "Scanned orders and customers" not in body


def test_a_scan_shows_only_the_results_and_datasets_the_user_can_view(
    client_as: ClientAs, world: World
) -> None:
    scan = mixed_scan(world)

    body = client_as("outsider").get(f"/scans/{scan.pk}").content.decode()

    assert "customers ok" in body
    assert "orders ok" not in body
    assert f'href="/datasets/{world.orders.pk}"' not in body
    assert "1 Fail" in body
    assert "0 Pass" in body  # the pass on orders is not counted for them


def test_the_same_scan_shows_its_logs_to_someone_who_can_view_both_datasets(
    client_as: ClientAs, world: World
) -> None:
    scan = mixed_scan(world)

    body = client_as("viewer").get(f"/scans/{scan.pk}").content.decode()

    assert "Scanned orders and customers" in body
    assert "The logs are hidden" not in body


def test_the_dataset_scans_tab_lists_its_scans_newest_first(client_as: ClientAs, world: World) -> None:
    push_at(world.admin, "orders", day(1), ("row_count > 0", "warn", 3))
    push_at(world.admin, "orders", day(2), ("row_count > 0", "pass", 9))

    body = client_as("viewer").get(f"/datasets/{world.orders.pk}/scans").content.decode()

    assert 'aria-current="page">Scans</a>' in body
    assert body.index("2026-11-03") < body.index("2026-11-02") < body.index("2026-11-01")
    assert "Completed with warnings" in body
    assert body.count('href="/scans/') == 3


def test_a_scan_list_shows_each_scans_outcome_counts(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get(f"/datasets/{world.orders.pk}/scans").content.decode()
    row = body.split('href="/scans/')[1].split("</tr>")[0]

    # The world's orders scan: one pass, one warn, two fails.
    assert "1 Pass" in row
    assert "1 Warn" in row
    assert "2 Fail" in row


def test_scan_lists_are_paginated(client_as: ClientAs, world: World) -> None:
    for n in range(1, 55):
        push_at(world.admin, "orders", day(n), ("row_count > 0", "pass", n))

    first = client_as("viewer").get(f"/datasets/{world.orders.pk}/scans").content.decode()
    second = client_as("viewer").get(f"/datasets/{world.orders.pk}/scans?page=2").content.decode()

    assert first.count('href="/scans/') == 50
    assert "Page 1 of 2 · 55 in all" in first
    assert second.count('href="/scans/') == 5


def test_the_data_source_page_lists_its_datasets_the_user_can_view(client_as: ClientAs, world: World) -> None:
    viewer = client_as("viewer").get(f"/data-sources/{world.orders.data_source_id}").content.decode()
    outsider = client_as("outsider").get(f"/data-sources/{world.orders.data_source_id}").content.decode()

    assert f'href="/datasets/{world.orders.pk}"' in viewer
    assert f'href="/datasets/{world.customers.pk}"' in viewer
    assert f'href="/datasets/{world.orders.pk}"' not in outsider
    assert f'href="/datasets/{world.customers.pk}"' in outsider


def test_the_data_source_scans_tab_leaves_out_scans_of_hidden_datasets(
    client_as: ClientAs, world: World
) -> None:
    orders_scan, customers_scan = world.orders_fail.scan, world.customers_fail.scan
    assert orders_scan is not None
    assert customers_scan is not None

    body = client_as("outsider").get(f"/data-sources/{world.orders.data_source_id}/scans").content.decode()

    assert f'href="/scans/{customers_scan.pk}"' in body
    assert f'href="/scans/{orders_scan.pk}"' not in body


def test_the_datasets_list_links_each_data_source(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get("/datasets/").content.decode()

    assert f'href="/data-sources/{world.orders.data_source_id}">warehouse</a>' in body


def test_the_dataset_breadcrumb_links_its_data_source(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get(f"/datasets/{world.orders.pk}").content.decode()

    assert f'<a href="/data-sources/{world.orders.data_source_id}">warehouse</a>' in body


def test_a_failed_scan_without_results_says_so_and_shows_its_logs(client_as: ClientAs, world: World) -> None:
    scan = catalog_ingest.mark_scan_failed(
        "run-42",
        [{"level": "error", "message": "Could not connect to the warehouse"}],
        by=world.editor,
        source="soda-core",
        client="SodaCore/4.28.0",
    )

    body = client_as("editor").get(f"/scans/{scan.pk}").content.decode()

    assert "Failed" in body
    assert "This scan has no results you can see." in body
    assert "Could not connect to the warehouse" in body
    assert "run-42" in body


def test_excluded_and_unevaluated_results_get_their_own_badges_on_the_scan(
    client_as: ClientAs, world: World
) -> None:
    scan, _ = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="skipped"), "excluded"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="broken"), "unevaluated"
                ),
            ],
        ),
        by=world.admin,
    )

    body = client_as("viewer").get(f"/scans/{scan.pk}").content.decode()

    assert (
        '<span class="badge outcome-excluded"><span aria-hidden="true">\u2013</span> Excluded</span>' in body
    )
    assert (
        '<span class="badge outcome-unevaluated"><span aria-hidden="true">?</span> Not evaluated</span>'
        in body
    )
    assert "1 Excluded" in body
    assert "1 Not evaluated" in body


def scan_failing_on_the_private_dataset(world: World) -> Scan:
    """One scan by the admin: a fail on the private orders, a pass on the public customers."""
    scan, _ = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse", "orders", catalog_ingest.CheckInput(name="orders fail"), "fail"
                ),
                catalog_ingest.ResultInput(
                    "warehouse", "customers", catalog_ingest.CheckInput(name="customers ok"), "pass"
                ),
            ],
        ),
        by=world.admin,
    )
    return scan


@pytest.mark.parametrize("role", ROLES)
def test_a_scans_badge_counts_only_the_results_the_user_can_view(
    client_as: ClientAs, world: World, role: str
) -> None:
    scan = scan_failing_on_the_private_dataset(world)
    client = client_as(role)

    page = client.get(f"/scans/{scan.pk}").content.decode()
    badge = page.split('class="badges">')[1].split("</p>")[0]
    tab = client.get(f"/datasets/{world.customers.pk}/scans").content.decode()
    row = tab.split(f'href="/scans/{scan.pk}"')[1].split("</tr>")[0]

    # The fail is on orders, which the outsider may not know exists: for them the scan went clean.
    expected = "completed" if role == "outsider" else "completedWithFailures"
    for shown in (badge, row):
        assert f'class="badge scan-{expected}"' in shown
    assert ("Completed with failures" in page) is (role != "outsider")
