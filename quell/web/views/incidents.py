"""The org-wide Incidents page, the dataset Incidents tab's list, and the incident page with its edits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from quell.accounts import queries as account_queries
from quell.accounts.models import User
from quell.catalog import queries as catalog_queries
from quell.catalog.models import Check, CheckResult, Dataset
from quell.incidents import details as incident_details
from quell.incidents import paging as incident_paging
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import OPEN_STATUSES, Incident, Status
from quell.integrations import services as integrations
from quell.lib.errors import Conflict, Forbidden, Invalid
from quell.web.charts import SMALL, Chart, result_chart
from quell.web.forms import (
    INCIDENT_FIELDS,
    OPEN,
    AttachResultsForm,
    CommentForm,
    IncidentEditForm,
    IncidentFilterForm,
    as_id,
)
from quell.web.pickers import PLAIN_SELECT_MAX, Picker, pick, search_term
from quell.web.views.base import PAGE_SIZE, apply_error, form_post, page, signed_in
from quell.web.views.bulk import bulk_bar
from quell.web.views.mutes import mark_muted_checks

PICKER_SIZE = 50
# How many of those who can change an incident its read-only page names.
CHANGERS_SHOWN = 5
# The incident page's small charts: how many linked checks get one, and how many of each one's
# newest results it draws (one query for all of them whatever the numbers).
CHARTED_CHECKS = 12
CHARTED_RESULTS = 30


# --- Lists ----------------------------------------------------------------------------------------


def incident_list(request: HttpRequest, by: User, dataset: Dataset | None = None) -> dict[str, Any]:
    """The context of a filtered, sorted, paginated list of incidents with counts per status.

    On a dataset's tab the dataset filter is fixed to it; on the org-wide page it is a filter.
    """
    # Only people who lead or reported something: a filter on anyone else finds nothing. The form
    # checks chosen ids against these querysets; the pickers list only a bounded few of them.
    people = incident_queries.people_in_incidents(by=by)
    datasets = None if dataset else catalog_queries.list_datasets(by=by)
    form = IncidentFilterForm(request.GET, people=people, datasets=datasets)
    form.is_valid()
    pickers = filter_pickers(request, by, form, people, datasets)
    statuses: list[str] = []
    for value in form.value("status"):
        statuses += list(OPEN_STATUSES) if value == OPEN else [value]
    filters = incident_queries.IncidentFilters(
        statuses=statuses,
        severities=form.value("severity"),
        resolution_reasons=form.value("reason"),
        lead_ids=form.value("lead"),
        reporter_ids=form.value("reporter"),
        dataset_ids=[dataset.pk] if dataset else form.value("dataset"),
        search=form.value("q"),
    )
    # Counts per status follow every filter but the status one, so each count says what choosing it gives.
    chosen_rows, tally = incident_queries.find_incidents(filters, by=by)
    counts = tally.counts
    sort = form.value("sort") or "created"
    rows = incident_details.for_list(chosen_rows, by)
    # "Next" links carry a cursor (`after`), so a deep page costs what the first does; `page`
    # (from 1) still works for links made by hand.
    page_number = request.GET.get("page", "1")
    found = incident_paging.page_of(
        rows,
        tally,
        statuses,
        sort=sort,
        size=PAGE_SIZE,
        page=int(page_number) - 1 if page_number.isdigit() and 0 < int(page_number) <= 100_000 else 0,
        cursor=request.GET.get("after", "")[:1000],
    )
    chosen = set(form.value("status"))
    open_count, open_exact = tally.total(list(OPEN_STATUSES))
    all_count, all_exact = tally.total()
    return {
        "filter_form": form,
        "status_counts": [
            (value, label, counts.get(value, 0), value in chosen, value in tally.at_least)
            for value, label in Status.choices
        ],
        "open_count": open_count,
        "open_exact": open_exact,
        "all_count": all_count,
        "all_exact": all_exact,
        "open_chosen": OPEN in chosen,
        "any_status_chosen": bool(chosen),
        "filtered": any(
            form.value(name) for name in ("q", "status", "severity", "reason", "lead", "reporter", "dataset")
        ),
        "incidents": found.rows,
        "pager": {
            "number": found.number + 1,
            "pages": max(1, math.ceil(found.total / PAGE_SIZE)),
            "total": found.total,
            "exact": found.total_exact,
            "next": found.next_cursor,
        },
        **pickers,
        "sort": sort,
        # The raw choices, as strings, so the filter form shows what the URL says.
        "chosen": {name: set(request.GET.getlist(name)) for name in form.fields},
        # The form around the list that changes or merges the incidents ticked in it.
        **bulk_bar(request, by, list(found.rows)),
    }


def filter_pickers(
    request: HttpRequest,
    by: User,
    form: IncidentFilterForm,
    people: QuerySet[User],
    datasets: QuerySet[Dataset] | None,
    only: str = "",
) -> dict[str, Picker[Any]]:
    """The Lead, Reporter and Dataset filters' options (`only` one of them, for a search swap).

    Each keeps what the URL chose; Lead keeps the caller too, the likeliest lead to look for.
    """
    pickers: dict[str, Picker[Any]] = {}
    # Only what the options show: a dataset row holds its contract, and the page builds up to 300
    # rows for its pickers.
    people = people.only(*PERSON_SHOWN)
    names = [name for name in ("lead", "reporter") if only in ("", name)]
    # Lead and Reporter offer the same people: one read of the first rows serves both.
    first_people = list(people[: PLAIN_SELECT_MAX + 1]) if len(names) > 1 else None
    for name in names:
        search = search_term(request, f"{name}_q")
        pickers[f"{name}_picker"] = pick(
            people,
            search=search,
            matches=incident_queries.people_in_incidents(by=by, search=search).only(*PERSON_SHOWN),
            keep=[*form.value(name), *([by.pk] if name == "lead" else [])],
            head=first_people,
        )
    if datasets is not None and only in ("", "dataset"):
        search = search_term(request, "dataset_q")
        pickers["dataset_picker"] = pick(
            datasets.only(*DATASET_SHOWN),
            search=search,
            matches=catalog_queries.list_datasets(by=by, matching=search).only(*DATASET_SHOWN),
            keep=form.value("dataset"),
        )
    return pickers


# The fields a filter's options show (_filter_picker.html).
PERSON_SHOWN = ("pk", "name", "email")
DATASET_SHOWN = ("pk", "name", "data_source__name")


@page
@require_GET
def filter_picker(request: HttpRequest, name: str) -> HttpResponse:
    """One filter's <select>, narrowed by its search box, for htmx to swap in as one types."""
    by = signed_in(request)
    if name not in ("lead", "reporter", "dataset"):
        raise Http404("No such filter.")
    people = incident_queries.people_in_incidents(by=by)
    datasets = catalog_queries.list_datasets(by=by) if name == "dataset" else None
    form = IncidentFilterForm(request.GET, people=people, datasets=datasets)
    pickers = filter_pickers(request, by, form, people, datasets, only=name)
    chosen = {str(pk) for pk in form.value(name)}
    return render(
        request,
        "web/_filter_picker.html",
        {"name": name, "picker": pickers[f"{name}_picker"], "chosen": chosen},
    )


