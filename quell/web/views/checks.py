"""The check page (definition, latest outcome, chart, results), a result's page, and Create Incident."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import Context
from django.template.base import render_value_in_context
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from quell.accounts.models import User
from quell.catalog import queries as catalog_queries
from quell.catalog.models import FAILING_OUTCOMES, Check
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from quell.lib.errors import Forbidden, Invalid
from quell.web.charts import result_chart
from quell.web.diagnostics import describe
from quell.web.forms import INCIDENT_FIELDS, IncidentCreateForm, as_id
from quell.web.pickers import pick, search_term
from quell.web.templatetags.quell_tags import AGO, OUTCOMES, moment_html, now_here, num, outcome_badge
from quell.web.views.base import apply_error, page, paginate, signed_in
from quell.web.views.incidents import DATASET_SHOWN
from quell.web.views.mutes import check_mute_context, mark_muted_checks

CHART_POINTS = 90
FAILING = [str(outcome) for outcome in FAILING_OUTCOMES]
PICKABLE_RESULTS = 100


def _create_form(
    check: Check, by: User, data: Any = None, search: str = "", chosen: str | None = None
) -> IncidentCreateForm:
    """The Create Incident form; its Lead <select> lists the caller, the chosen lead and the first
    matches of `search` when there are too many candidates to list (any candidate is still valid)."""
    failing = list(catalog_queries.list_check_results(check, by=by, outcomes=FAILING)[:PICKABLE_RESULTS])
    leads = incident_queries.lead_candidates({check.dataset_id}, by=by)
    if data is not None:
        chosen = data.get("lead")
    chosen_id = as_id(chosen) if chosen else None
    keep = [by.pk] if chosen_id is None else [chosen_id, by.pk]
    # pick() reads the matches only for a search; building them otherwise would cost queries for nothing.
    matches = incident_queries.lead_candidates({check.dataset_id}, by=by, search=search) if search else None
    picker = pick(leads, search=search, matches=matches, keep=keep)
    form = IncidentCreateForm(
        data, leads=leads, lead_options=picker.options, results=failing, initial={"lead": keep[0]}
    )
    form.failing_results = failing  # type: ignore[attr-defined]
    form.lead_picker = picker  # type: ignore[attr-defined]
    return form


@page
@require_GET
def check_page(request: HttpRequest, check_id: int) -> HttpResponse:
    by = signed_in(request)
    check = catalog_queries.get_check(check_id, by=by)
    outcome = request.GET.get("outcome", "")
    outcomes = FAILING if outcome == "failing" else None
    # Rows of the columns the page shows rather than a CheckResult (and its Dataset) per result.
    results = paginate(
        request,
        catalog_queries.list_check_results(check, by=by, outcomes=outcomes).values_list(
            *ROW_COLUMNS, named=True
        ),
    )
    recent = list(
        catalog_queries.list_check_results(check, by=by).values_list(*ROW_COLUMNS, named=True)[:CHART_POINTS]
    )
    can_create = incident_queries.may_manage_incidents_on(check.dataset, by=by)
    if outcomes is None and results.number == 1 and results.paginator.per_page <= CHART_POINTS:
        # The first page of all results is the head of the chart's newest results (the same query in
        # the same order), so it is not read a second time.
        results.object_list = recent[: results.paginator.per_page]
    context: dict[str, Any] = {
        "check": check,
        "dataset": check.dataset,
        "latest": recent[0] if recent else None,
        "chart": result_chart(recent),
        "chart_points": CHART_POINTS,
        "results": results,
        "result_rows": result_rows(
            results, incident_queries.linked_incidents([r.id for r in results], by=by)
        ),
        "outcome": outcome,
        # The Create Incident dialog's form is loaded when the dialog opens (create_incident).
        "can_create": can_create,
        # Muting takes the same permission as creating an incident (Manage incidents).
        **check_mute_context(check, can_mute=can_create),
    }
    return render(request, "web/check.html", context)


# What the check page shows of a result (its chart, its latest outcome and its table of results).
ROW_COLUMNS = ("id", "data_timestamp", "outcome", "value", "diagnostics", "scan_id")


def result_rows(results: Iterable[Any], linked: dict[int, list[Incident]]) -> list[SafeString]:
    """The check page's table rows, one <tr> each, for rows of ROW_COLUMNS.

    Built here rather than in the template: with 50 results, the template's url tags, date filters
    and nested loops per row were half of the page's time. Values are shown as `{{ value }}` shows
    them (render_value_in_context) and escaped by format_html.
    """
    result_url = _url_of("web:check_result")
    scan_url = _url_of("web:scan")
    incident_url = _url_of("web:incident")
    badges = {outcome: outcome_badge(outcome) for outcome in OUTCOMES}
    now = now_here()
    rows = []
    for r in results:
        diagnostics = format_html_join(
            " · ",
            "<span><b>{}</b> {}</span>",
            # A JSON field may hold other than an object; the template showed nothing for it.
            ((_shown(key), _shown(value)) for key, value in _items(r.diagnostics)),
        )
        scan = (
            format_html('<a href="{}">#{}</a>', scan_url(r.scan_id), _shown(r.scan_id)) if r.scan_id else "—"
        )
        linked_incidents = format_html_join(
            ", ",
            '<a href="{}">#{}</a>',
            ((incident_url(i.number), _shown(i.number)) for i in linked.get(r.id, [])),
        )
        rows.append(
            format_html(
                '<tr><td><a href="{}">{}</a></td><td>{}</td>'
                '<td class="num">{}</td><td class="diagnostics">{}</td><td>{}</td><td>{}</td></tr>',
                result_url(r.id),
                moment_html(r.data_timestamp, AGO, now),
                badges.get(r.outcome) or outcome_badge(r.outcome),
                num(r.value),
                diagnostics,
                scan,
                linked_incidents,
            )
        )
    return rows


def _items(value: Any) -> Iterable[tuple[Any, Any]]:
    return value.items() if isinstance(value, dict) else ()


_PLAIN = Context(autoescape=True)


def _shown(value: Any) -> str:
    """A value as the template's `{{ value }}` writes it (localised, escaped)."""
    return render_value_in_context(value, _PLAIN)


