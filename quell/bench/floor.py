"""The floor endpoint: the hand-written SQL of quell.bench.queries served as JSON, for benchmarks only.

Mounted at /bench/floor/ only when QUELL_BENCH_FLOOR=1 (see quell/urls.py); a normal Quell never
serves it. It authenticates exactly as the API does (an API key over HTTP Basic), so the benchmark
compares like with like, and answers the same pages as GET /api/v1/incidents and friends.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from quell.accounts.auth import user_for_api_key
from quell.bench import queries


def _caller(request: HttpRequest) -> queries.Caller | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        key_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = user_for_api_key(key_id, secret)
    return queries.Caller(user.pk, user.is_admin) if user else None


def _ints(request: HttpRequest, name: str) -> list[int]:
    return [int(v) for v in request.GET.getlist(name) if v.isdigit()]


def _list_query(request: HttpRequest) -> queries.ListQuery:
    return queries.ListQuery(
        statuses=request.GET.getlist("status"),
        severities=request.GET.getlist("severity"),
        lead_ids=_ints(request, "leadId"),
        reporter_ids=_ints(request, "reporterId"),
        dataset_ids=_ints(request, "datasetId"),
        search=request.GET.get("search", ""),
        page=int(request.GET.get("page", "0") or 0),
        size=min(int(request.GET.get("size", "100") or 100), 1000),
    )


def _answer(request: HttpRequest, build: Callable[[Any, queries.Caller], Any]) -> HttpResponse:
    caller = _caller(request)
    if caller is None:
        return JsonResponse({"code": "unauthorized", "message": "Give a valid API key."}, status=401)
    with connection.cursor() as cursor:
        body = build(cursor, caller)
    if body is None:
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    return JsonResponse(body, safe=False)


@require_GET
def incident_list(request: HttpRequest) -> HttpResponse:
    query = _list_query(request)
    return _answer(request, lambda cursor, caller: queries.incident_list(cursor, caller, query))


@require_GET
def incident_counts(request: HttpRequest) -> HttpResponse:
    query = _list_query(request)
    return _answer(request, lambda cursor, caller: queries.counts_per_status(cursor, caller, query))


@require_GET
def incident(request: HttpRequest, incident_id: int) -> HttpResponse:
    return _answer(request, lambda cursor, caller: queries.incident(cursor, caller, incident_id))


@require_GET
def check_results(request: HttpRequest, check_id: int) -> HttpResponse:
    size = min(int(request.GET.get("size", "100") or 100), 1000)
    return _answer(request, lambda cursor, caller: queries.check_results(cursor, caller, check_id, size))


urlpatterns = [
    path("incidents", incident_list),
    path("incident-counts", incident_counts),
    path("incidents/<int:incident_id>", incident),
    path("checks/<int:check_id>/results", check_results),
]
