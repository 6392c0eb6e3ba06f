"""Scans: a data source's tabs (its datasets, its scans) and the scan page with its results and logs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from quell.accounts.models import User
from quell.catalog import queries as catalog_queries
from quell.catalog.models import DataSource, Outcome, Scan
from quell.lib.errors import Forbidden
from quell.web.views.base import page, paginate, signed_in
from quell.web.views.mutes import mark_muted_checks, mark_muted_datasets

SCAN_RESULTS_PAGE = 100


def scan_list(request: HttpRequest, scans: QuerySet[Scan], by: User) -> dict[str, Any]:
    """The context of a paginated scan list, each scan with its visible datasets and outcome counts."""
    return {"scans": paginate(request, catalog_queries.with_scan_details(scans, by=by))}


def _source_tabs(source: DataSource, active: str) -> dict[str, Any]:
    return {"source": source, "tab": active}


@page
@require_GET
def data_source_datasets(request: HttpRequest, data_source_id: int) -> HttpResponse:
    by = signed_in(request)
    source = catalog_queries.get_data_source(data_source_id, by=by)
    rows = catalog_queries.list_datasets(by=by, data_source_name=source.name)
    datasets = paginate(request, rows.select_related("owner").defer("contract"))
    mark_muted_datasets(datasets)
    context = {**_source_tabs(source, "datasets"), "datasets": datasets}
    return render(request, "web/data_source.html", context)


@page
@require_GET
def data_source_scans(request: HttpRequest, data_source_id: int) -> HttpResponse:
    by = signed_in(request)
    source = catalog_queries.get_data_source(data_source_id, by=by)
    scans = catalog_queries.list_scans(by=by, data_source_id=source.pk)
    context = {**_source_tabs(source, "scans"), **scan_list(request, scans, by)}
    return render(request, "web/data_source_scans.html", context)


@page
@require_GET
def scan_page(request: HttpRequest, scan_id: int) -> HttpResponse:
    by = signed_in(request)
    found = catalog_queries.get_scan(scan_id, by=by)
    scan = catalog_queries.with_scan_details(
        catalog_queries.list_scans(by=by).filter(pk=found.pk), by=by
    ).get()
    results = paginate(request, catalog_queries.scan_results(scan.pk, by=by), SCAN_RESULTS_PAGE)
    mark_muted_checks(results, check_id="check_ref_id")
    logs: list[dict[str, Any]] = []
    logs_hidden = ""
    try:
        logs = catalog_queries.scan_logs(scan.pk, by=by)
    except Forbidden as refused:
        logs_hidden = refused.message
    counts = [
        (Outcome.PASS, scan.passes),  # type: ignore[attr-defined]
        (Outcome.WARN, scan.warns),  # type: ignore[attr-defined]
        (Outcome.FAIL, scan.fails),  # type: ignore[attr-defined]
        (Outcome.EXCLUDED, scan.excluded),  # type: ignore[attr-defined]
        (Outcome.UNEVALUATED, scan.unevaluated),  # type: ignore[attr-defined]
    ]
    context = {
        "scan": scan,
        "counts": [(str(outcome), count) for outcome, count in counts],
        "results": results,
        "logs": logs,
        "logs_hidden": logs_hidden,
    }
    return render(request, "web/scan.html", context)