_ID_MARK = 918_273_645


def _url_of(name: str) -> Callable[[int], str]:
    """reverse(name, args=[id]) for many ids at the price of one reverse (20 µs each, 50 to 150 a page)."""
    prefix, _, suffix = reverse(name, args=[_ID_MARK]).partition(str(_ID_MARK))
    return lambda pk: f"{prefix}{pk}{suffix}"


@page
@require_GET
def lead_picker(request: HttpRequest, check_id: int) -> HttpResponse:
    """The Create Incident form's Lead <select>, narrowed by its search box, for htmx to swap in."""
    by = signed_in(request)
    check = catalog_queries.get_check(check_id, by=by)
    incident_queries.require_manage_incidents_on(check.dataset, by=by)
    form = _create_form(
        check, by, search=search_term(request, "lead_q"), chosen=request.GET.get("lead", "")[:20]
    )
    return HttpResponse(str(form["lead"]))


@dataclass(frozen=True)
class SampleTable:
    """A failed-rows sample as a table: a heading per column, however many the rows have."""

    sample: catalog_queries.FailedRows
    headings: list[str]


def _sample_table(sample: catalog_queries.FailedRows) -> SampleTable:
    width = max([len(sample.columns), *(len(row) for row in sample.rows)])
    names = [str(column.get("name") or "") for column in sample.columns]
    headings = [names[n] if n < len(names) and names[n] else f"Column {n + 1}" for n in range(width)]
    return SampleTable(sample, headings)


@page
@require_GET
def check_result(request: HttpRequest, result_id: int) -> HttpResponse:
    by = signed_in(request)
    result = catalog_queries.get_check_result(result_id, by=by)
    samples: list[SampleTable] = []
    samples_refused = ""
    try:
        samples = [_sample_table(sample) for sample in catalog_queries.failed_rows(result.pk, by=by)]
    except Forbidden as refused:
        samples_refused = refused.message
    context = {
        "result": result,
        "check": result.check_ref,
        "dataset": result.dataset,
        "diagnostics": json.dumps(result.diagnostics, indent=2, ensure_ascii=False, sort_keys=True),
        "findings": describe(result.diagnostics),
        "incidents": incident_queries.linked_incidents([result.pk], by=by).get(result.pk, []),
        "samples": samples,
        "samples_refused": samples_refused,
        "samples_disabled": catalog_queries.samples_disabled(),
    }
    return render(request, "web/check_result.html", context)


@page
@require_http_methods(["GET", "POST"])
def create_incident(request: HttpRequest, check_id: int) -> HttpResponse:
    """The Create Incident form: in the check page's dialog, or as a page of its own without scripts.

    When the check is already in open incidents, each result names those it is in, and the form
    offers "Add to #N" (a submit button named `add_to`) beside creating a new one. Creating from
    results in an open incident is refused (the service's DuplicateIncident, 409) with that
    incident's "Add to #N" and a box to tick, "Open a separate incident anyway", that confirms.
    """
    by = signed_in(request)
    check = catalog_queries.get_check(check_id, by=by)
    incident_queries.require_manage_incidents_on(check.dataset, by=by)
    # Without scripts the lead search box submits a GET of this page (the small form `lead-search`
    # outside the create form, as a GET cannot carry what was typed into a POST form), which lists
    # the matches; with htmx it swaps in the <select> from lead_picker as one types.
    form = _create_form(
        check,
        by,
        request.POST if request.method == "POST" else None,
        search=search_term(request, "lead_q"),
        chosen=request.GET.get("lead", "")[:20],
    )
    open_incidents = incident_queries.open_incidents_of_check(check, by=by)
    in_open = incident_queries.open_incidents_of_results([r.pk for r in form.failing_results], by=by)  # type: ignore[attr-defined]
    status = 200
    duplicate: incidents.DuplicateIncident | None = None
    if request.method == "POST" and "add_to" in request.POST:
        status = 400
        target = _add_to_open_incident(request, by, form, open_incidents, in_open)
        if target is not None:
            return _land_on(request, target, "#results")
    elif request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident = incidents.create_incident(
                    by=by,
                    title=data["title"],
                    description=data["description"],
                    severity=data["severity"],
                    lead_id=data["lead"],
                    check_result_ids=data["results"],
                    allow_duplicate=data["allow_duplicate"],
                )
            except incidents.DuplicateIncident as refused:
                status = 409
                duplicate = refused
                open_incidents = _offering(open_incidents, refused.incident, by)
            except Invalid as error:
                apply_error(form, error, INCIDENT_FIELDS)
            else:
                return _land_on(request, incident)
    template = "web/_create_incident_form.html" if request.htmx else "web/create_incident.html"  # type: ignore[attr-defined]
    context = {
        "check": check,
        "dataset": check.dataset,
        "form": form,
        "result_choices": [(r, in_open.get(r.pk, [])) for r in form.failing_results],  # type: ignore[attr-defined]
        "open_incidents": open_incidents,
        "duplicate": duplicate,
    }
    return render(request, template, context, status=status)


