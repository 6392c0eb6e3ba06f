"""The datasets list and a dataset's tabs: Checks (with its contract), Incidents, Scans, Responsibilities."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from quell.accounts import services as accounts
from quell.accounts.models import User
from quell.catalog import access
from quell.catalog import services as catalog
from quell.catalog.models import Dataset
from quell.catalog.services import ResponsibilityInput
from quell.incidents import services as incidents
from quell.lib.errors import Forbidden, Invalid, NotFound
from quell.web.views.base import page, paginate, signed_in
from quell.web.views.incidents import incident_list
from quell.web.views.scans import scan_list


@page
@require_GET
def datasets_page(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    search = request.GET.get("q", "").strip()[:200]
    source = request.GET.get("source", "")[:200]
    visible = catalog.list_datasets(by=by)
    sources = list(
        visible.order_by("data_source__name").values_list("data_source__name", flat=True).distinct()
    )
    rows = incidents.with_dataset_counts(catalog.list_datasets(by=by, search=search, data_source_name=source))
    return render(
        request,
        "web/datasets.html",
        {
            "datasets": paginate(request, rows.select_related("owner").defer("contract")),
            "q": search,
            "source": source,
            "sources": sources,
        },
    )


def _tabs(dataset: Dataset, by: User, active: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "tab": active,
        # Only decides whether to show the tab; the tab's own page asks the service again.
        "can_manage_permissions": access.MANAGE_PERMISSIONS in access.permissions_on(by, dataset.pk),
    }


@page
@require_GET
def dataset_checks(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog.get_dataset(dataset_id, by=by)
    checks = paginate(request, catalog.list_checks(by=by, dataset_id=dataset.pk), size=100)
    return render(request, "web/dataset_checks.html", {**_tabs(dataset, by, "checks"), "checks": checks})


@page
@require_GET
def dataset_incidents(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog.get_dataset(dataset_id, by=by)
    context = {**_tabs(dataset, by, "incidents"), **incident_list(request, by, dataset=dataset)}
    return render(request, "web/dataset_incidents.html", context)


@page
@require_GET
def dataset_scans(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog.get_dataset(dataset_id, by=by)
    scans = catalog.list_scans(by=by, dataset_id=dataset.pk)
    context = {**_tabs(dataset, by, "scans"), **scan_list(request, scans, by)}
    return render(request, "web/dataset_scans.html", context)


def _principal(value: str) -> tuple[str, int]:
    kind, _, pk = value.partition(":")
    if kind not in ("user", "group") or not pk.isdigit():
        raise Invalid("Choose a user or a group from the list.", field="principal")
    return ("user" if kind == "user" else "userGroup"), int(pk)


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


@page
@require_http_methods(["GET", "POST"])
def dataset_responsibilities(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog.get_dataset(dataset_id, by=by)
    rows = catalog.list_responsibilities(dataset.pk, by=by)
    error = ""
    if request.method == "POST":
        try:
            catalog.set_responsibilities(dataset.pk, _submitted(request), by=by)
        except Invalid as refused:
            error = refused.message
        else:
            messages.success(request, "Saved the responsibilities.")
            try:
                catalog.list_responsibilities(dataset.pk, by=by)
            except (NotFound, Forbidden):
                # They just took away their own right to manage this dataset.
                return redirect("web:datasets")
            return redirect("web:dataset_responsibilities", dataset_id=dataset.pk)
    taken = {f"user:{row.user_id}" if row.user_id else f"group:{row.group_id}" for row in rows}
    people = [p for p in accounts.list_people(by=by).filter(is_active=True) if f"user:{p.pk}" not in taken]
    groups = [g for g in accounts.list_groups(by=by) if f"group:{g.pk}" not in taken]
    context = {
        **_tabs(dataset, by, "responsibilities"),
        "rows": rows,
        "roles": list(accounts.list_dataset_roles(by=by)),
        "people": people,
        "groups": groups,
        "error": error,
    }
    return render(request, "web/dataset_responsibilities.html", context, status=400 if error else 200)
