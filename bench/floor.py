"""The floor endpoint: the hand-written SQL of bench.queries served as JSON, for benchmarks only.

Mounted at /bench/floor/ only by bench/urls.py (the harness's server runs with bench.settings); the
installed package has no route to it. It authenticates exactly as the API does (an API key over HTTP
Basic), so the benchmark compares like with like, and answers the same pages as GET /api/v1/incidents
and friends.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from bench import queries
from quell.accounts.auth import user_for_api_key
from quell.lib.errors import QuellError


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


def _session_caller(request: HttpRequest) -> queries.Caller | None:
    user = request.user
    if not user.is_authenticated or not user.is_active:
        return None
    return queries.Caller(user.pk, user.is_admin)


def _answer(caller: queries.Caller | None, build: Callable[[Any, queries.Caller], Any]) -> HttpResponse:
    if caller is None:
        return JsonResponse(
            {"code": "unauthorized", "message": "Sign in or give a valid API key."}, status=401
        )
    with connection.cursor() as cursor:
        body = build(cursor, caller)
    if body is None:
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    return JsonResponse(body, safe=False)


@require_GET
def incident_list(request: HttpRequest) -> HttpResponse:
    query = _list_query(request)
    return _answer(_caller(request), lambda cursor, caller: queries.incident_list(cursor, caller, query))


@require_GET
def incident_counts(request: HttpRequest) -> HttpResponse:
    query = _list_query(request)
    return _answer(_caller(request), lambda cursor, caller: queries.counts_per_status(cursor, caller, query))


@require_GET
def incident(request: HttpRequest, incident_id: int) -> HttpResponse:
    return _answer(_caller(request), lambda cursor, caller: queries.incident(cursor, caller, incident_id))


@require_GET
def check_results(request: HttpRequest, check_id: int) -> HttpResponse:
    size = min(int(request.GET.get("size", "100") or 100), 1000)
    return _answer(
        _caller(request), lambda cursor, caller: queries.check_results(cursor, caller, check_id, size)
    )


@require_GET
def incident_list_after(request: HttpRequest) -> HttpResponse:
    """A keyset page: the rows after (afterCreated, afterId), as a cursor page asks for."""
    query = _list_query(request)
    try:
        after = (dt.datetime.fromisoformat(request.GET["afterCreated"]), int(request.GET["afterId"]))
    except (KeyError, ValueError):
        return JsonResponse(
            {"code": "invalid_request", "message": "Give afterCreated (ISO 8601) and afterId."}, status=400
        )
    return _answer(
        _caller(request), lambda cursor, caller: queries.incident_list_after(cursor, caller, query, after)
    )


@require_GET
def web_incidents(request: HttpRequest) -> HttpResponse:
    return _answer(_session_caller(request), queries.incidents_page)


@require_GET
def web_dataset_incidents(request: HttpRequest, dataset_id: int) -> HttpResponse:
    return _answer(
        _session_caller(request),
        lambda cursor, caller: queries.dataset_incidents_page(cursor, caller, dataset_id),
    )


@require_GET
def web_incident(request: HttpRequest, number: int) -> HttpResponse:
    return _answer(
        _session_caller(request), lambda cursor, caller: queries.incident_page(cursor, caller, number)
    )


@require_GET
def web_check(request: HttpRequest, check_id: int) -> HttpResponse:
    return _answer(
        _session_caller(request), lambda cursor, caller: queries.check_page(cursor, caller, check_id)
    )


@require_GET
def web_home(request: HttpRequest) -> HttpResponse:
    return _answer(_session_caller(request), queries.home_page)


def _write(
    request: HttpRequest, caller: queries.Caller | None, write: Callable[[Any, queries.Caller, Any], Any]
) -> HttpResponse:
    """Run a write in one transaction; a refusal rolls it back and answers 400 as Quell would."""
    if caller is None:
        return JsonResponse({"code": "unauthorized", "message": "Give a valid API key."}, status=401)
    try:
        body = json.loads(request.body)
    except ValueError:
        return JsonResponse({"code": "invalid_request", "message": "The body is not JSON."}, status=400)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            answer = write(cursor, caller, body)
    except (queries.Refused, KeyError, TypeError, ValueError) as refused:
        return JsonResponse({"code": "invalid_request", "message": str(refused)}, status=400)
    if answer is None:
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    return JsonResponse(answer, status=201)


def _ids(body: Any) -> list[int]:
    return [int(i) for i in body["checkResultIds"]]


@csrf_exempt
@require_POST
def create_incident(request: HttpRequest) -> HttpResponse:
    def write(cursor: Any, caller: queries.Caller, body: Any) -> Any:
        incident_id = queries.create_incident(cursor, caller, str(body["title"]), _ids(body))
        return queries.incident(cursor, caller, incident_id)

    return _write(request, _caller(request), write)


@csrf_exempt
@require_POST
def attach_results(request: HttpRequest, incident_id: int) -> HttpResponse:
    def write(cursor: Any, caller: queries.Caller, body: Any) -> Any:
        if not queries.attach_results(cursor, caller, incident_id, _ids(body)):
            return None
        return queries.incident(cursor, caller, incident_id)

    return _write(request, _caller(request), write)


@csrf_exempt
@require_POST
def soda_command(request: HttpRequest) -> HttpResponse:
    """sodaCoreInsertScanResults, authenticated with the token of Soda's login, as /api/command is."""
    from quell.ingest import services as ingest_services

    try:
        token = json.loads(request.body).get("token")
        user = ingest_services.user_for_token(token)
    except (ValueError, AttributeError):
        return JsonResponse(
            {"code": "invalid_request", "message": "The body is not a JSON object."}, status=400
        )
    except QuellError as error:
        return JsonResponse(error.as_dict(), status=error.status)
    return _write(request, queries.Caller(user.pk, user.is_admin), queries.ingest_soda_scan)


urlpatterns = [
    path("incidents", incident_list),
    path("incidents/after", incident_list_after),
    path("incidents/create", create_incident),
    path("incident-counts", incident_counts),
    path("incidents/<int:incident_id>", incident),
    path("incidents/<int:incident_id>/checkResults", attach_results),
    path("checks/<int:check_id>/results", check_results),
    path("soda/command", soda_command),
    path("web/incidents", web_incidents),
    path("web/datasets/<int:dataset_id>/incidents", web_dataset_incidents),
    path("web/incidents/<int:number>", web_incident),
    path("web/checks/<int:check_id>", web_check),
    path("web/home", web_home),
]