@page
@require_GET
def incidents_page(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    return render(request, "web/incidents.html", incident_list(request, by))


# --- One incident ---------------------------------------------------------------------------------


def _edit_initial(incident: Incident) -> dict[str, Any]:
    return {
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "lead": incident.lead_id,
        "resolution_notes": incident.resolution_notes,
        "resolution_reason": incident.resolution_reason,
        "version": incident.version,
    }


def _edit_form(
    incident: Incident, by: User, data: Any = None, search: str = "", chosen: str | None = None
) -> IncidentEditForm:
    """The edit form, its Lead <select> listing a bounded few candidates (any candidate is valid).

    The current lead is listed first and stays valid even if they lost access since, so the form
    still saves; the lead chosen in a form being shown again, and the caller, are listed too.
    """
    if data is not None:
        chosen = data.get("lead")
    chosen_id = as_id(chosen) if chosen else None
    dataset_ids = {ds.pk for ds in incident.visible_datasets}  # type: ignore[attr-defined]
    leads = incident_queries.lead_candidates(dataset_ids, by=by)
    picker = pick(
        leads,
        search=search,
        matches=incident_queries.lead_candidates(dataset_ids, by=by, search=search),
        keep=[by.pk] if chosen_id is None else [chosen_id, by.pk],
        first=[incident.lead],
    )
    initial = _edit_initial(incident)
    if chosen_id is not None:
        initial["lead"] = chosen_id
    form = IncidentEditForm(
        data, initial=initial, leads=leads, lead_options=picker.options, current_lead=incident.lead_id
    )
    form.lead_picker = picker  # type: ignore[attr-defined]
    return form


class _ChartRow(NamedTuple):
    id: int
    data_timestamp: datetime
    outcome: str
    value: float | None
    diagnostics: dict[str, Any]


@dataclass(frozen=True)
class LinkedChart:
    check: Check
    chart: Chart | None


def linked_check_charts(incident: Incident, by: User) -> tuple[list[LinkedChart], int]:
    """A small chart of each check the incident's visible results come from (the first CHARTED_CHECKS,
    in the order the results list shows them), and how many more checks there are."""
    checks: dict[int, Check] = {}
    for link in incident.visible_links:  # type: ignore[attr-defined]
        checks.setdefault(link.check_result.check_ref_id, link.check_result.check_ref)
    charted = list(checks)[:CHARTED_CHECKS]
    rows: dict[int, list[_ChartRow]] = {pk: [] for pk in charted}
    if charted:
        for row in catalog_queries.recent_results_of_checks(charted, by=by, per_check=CHARTED_RESULTS):
            thresholds = {"fail": row["diagnostics__fail"], "warn": row["diagnostics__warn"]}
            rows[row["check_ref_id"]].append(
                _ChartRow(row["id"], row["data_timestamp"], row["outcome"], row["value"], thresholds)
            )
    charts = [
        LinkedChart(checks[pk], result_chart(rows[pk], size=SMALL, key=f"check-{pk}-chart")) for pk in charted
    ]
    return charts, len(checks) - len(charted)


def _render_incident(
    request: HttpRequest,
    incident: Incident,
    *,
    edit_form: IncidentEditForm | None = None,
    comment_form: CommentForm | None = None,
    attach_form: AttachResultsForm | None = None,
    conflict: list[Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    by = signed_in(request)
    events = incident_queries.timeline(incident, by=by)
    can_edit = incident_queries.can_manage(incident, by)
    # Its results' checks that are muted are marked, as in every list of checks.
    mark_muted_checks(
        [link.check_result for link in incident.visible_links],  # type: ignore[attr-defined]
        check_id="check_ref_id",
    )
    # A lead made before leads needed Manage incidents keeps the incident; the page says they cannot act.
    lead_can_act = (
        can_edit if incident.lead_id == by.pk else incident_queries.can_manage(incident, incident.lead)
    )
    lead_ids: set[int] = {incident.lead_id}
    for event in [*events, *(conflict or [])]:
        if event.field == "lead":
            lead_ids |= {value for value in (event.old_value, event.new_value) if isinstance(value, int)}
    context: dict[str, Any] = {
        "incident": incident,
        "events": events,
        "people": account_queries.list_people(by=by).in_bulk(lead_ids),
        "can_edit": can_edit,
        "conflict": conflict,
        # Links receivers gave back (a Jira ticket, a Slack thread).
        "integration_links": integrations.incident_links(incident, by=by),
        "lead_can_act": lead_can_act,
    }
    context["linked_charts"], context["uncharted_checks"] = linked_check_charts(incident, by)
    context["chart_points"] = CHARTED_RESULTS
    if can_edit:
        # Without scripts the lead search box submits a GET of this page (the small form
        # `lead-search` outside the edit form), which lists the matches; with htmx it swaps in
        # the <select> from lead_picker as one types. Either way saving posts the edit form alone.
        context["edit_form"] = edit_form or _edit_form(incident, by, search=search_term(request, "lead_q"))
        context["comment_form"] = comment_form or CommentForm()
        context["attach_form"] = attach_form or AttachResultsForm()
        search = request.GET.get("results_q", "")[:200]
        context["picker_search"] = search
        context["picker"] = results_to_include(incident, by, search)
        context["picker_size"] = PICKER_SIZE
    else:
        # Who can change it, so a page that is read-only says whom to ask (an editor's Lead picker
        # lists them). Those who may lead are exactly those who may change it (lead_candidates).
        dataset_ids = {ds.pk for ds in incident.visible_datasets}  # type: ignore[attr-defined]
        changers = list(
            incident_queries.lead_candidates(dataset_ids, by=by).only(*PERSON_SHOWN)[: CHANGERS_SHOWN + 1]
        )
        context["changers"] = changers[:CHANGERS_SHOWN]
        context["changers_more"] = len(changers) > CHANGERS_SHOWN
    return render(request, "web/incident.html", context, status=status)


@page
@require_GET
def incident_page(request: HttpRequest, number: int) -> HttpResponse:
    by = signed_in(request)
    return _render_incident(request, incident_queries.get_incident_by_number(number, by=by))


@page
@form_post("web:incident", "number", anchor="#edit-form")
def edit_incident(request: HttpRequest, number: int) -> HttpResponse:
    by = signed_in(request)
    incident = incident_queries.get_incident_by_number(number, by=by)
    form = _edit_form(incident, by, request.POST)
    if not form.is_valid():
        return _render_incident(request, incident, edit_form=form, status=400)
    data = form.cleaned_data
    try:
        incidents.update_incident(
            incident.pk,
            by=by,
            version=data["version"],
            title=data["title"],
            description=data["description"],
            severity=data["severity"],
            status=data["status"],
            lead_id=data["lead"],
            resolution_notes=data["resolution_notes"],
            # The select still shows the reason when reopening, which clears it (the service).
            resolution_reason=(data["resolution_reason"] or None)
            if data["status"] == Status.RESOLVED
            else None,
        )
    except Conflict:
        current = incident_queries.get_incident(incident.pk, by=by)
        changes = incident_queries.changes_since(current, data["version"], by=by)
        # Keep what they typed, but at the current version: saving again is then a deliberate overwrite.
        resubmit = request.POST.copy()
        resubmit["version"] = str(current.version)
        again = _edit_form(current, by, resubmit)
        again.is_valid()
        return _render_incident(request, current, edit_form=again, conflict=changes, status=409)
    except Invalid as error:
        apply_error(form, error, INCIDENT_FIELDS)
        return _render_incident(request, incident, edit_form=form, status=400)
    messages.success(request, f"Saved incident #{incident.number}.")
    return redirect("web:incident", number=incident.number)


@page
@form_post("web:incident", "number", anchor="#results")
def attach_results(request: HttpRequest, number: int) -> HttpResponse:
    by = signed_in(request)
    incident = incident_queries.get_incident_by_number(number, by=by)
    form = AttachResultsForm(request.POST)
    if form.is_valid():
        before = len(incident.visible_links)  # type: ignore[attr-defined]
        try:
            after = incidents.attach_check_results(incident.pk, form.cleaned_data["results"], by=by)
        except Invalid as error:
            apply_error(form, error, INCIDENT_FIELDS)
        else:
            added = len(after.visible_links) - before  # type: ignore[attr-defined]
            messages.success(request, f"Included {added} more check result{'s' if added != 1 else ''}.")
            return redirect(reverse("web:incident", args=[number]) + "#results")
    return _render_incident(request, incident, attach_form=form, status=400)


def results_to_include(incident: Incident, by: User, search: str) -> list[tuple[CheckResult, list[Incident]]]:
    """The "Include more check results" picker's rows: each result the caller could include (none
    this incident holds already), with the other open incidents it is in, in one more query."""
    results = incident_queries.attachable_results(incident, by=by, search=search, limit=PICKER_SIZE)
    in_open = incident_queries.open_incidents_of_results([r.pk for r in results], by=by)
    return [(r, in_open.get(r.pk, [])) for r in results]


@page
@require_GET
def results_picker(request: HttpRequest, number: int) -> HttpResponse:
    """The picker's list of includable results, for the search box to swap in as one types."""
    by = signed_in(request)
    incident = incident_queries.get_incident_by_number(number, by=by)
    search = request.GET.get("results_q", "")[:200]
    picker = results_to_include(incident, by, search)
    return render(
        request,
        "web/_results_picker.html",
        {"picker": picker, "picker_search": search, "picker_size": PICKER_SIZE, "incident": incident},
    )


@page
@require_GET
def lead_picker(request: HttpRequest, number: int) -> HttpResponse:
    """The edit form's Lead <select>, narrowed by its search box, for htmx to swap in as one types."""
    by = signed_in(request)
    incident = incident_queries.get_incident_by_number(number, by=by)
    if not incident_queries.can_manage(incident, by):
        raise Forbidden("You cannot change this incident's lead.")
    form = _edit_form(
        incident, by, search=search_term(request, "lead_q"), chosen=request.GET.get("lead", "")[:20]
    )
    return HttpResponse(str(form["lead"]))


@page
@form_post("web:incident", "number", anchor="#timeline")
def comment(request: HttpRequest, number: int) -> HttpResponse:
    by = signed_in(request)
    incident = incident_queries.get_incident_by_number(number, by=by)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            incidents.add_comment(incident.pk, form.cleaned_data["text"], by=by)
        except Invalid as error:
            apply_error(form, error, {"text": "text"})
        else:
            return redirect(reverse("web:incident", args=[number]) + "#timeline")
    return _render_incident(request, incident, comment_form=form, status=400)