def _offering(offered: list[Incident], incident: Incident, by: User) -> list[Incident]:
    """The form's "Add to #N" incidents with `incident` among them: a refused duplicate's may be older
    than the newest few the dialog offers."""
    if any(i.pk == incident.pk for i in offered):
        return offered
    incident.can_change = incident_queries.can_manage(incident, by)  # type: ignore[attr-defined]
    return [*offered, incident]


def _add_to_open_incident(
    request: HttpRequest,
    by: User,
    form: IncidentCreateForm,
    offered: list[Incident],
    in_open: dict[int, list[Incident]],
) -> Incident | None:
    """The form's "Add to #N": the chosen results into one of the check's open incidents it offered
    (the newest few, or one holding a listed result, as a refused duplicate names), through
    attach_check_results (which refuses, 403, a caller who may not change it). The incident, or None
    with the reason on the form when nothing was added."""
    chosen = form.clean_results_only()
    holding = (incident for listed in in_open.values() for incident in listed)
    target = next((i for i in [*offered, *holding] if str(i.pk) == request.POST.get("add_to")), None)
    if target is None:
        # Resolved, or no longer among the newest few, since the form was shown.
        form.add_error(None, "That incident is no longer one of this check's open incidents. Choose again.")
        return None
    if chosen is None:
        return None
    try:
        incidents.attach_check_results(target.pk, chosen, by=by)
    except Invalid as error:
        apply_error(form, error, INCIDENT_FIELDS)
        return None
    added = sum(1 for pk in chosen if target not in in_open.get(pk, []))
    if added:
        messages.success(request, f"Added {added} check result{pluralize(added)} to #{target.number}.")
    else:
        messages.info(request, f"The chosen check results were already in #{target.number}.")
    return target


def _land_on(request: HttpRequest, incident: Incident, anchor: str = "") -> HttpResponse:
    """The incident's page after a write: an htmx redirect for the dialog, a plain one without scripts."""
    url = reverse("web:incident", args=[incident.number]) + anchor
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRedirect(url)
    return redirect(url)


# --- All checks -----------------------------------------------------------------------------------

# The Outcome filter's choices: "failing" is warn or fail, as on the check page.
OUTCOME_FILTERS = {"failing": "Warn or fail", **{value: label for value, (_, label) in OUTCOMES.items()}}


@page
@require_GET
def checks_page(request: HttpRequest) -> HttpResponse:
    """Every check the caller can view, the ones that warn or fail with no open incident first."""
    by = signed_in(request)
    search = search_term(request, "q")
    outcome = request.GET.get("outcome", "")
    outcomes = FAILING if outcome == "failing" else [outcome] if outcome in OUTCOMES else None
    dataset_id = as_id(request.GET.get("dataset", ""))
    dataset_search = search_term(request, "dataset_q")
    # The same options and search as the Incidents page's Dataset filter (and its htmx swap).
    dataset_picker = pick(
        catalog_queries.list_datasets(by=by).only(*DATASET_SHOWN),
        search=dataset_search,
        matches=catalog_queries.list_datasets(by=by, matching=dataset_search).only(*DATASET_SHOWN),
        keep=[dataset_id] if dataset_id else [],
    )
    checks = incident_queries.checks_needing_attention_first(
        catalog_queries.list_checks(by=by, dataset_id=dataset_id, outcomes=outcomes, search=search)
    )
    # A check row holds its definition and attributes; the table shows none of them.
    rows = paginate(request, checks.defer("definition", "attributes", "location", "dataset__contract"))
    mark_muted_checks(rows)
    return render(
        request,
        "web/checks.html",
        {
            "checks": rows,
            "q": search,
            "outcome": outcome if outcome in OUTCOME_FILTERS else "",
            "outcome_filters": OUTCOME_FILTERS,
            "dataset_picker": dataset_picker,
            "chosen_dataset": {str(dataset_id)} if dataset_id else set(),
            "filtered": bool(search or outcomes or dataset_id),
        },
    )
