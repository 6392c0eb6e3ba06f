"""A check result's page: value, diagnostics, scan, incidents, and failed rows for those allowed to see them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from quell.accounts.models import DatasetRole, Organization, Responsibility, User
from quell.catalog import ingest as catalog_ingest
from quell.catalog import services as catalog
from quell.catalog.models import Scan
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import T0, World, make_user
from tests.web.conftest import ROLES, ClientAs, day, missing_customers, push_at

ON_ORDERS = frozenset({"admin", "manager", "editor", "viewer"})


@pytest.mark.parametrize("role", ROLES)
def test_an_orders_result_page_is_for_those_who_view_orders(
    client_as: ClientAs, world: World, role: str
) -> None:
    response = client_as(role).get(f"/results/{world.orders_fail.pk}")

    assert response.status_code == (200 if role in ON_ORDERS else 404)


@pytest.mark.parametrize("role", ROLES)
def test_a_customers_result_page_is_for_everyone(client_as: ClientAs, world: World, role: str) -> None:
    assert client_as(role).get(f"/results/{world.customers_fail.pk}").status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(client_as: ClientAs, world: World) -> None:
    response = client_as("anonymous").get(f"/results/{world.orders_fail.pk}")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login") + "?next=")


def test_a_hidden_result_shows_nothing_of_itself(client_as: ClientAs, world: World, soda_scan: Scan) -> None:
    result = missing_customers(soda_scan)

    response = client_as("outsider").get(f"/results/{result.pk}")

    assert response.status_code == 404
    body = response.content.decode()
    for secret in ("No missing customers", "orders", "lost_in_transit", "customer_id"):
        assert secret not in body


def test_an_unknown_result_is_not_found(client_as: ClientAs, world: World) -> None:
    assert client_as("admin").get("/results/999999").status_code == 404


def test_the_result_page_shows_outcome_value_time_check_and_scan(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    result = missing_customers(soda_scan)

    body = client_as("viewer").get(f"/results/{result.pk}").content.decode()

    assert '<span class="badge outcome-fail">' in body
    assert '<dd class="value">2</dd>' in body
    assert "2026-11-26 15:24:41" in body
    assert f'href="/checks/{result.check_ref_id}">No missing customers</a>' in body
    assert f'href="/scans/{soda_scan.pk}">#{soda_scan.pk} Soda Core CLI</a>' in body


def test_the_diagnostics_are_shown_as_indented_json(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    result = missing_customers(soda_scan)

    body = client_as("viewer").get(f"/results/{result.pk}").content.decode()
    diagnostics = body.split('<pre class="diagnostics-json"><code>')[1].split("</code></pre>")[0]

    assert "\n  &quot;blocks&quot;: [\n" in diagnostics
    assert "&quot;failedRowsAnalysis&quot;" in diagnostics


def test_the_result_page_lists_the_incidents_the_result_is_in(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = client_as("viewer").get(f"/results/{world.orders_fail.pk}").content.decode()
    section = body.split('id="result-incidents-heading"')[1].split("</section>")[0]

    assert (
        f'href="/incidents/{orders_incident.number}">#{orders_incident.number} Orders table is empty</a>'
        in section
    )
    assert "Reported" in section


def test_a_result_in_no_incident_says_so(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get(f"/results/{world.orders_pass.pk}").content.decode()

    assert "This result is in no incident." in body


def test_the_failed_rows_are_a_table_for_those_with_the_permission(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    result = missing_customers(soda_scan)

    body = client_as("viewer").get(f"/results/{result.pk}").content.decode()
    table = body.split('<table class="dense striped failed-rows">')[1].split("</table>")[0]

    headings = ["order_id", "customer_id", "status", "amount"]
    assert "".join(f'<th scope="col">{name}</th>' for name in headings) in table
    assert "<td>lost_in_transit</td>" in table
    assert '<td><span class="muted">null</span></td>' in table
    assert table.count("<tr>") == 3  # the heading and two rows
    assert "2 rows kept of 2 that failed." in body


def looker(world: World) -> User:
    """Someone whose role on orders lets them view it but not its failed rows."""
    role = DatasetRole.objects.create(name="Looker", view_dataset=True, view_failed_rows=False)
    user = make_user("looker@example.com")
    Responsibility.objects.create(dataset=world.orders, user=user, role=role)
    return user


def test_without_the_permission_the_rows_are_hidden_and_the_page_says_why(
    world: World, soda_scan: Scan
) -> None:
    client = Client()
    client.force_login(looker(world))
    result = missing_customers(soda_scan)

    response = client.get(f"/results/{result.pk}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "The failed rows are hidden" in body
    assert "&quot;Access failed row samples for checks&quot; permission" in body
    assert "lost_in_transit" not in body
    assert '<table class="dense striped failed-rows">' not in body
    assert "No missing customers" in body  # the rest of the page is theirs to see


def test_a_result_without_a_sample_says_none_was_stored(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get(f"/results/{world.orders_fail.pk}").content.decode()

    assert "No failed-row sample was stored for this result." in body


def test_when_samples_are_off_the_page_says_the_organisation_does_not_collect_them(
    client_as: ClientAs, world: World
) -> None:
    Organization.objects.filter(pk=1).update(collect_failed_rows=False)

    body = client_as("viewer").get(f"/results/{world.orders_fail.pk}").content.decode()

    assert "This organisation does not collect failed-row samples." in body


def test_a_cut_sample_says_it_was_cut(client_as: ClientAs, world: World) -> None:
    Organization.objects.filter(pk=1).update(failed_rows_max_bytes=1024)
    rows = b"".join(f'[{n}, "{"x" * 40}"]\n'.encode() for n in range(100))
    sample = catalog.store_failed_rows_sample(rows, by=world.admin)
    _, (result,) = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=T0,
            results=[
                catalog_ingest.ResultInput(
                    "warehouse",
                    "orders",
                    catalog_ingest.CheckInput(name="valid_count(code) = 0"),
                    "fail",
                    100,
                    samples=[catalog_ingest.SampleRef(sample.file_id, [], 100)],
                )
            ],
        ),
        by=world.admin,
    )

    body = client_as("viewer").get(f"/results/{result.pk}").content.decode()

    assert "the sample was cut to the organisation's size limit" in body
    assert '<th scope="col">Column 1</th><th scope="col">Column 2</th>' in body  # no column names sent


def test_each_result_on_the_check_page_links_to_its_page(client_as: ClientAs, world: World) -> None:
    later = push_at(world.admin, "orders", day(1), ("row_count > 0", "pass", 7))[0]

    body = client_as("viewer").get(f"/checks/{world.orders_fail.check_ref_id}").content.decode()
    results = body.split('id="results-heading"')[1]

    assert f'href="/results/{later.pk}"' in results
    assert f'href="/results/{world.orders_fail.pk}"' in results
    assert f'href="/scans/{later.scan_id}">#{later.scan_id}</a>' in results


def test_excluded_and_unevaluated_results_have_their_own_badges_and_chart_shape(
    client_as: ClientAs, world: World
) -> None:
    excluded = push_at(world.admin, "orders", day(1), ("row_count > 0", "excluded", 4))[0]
    push_at(world.admin, "orders", day(2), ("row_count > 0", "unevaluated", None))

    check_page = client_as("viewer").get(f"/checks/{excluded.check_ref_id}").content.decode()
    result_page = client_as("viewer").get(f"/results/{excluded.pk}").content.decode()

    assert (
        '<span class="badge outcome-unevaluated"><span aria-hidden="true">?</span> Not evaluated</span>'
        in (check_page)
    )
    assert '<span class="badge outcome-excluded">' in result_page
    chart = check_page.split('<figure class="chart">')[1].split("</figure>")[0]
    assert chart.count('class="point point-excluded"') == 1
    assert "Excluded or not evaluated</span>" in chart


def test_the_check_pages_chart_has_no_excluded_key_when_there_are_none(
    client_as: ClientAs, world: World
) -> None:
    push_at(world.admin, "orders", day(1), ("row_count > 0", "pass", 7))

    body = client_as("viewer").get(f"/checks/{world.orders_fail.check_ref_id}").content.decode()

    assert "Excluded or not evaluated" not in body


def test_an_incident_made_from_a_soda_result_is_listed_on_its_page(
    client_as: ClientAs, world: World, soda_scan: Scan
) -> None:
    result = missing_customers(soda_scan)
    incident = incidents.create_incident(
        by=world.editor, title="Orders without customers", check_result_ids=[result.pk]
    )

    body = client_as("editor").get(f"/results/{result.pk}").content.decode()

    assert f'href="/incidents/{incident.number}">#{incident.number} Orders without customers</a>' in body


def pushed_with(world: World, name: str, diagnostics: dict[str, object]) -> int:
    """The id of an orders result of check `name` that failed with these diagnostics."""
    _, (result,) = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=day(1),
            results=[
                catalog_ingest.ResultInput(
                    data_source="warehouse",
                    dataset="orders",
                    check=catalog_ingest.CheckInput(name=name),
                    outcome="fail",
                    value=None,
                    diagnostics=diagnostics,
                )
            ],
        ),
        by=world.admin,
    )
    return result.pk


def test_a_schema_failure_says_which_column_is_missing_and_keeps_the_json_a_click_away(
    client_as: ClientAs, world: World
) -> None:
    pk = pushed_with(world, "schema", {"missing_column_names": ["fee_amount"], "present_column_names": []})

    body = client_as("viewer").get(f"/results/{pk}").content.decode()
    section = body.split('id="diagnostics-heading"')[1].split("</section>")[0]

    assert "<li>Missing column: fee_amount</li>" in section
    details = section.split('<details class="raw-diagnostics">')[1].split("</details>")[0]
    assert "<summary>" in details
    assert "&quot;missing_column_names&quot;" in details


def test_diagnostics_no_sentence_fits_are_shown_as_json_already_open(
    client_as: ClientAs, world: World
) -> None:
    pk = pushed_with(world, "custom", {"something": "new"})

    body = client_as("viewer").get(f"/results/{pk}").content.decode()

    assert '<ul class="findings">' not in body
    assert '<details class="raw-diagnostics" open>' in body
