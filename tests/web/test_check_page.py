"""The check page: definition, latest outcome, chart, results, and Create Incident from its results."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, NamedTuple

import pytest

from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import Check, CheckResult
from quell.incidents.models import Incident, TimelineEvent
from quell.web.charts import result_chart
from tests.conftest import T0, World
from tests.web.conftest import ClientAs, day, push_at, push_soda_3


@pytest.fixture
def history(world: World) -> list[CheckResult]:
    """Three more days of the orders row count: pass, warn, fail (with the world's fail, four results)."""
    results = []
    for n, (outcome, value) in enumerate([("pass", 120.0), ("warn", 3.0), ("fail", 0.0)], start=1):
        results += push_at(world.admin, "orders", day(n), ("row_count > 0", outcome, value))
    return results


def check_url(world: World) -> str:
    return f"/checks/{world.orders_fail.check_ref_id}"


def dialog_form(client_as: ClientAs, role: str, world: World) -> str:
    """The Create Incident form as the dialog loads it: htmx's GET, answered with the form alone."""
    response = client_as(role).get(f"{check_url(world)}/create-incident", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_the_check_page_shows_the_latest_outcome_and_every_result(
    client_as: ClientAs, world: World, history: list[CheckResult]
) -> None:
    body = client_as("viewer").get(check_url(world)).content.decode()

    assert "row_count &gt; 0" in body
    latest = body.split('id="latest-heading"')[1].split("</p>")[0]
    assert "Fail" in latest
    assert body.count('class="badge outcome-') >= 5  # the latest, and four results


def test_the_chart_marks_each_outcome_with_its_own_shape_and_a_legend(
    client_as: ClientAs, world: World, history: list[CheckResult]
) -> None:
    body = client_as("viewer").get(check_url(world)).content.decode()
    chart = body.split('<figure class="chart">')[1].split("</figure>")[0]

    assert chart.count('class="point point-pass"') == 1
    assert chart.count('class="point point-warn"') == 1
    assert chart.count('class="point point-fail"') == 2
    assert "<polyline" in chart
    for word in ("Pass", "Warn", "Fail"):
        assert f"</svg> {word}</span>" in chart


def test_a_check_without_values_says_there_is_nothing_to_chart(client_as: ClientAs, world: World) -> None:
    (result,) = push_at(world.admin, "customers", day(1), ("schema", "fail", None))

    body = client_as("viewer").get(f"/checks/{result.check_ref_id}").content.decode()

    assert "No result has a numeric value to chart." in body


def test_the_results_list_links_the_incidents_each_result_is_in(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = client_as("viewer").get(check_url(world)).content.decode()

    assert f'href="/incidents/{orders_incident.number}">#{orders_incident.number}</a>' in body


def result_row(body: str, result_id: int) -> str:
    """The table row of one result, from its <tr> to its </tr>."""
    table = body.split('id="results-heading"')[1].split("</table>")[0]
    before, after = table.split(f'<a href="/results/{result_id}">')
    return "<tr>" + before.rsplit("<tr>", 1)[1] + after.split("</tr>")[0]


def test_a_result_row_shows_its_time_outcome_value_diagnostics_scan_and_incidents(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    scan, (result,) = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=day(2),
            results=[
                catalog_ingest.ResultInput(
                    data_source="warehouse",
                    dataset="orders",
                    check=catalog_ingest.CheckInput(name="row_count > 0"),
                    outcome="warn",
                    value=12345.678,
                    diagnostics={"note": "<script>x</script> & é", "rows": 1000000, "ratio": 1e-07},
                )
            ],
        ),
        by=world.admin,
    )

    body = client_as("viewer").get(check_url(world)).content.decode()

    row = result_row(body, result.pk)
    # Relative to now ("2 d ago", or the day itself from a week on); exact on hover.
    assert '<time datetime="2026-11-03T06:00:00+00:00" title="2026-11-03 06:00:00 UTC" data-ago>' in row
    assert '<span class="badge outcome-warn"><span aria-hidden="true">!</span> Warn</span>' in row
    assert '<td class="num">12,345.7</td>' in row
    # Diagnostics as the template's {{ value }} writes them: escaped, numbers unlocalised and in full.
    assert (
        '<td class="diagnostics"><span><b>note</b> &lt;script&gt;x&lt;/script&gt; &amp; é</span> · '
        "<span><b>rows</b> 1000000</span> · <span><b>ratio</b> 0.0000001</span></td>"
    ) in row
    assert f'<td><a href="/scans/{scan.pk}">#{scan.pk}</a></td>' in row
    fail_row = result_row(body, world.orders_fail.pk)
    assert f'<a href="/incidents/{orders_incident.number}">#{orders_incident.number}</a>' in fail_row
    assert '<td class="diagnostics"></td>' in fail_row


def test_the_results_list_can_show_only_warn_and_fail(
    client_as: ClientAs, world: World, history: list[CheckResult]
) -> None:
    body = client_as("viewer").get(check_url(world) + "?outcome=failing").content.decode()
    table = body.split('id="results-heading"')[1]

    assert "outcome-pass" not in table
    assert "outcome-warn" in table


def result_links(body: str) -> list[str]:
    table = body.split('id="results-heading"')[1].split("</table>")[0]
    return [part.split('"')[0] for part in table.split('href="/results/')[1:]]


def test_the_results_come_newest_first_fifty_a_page_on_the_first_page_and_the_next(
    client_as: ClientAs, world: World
) -> None:
    pushed = [world.orders_fail]
    for n in range(1, 55):
        pushed += push_at(world.admin, "orders", day(n), ("row_count > 0", "pass" if n % 3 else "fail", n))
    newest_first = [str(result.pk) for result in reversed(pushed)]
    client = client_as("viewer")

    first = client.get(check_url(world)).content.decode()
    second = client.get(check_url(world) + "?page=2").content.decode()

    assert result_links(first) == newest_first[:50]
    assert result_links(second) == newest_first[50:]
    assert "Page 1 of 2 · 55 in all" in first


@pytest.mark.parametrize("role", ["admin", "manager", "editor"])
def test_the_context_menu_offers_create_incident_to_those_who_manage_incidents(
    client_as: ClientAs, world: World, role: str
) -> None:
    body = client_as(role).get(check_url(world)).content.decode()

    assert ">Create Incident</a>" in body
    dialog = body.split('<dialog id="create-incident"')[1].split("</dialog>")[0]
    assert f'<div data-load="{check_url(world)}/create-incident">' in dialog


def test_the_check_page_leaves_the_form_for_the_dialog_to_load_when_opened(
    client_as: ClientAs, world: World
) -> None:
    body = client_as("editor").get(check_url(world)).content.decode()

    assert 'id="create-incident-form"' not in body
    assert 'id="id_lead"' not in body
    assert f'id="result-{world.orders_fail.pk}"' not in body


def test_the_dialog_loads_just_the_form_with_its_csrf_token(client_as: ClientAs, world: World) -> None:
    body = dialog_form(client_as, "editor", world)

    assert body.lstrip().startswith('<form id="create-incident-form"')
    assert "<html" not in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert '<select name="lead"' in body


def test_the_context_menu_of_a_viewer_has_no_create_incident(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get(check_url(world)).content.decode()

    assert 'id="check-menu"' in body
    assert "Create Incident" not in body
    assert "<dialog" not in body


def test_the_dialog_offers_only_this_checks_warn_and_fail_results(
    client_as: ClientAs, world: World, history: list[CheckResult]
) -> None:
    dialog = dialog_form(client_as, "editor", world)
    passing, warn, fail = history

    assert f'id="result-{warn.pk}"' in dialog
    assert f'id="result-{fail.pk}"' in dialog
    assert f'id="result-{world.orders_fail.pk}"' in dialog
    assert f'id="result-{passing.pk}"' not in dialog
    assert f'id="result-{world.orders_fail_2.pk}"' not in dialog  # another check's result


def create(client_as: ClientAs, world: World, role: str = "editor", **fields: object) -> Any:
    data: dict[str, object] = {
        "title": "Orders are empty",
        "description": "No rows since Tuesday.",
        "severity": "critical",
        "lead": world.manager.pk,
        "results": [world.orders_fail.pk],
        **fields,
    }
    return client_as(role).post(f"{check_url(world)}/create-incident", data)


def test_saving_the_dialog_creates_the_incident_and_lands_on_it(
    client_as: ClientAs, world: World, history: list[CheckResult]
) -> None:
    response = create(client_as, world, results=[world.orders_fail.pk, history[2].pk])

    incident = Incident.objects.get()
    assert response["Location"] == f"/incidents/{incident.number}"
    assert incident.title == "Orders are empty"
    assert incident.description == "No rows since Tuesday."
    assert incident.severity == "critical"
    assert incident.lead == world.manager
    assert incident.reporter == world.editor
    assert set(incident.check_results.values_list("pk", flat=True)) == {world.orders_fail.pk, history[2].pk}


def test_saving_from_htmx_redirects_the_browser_to_the_incident(client_as: ClientAs, world: World) -> None:
    data = {
        "title": "Orders are empty",
        "severity": "major",
        "lead": world.editor.pk,
        "results": [world.orders_fail.pk],
    }

    response = client_as("editor").post(f"{check_url(world)}/create-incident", data, HTTP_HX_REQUEST="true")

    assert response["HX-Redirect"] == f"/incidents/{Incident.objects.get().number}"


def test_a_missing_name_is_shown_at_the_field_and_creates_nothing(client_as: ClientAs, world: World) -> None:
    response = create(client_as, world, title="  ")

    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_title_error"' in body
    assert not Incident.objects.exists()


def test_choosing_no_result_is_shown_at_the_results_and_creates_nothing(
    client_as: ClientAs, world: World
) -> None:
    response = create(client_as, world, results=[])

    assert response.status_code == 400
    assert "Select one or more warn or fail results." in response.content.decode()
    assert not Incident.objects.exists()


def test_an_htmx_error_answers_only_the_form_for_the_dialog(client_as: ClientAs, world: World) -> None:
    data = {"title": "", "severity": "major", "lead": world.editor.pk, "results": [world.orders_fail.pk]}

    response = client_as("editor").post(f"{check_url(world)}/create-incident", data, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<form id="create-incident-form"')
    assert "<html" not in body


def test_a_viewer_cannot_create_an_incident_even_by_posting_the_form(
    client_as: ClientAs, world: World
) -> None:
    response = create(client_as, world, role="viewer", lead=world.viewer.pk)

    assert response.status_code == 403
    assert not Incident.objects.exists()
    assert not TimelineEvent.objects.exists()


def test_an_outsider_posting_the_form_is_told_the_check_does_not_exist(
    client_as: ClientAs, world: World
) -> None:
    response = create(client_as, world, role="outsider", lead=world.outsider.pk)

    assert response.status_code == 404
    assert not Incident.objects.exists()


def test_the_lead_must_be_someone_who_can_see_the_dataset(client_as: ClientAs, world: World) -> None:
    response = create(client_as, world, lead=world.outsider.pk)

    assert response.status_code == 400
    assert 'id="id_lead_error"' in response.content.decode()
    assert not Incident.objects.exists()


def test_the_lead_picker_lists_only_people_who_can_manage_the_datasets_incidents(
    client_as: ClientAs, world: World
) -> None:
    body = dialog_form(client_as, "editor", world)
    picker = body.split('id="id_lead"')[1].split("</select>")[0]

    for name in ("Alice", "Manager", "Editor"):
        assert f">{name}</option>" in picker
    assert "Viewer" not in picker
    assert "Outsider" not in picker


# --- Huge values ----------------------------------------------------------------------------------

NUMBER_IN_MARKUP = re.compile(r'\s(?:points|x|y|x1|x2|y1|y2|cx|cy)="([^"]*)"')


class Row(NamedTuple):
    id: int
    data_timestamp: dt.datetime
    outcome: str
    value: float | None


def chart_of(client_as: ClientAs, result: CheckResult) -> str:
    body = client_as("viewer").get(f"/checks/{result.check_ref_id}").content.decode()
    return body.split('<figure class="chart">')[1].split("</figure>")[0]


def coordinates(chart: str) -> list[float]:
    return [float(n) for found in NUMBER_IN_MARKUP.findall(chart) for n in re.split(r"[ ,]", found) if n]


@pytest.mark.parametrize(
    "values",
    [(1.7e308, -1.7e308, 0.0), (-1.7e308, -1.7e308), (1.7e308, 1.7e308)],
    ids=["apart", "low", "high"],
)
def test_values_near_the_largest_float_chart_with_finite_coordinates(
    client_as: ClientAs, world: World, values: tuple[float, ...]
) -> None:
    results = [
        push_at(world.admin, "customers", day(n), ("sum(amount)", "pass", v))[0] for n, v in enumerate(values)
    ]

    chart = chart_of(client_as, results[0])

    assert not re.search(r"\b(nan|inf)\b", chart, re.IGNORECASE)
    assert coordinates(chart)
    assert all(math.isfinite(n) and -1000 < n < 1000 for n in coordinates(chart))
    assert f"{values[0]:.3g}" in chart  # a label such as 1.7e+308, not 309 digits


def test_infinite_and_nan_values_are_left_out_of_the_chart_like_missing_ones() -> None:
    rows = [
        Row(n, T0 + dt.timedelta(days=n), "pass", value)
        for n, value in enumerate([1.0, math.inf, -math.inf, math.nan, 3.0])
    ]

    chart = result_chart(rows)

    assert chart is not None
    assert [p.value for p in chart.points] == [1.0, 3.0]
    assert chart.without_value == 3
    assert all(math.isfinite(p.y) for p in chart.points)


def test_the_chart_draws_the_warn_and_fail_thresholds_soda_sent(client_as: ClientAs, world: World) -> None:
    push_soda_3(world)
    check = Check.objects.get(name="max(amount) warn when > 500 fail when > 1000")

    body = client_as("viewer").get(f"/checks/{check.pk}").content.decode()
    chart = body.split('<figure class="chart">')[1].split("</figure>")[0]

    assert chart.count('<line class="threshold threshold-fail"') == 1
    assert chart.count('<line class="threshold threshold-warn"') == 1
    assert "fail &gt; 1,000</text>" in chart
    assert "warn &gt; 500</text>" in chart
    assert '<rect class="band band-fail"' in chart
    assert "Fails when the value is above 1,000. Warns when the value is above 500." in chart


def test_the_value_axis_has_round_ticks_and_the_time_axis_dates() -> None:
    rows = [
        Row(n, T0 + dt.timedelta(days=n, hours=6), "pass", v)
        for n, v in zip(range(2, 31, 7), [3, 17, 42, 88, 5], strict=True)
    ]

    chart = result_chart(rows)

    assert chart is not None
    assert [t.label for t in chart.y_ticks] == ["0", "20", "40", "60", "80", "100"]
    assert [t.label for t in chart.x_ticks] == ["4 Nov", "11 Nov", "18 Nov", "25 Nov"]
    positions = [t.position for t in chart.x_ticks]
    assert positions == sorted(positions)
    assert chart.plot_left <= positions[0]
    assert positions[-1] <= chart.plot_right


def test_a_small_step_gives_ticks_with_the_decimals_it_needs() -> None:
    rows = [Row(n, T0 + dt.timedelta(hours=n), "pass", v) for n, v in enumerate([0.91, 0.95, 0.99])]

    chart = result_chart(rows)

    assert chart is not None
    assert [t.label for t in chart.y_ticks] == ["0.90", "0.92", "0.94", "0.96", "0.98", "1.00"]


def test_the_chart_caption_says_how_many_results_it_shows_and_their_dates(
    client_as: ClientAs, world: World
) -> None:
    days = [n for n in range(2, 31) if n != 15]  # 3 Nov to 1 Dec, 28 days
    results = [push_at(world.admin, "customers", day(n), ("sum(fee)", "pass", n))[0] for n in days]

    chart = chart_of(client_as, results[0])

    assert "28 results from 3 Nov to 1 Dec." in chart
    assert "90" not in chart.split('class="muted chart-caption">')[1]
