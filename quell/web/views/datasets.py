"""The datasets list and a dataset's tabs: Checks (with its contract), Incidents, Scans, Responsibilities."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from quell.accounts import permissions
from quell.accounts import queries as account_queries
from quell.accounts.models import User
from quell.catalog import queries as catalog_queries
from quell.catalog import services as catalog
from quell.catalog.models import Dataset
from quell.catalog.services import ResponsibilityInput
from quell.incidents import queries as incident_queries
from quell.lib.errors import Forbidden, Invalid, NotFound
from quell.web.forms import as_id
from quell.web.pickers import Choices, pick_mixed, search_term
from quell.web.views.base import page, paginate, signed_in
from quell.web.views.incidents import incident_list
from quell.web.views.mutes import dataset_mute_context, mark_muted_checks, mark_muted_datasets
from quell.web.views.scans import scan_list


@page
@require_GET
def datasets_page(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    search = request.GET.get("q", "").strip()[:200]
    source = request.GET.get("source", "")[:200]
    visible = catalog_queries.list_datasets(by=by)
    sources = list(
        visible.order_by("data_source__name").values_list("data_source__name", flat=True).distinct()
    )
    rows = catalog_queries.list_datasets(by=by, search=search, data_source_name=source)
    datasets = paginate(request, rows.select_related("owner").defer("contract"))
    mark_muted_datasets(datasets)
    return render(
        request,
        "web/datasets.html",
        {
            "datasets": datasets,
            "q": search,
            "source": source,
            "sources": sources,
        },
    )


def _tabs(dataset: Dataset, by: User, active: str) -> dict[str, Any]:
    held = permissions.permissions_on(by, dataset.pk)
    return {
        "dataset": dataset,
        "tab": active,
        # Only decides whether to show the tab; the tab's own page asks the service again.
        "can_manage_permissions": permissions.MANAGE_PERMISSIONS in held,
        # The header's mute, and its form for those the service lets mute (Manage incidents).
        **dataset_mute_context(dataset, can_mute=permissions.MANAGE_INCIDENTS in held),
    }


@page
@require_GET
def dataset_checks(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    checks = paginate(request, catalog_queries.list_checks(by=by, dataset_id=dataset.pk), size=100)
    mark_muted_checks(checks)
    return render(request, "web/dataset_checks.html", {**_tabs(dataset, by, "checks"), "checks": checks})


@page
@require_GET
def dataset_incidents(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    context = {**_tabs(dataset, by, "incidents"), **incident_list(request, by, dataset=dataset)}
    return render(request, "web/dataset_incidents.html", context)


@page
@require_GET
def dataset_scans(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    scans = catalog_queries.list_scans(by=by, dataset_id=dataset.pk)
    context = {**_tabs(dataset, by, "scans"), **scan_list(request, scans, by)}
    return render(request, "web/dataset_scans.html", context)


def _principal(value: str) -> tuple[str, int]:
    kind, _, pk = value.partition(":")
    principal_id = as_id(pk)
    if kind not in ("user", "group") or principal_id is None:
        raise Invalid("Choose a user or a group from the list.", field="principal")
    return ("user" if kind == "user" else "userGroup"), principal_id


def _submitted(request: HttpRequest) -> list[ResponsibilityInput]:
    """The whole new list: the kept rows with their (maybe changed) roles, plus the added one."""
    items: list[ResponsibilityInput] = []
    rows = request.POST.getlist("principal")
    roles = request.POST.getlist("role")
    removed = set(request.POST.getlist("remove"))
    if len(rows) != len(roles):
        raise Invalid("The form was incomplete; reload the page and try again.")
    for principal, role in zip(rows, roles, strict=True):
        if principal in removed:
            continue
        kind, pk = _principal(principal)
        if not role.isdigit():
            raise Invalid("Choose a role for every row.", field="role")
        items.append(ResponsibilityInput(type=kind, principal_id=pk, role_id=int(role)))
    new_principal, new_role = request.POST.get("new_principal", ""), request.POST.get("new_role", "")
    if new_principal:
        kind, pk = _principal(new_principal)
        if not new_role.isdigit():
            raise Invalid("Choose the role to give.", field="new_role")
        items.append(ResponsibilityInput(type=kind, principal_id=pk, role_id=int(new_role)))
    return items


def _principal_picker(dataset_id: int, by: User, search: str, chosen: str) -> dict[str, Any]:
    """The "User or group" <select>'s options: the groups and people without a role yet, bounded.

    `chosen` ("user:3", from a form being shown again) stays listed, selected, whatever the search.
    """
    groups, people = catalog_queries.role_candidates(dataset_id, by=by)
    kind, _, pk = chosen.partition(":")
    chosen_id = as_id(pk)
    picker = pick_mixed(
        [
            Choices(
                "group",
                "Groups",
                groups,
                account_queries.groups_matching(groups, search),
                keep=[chosen_id] if kind == "group" and chosen_id is not None else [],
            ),
            Choices(
                "user",
                "Users",
                people,
                incident_queries.people_matching(people, search),
                keep=[chosen_id] if kind == "user" and chosen_id is not None else [],
            ),
        ],
        search=search,
    )
    return {"principals": picker, "chosen_kind": kind, "chosen_pk": str(chosen_id)}


@page
@require_http_methods(["GET", "POST"])
def dataset_responsibilities(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    rows = catalog_queries.list_responsibilities(dataset.pk, by=by)
    error = ""
    if request.method == "POST":
        try:
            catalog.set_responsibilities(dataset.pk, _submitted(request), by=by)
        except Invalid as refused:
            error = refused.message
        else:
            messages.success(request, "Saved the responsibilities.")
            try:
                catalog_queries.list_responsibilities(dataset.pk, by=by)
            except (NotFound, Forbidden):
                # They just took away their own right to manage this dataset.
                return redirect("web:datasets")
            return redirect("web:dataset_responsibilities", dataset_id=dataset.pk)
    # Without scripts the search box submits a GET of this page (the small form `principal-search`
    # outside the POST form), which lists the matches; with htmx it swaps in the <select> from
    # responsibility_principals as one types. Any active user or group is valid either way.
    chosen = request.POST.get("new_principal", "") if error else ""
    context = {
        **_tabs(dataset, by, "responsibilities"),
        "rows": rows,
        "roles": list(account_queries.list_dataset_roles(by=by)),
        **_principal_picker(dataset.pk, by, search_term(request, "principal_q"), chosen),
        "error": error,
    }
    return render(request, "web/dataset_responsibilities.html", context, status=400 if error else 200)


@page
@require_GET
def responsibility_principals(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The "User or group" <select>, narrowed by its search box, for htmx to swap in as one types.

    Refused, as the page is, to those who may not manage the dataset's responsibilities.
    """
    by = signed_in(request)
    chosen = request.GET.get("new_principal", "")[:40]
    context = _principal_picker(dataset_id, by, search_term(request, "principal_q"), chosen)
    return render(request, "web/_principal_picker.html", context)
