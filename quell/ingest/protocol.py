"""The Soda Cloud protocol Soda Core speaks: `POST /api/command`, `POST /api/query`, `POST /api/scan/upload`.

Every command and query is a JSON object with a `type` and, after `login`, the `token` it got.
Each handler is a thin adapter over a service function; errors are `{"code", "message"}` with a
4xx status, and a 401 makes the client log in again. See docs/soda-core.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quell.accounts.models import Organization, User
from quell.catalog import ingest as catalog_ingest
from quell.catalog import queries as catalog_queries
from quell.catalog import services as catalog
from quell.catalog.models import CheckResult, Measurement
from quell.ingest import services, soda
from quell.lib.errors import Invalid, QuellError
from quell.lib.jsontext import UnreadableJSON, parse_json

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], User, HttpRequest], dict[str, Any]]

# Soda Core 4.x sends at most this many identities per history query; larger batches are refused.
MAX_HISTORY_IDENTITIES = 500


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


# --- Payload shapes -------------------------------------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LoginIn(_Message):
    apiKeyId: str = Field(min_length=1, max_length=200)
    apiKeySecret: str = Field(min_length=1, max_length=500)


class HistoryV4In(_Message):
    """`sodaCoreHistoricMeasurements2` / `sodaCoreHistoricCheckResults2`: a scan-time range XOR a limit."""

    minScanTime: soda.UtcDatetime | None = None
    maxScanTime: soda.UtcDatetime | None = None
    limit: int | None = Field(None, ge=1, le=100_000)


class ContractFileIn(_Message):
    contents: str


class MarkScanFailedIn(_Message):
    scanId: str = Field(min_length=1, max_length=300)
    logs: list[dict[str, Any]] = Field(default_factory=list)


class DatasetsConfigurationIn(_Message):
    class DatasetRef(_Message):
        dataSource: str
        datasetQualifiedName: str
        table: str

    datasets: list[DatasetRef] = Field(default_factory=list)


# --- 3.x history filters --------------------------------------------------------------------------


class HistoryFilter:
    """The part of Soda Cloud's filter language that Soda Core 3.x's history queries use.

    `{"type": "and", "andExpressions": [...]}` of `equals` on `metric.identity` / `check.identity`
    and comparisons of `measurement.dataTime` with a time.
    """

    IDENTITY_COLUMNS = {"metric.identity", "check.identity"}
    TIME_COLUMNS = {"measurement.dataTime", "checkResult.dataTime", "dataTime"}

    def __init__(self, expression: Any, identity_column: str) -> None:
        self.identity_column = identity_column
        self.identities: list[str] = []
        self.since: datetime | None = None
        self.until: datetime | None = None
        self._read(expression, "filter")
        if not self.identities:
            raise Invalid(
                f'filter must compare {identity_column} with "equals".', code="invalid_filter", field="filter"
            )

    def _read(self, expression: Any, where: str) -> None:
        if not isinstance(expression, dict):
            raise Invalid(f"{where} must be an object.", code="invalid_filter", field=where)
        kind = expression.get("type")
        if kind == "and":
            parts = expression.get("andExpressions")
            if not isinstance(parts, list):
                raise Invalid(f"{where}.andExpressions must be a list.", code="invalid_filter", field=where)
            for position, part in enumerate(parts):
                self._read(part, f"{where}.andExpressions[{position}]")
            return
        left = expression.get("left")
        right = expression.get("right")
        left = left if isinstance(left, dict) else {}
        right = right if isinstance(right, dict) else {}
        column = left.get("columnName")
        if kind == "equals" and column == self.identity_column:
            if right.get("type") != "string" or not isinstance(right.get("value"), str):
                raise Invalid(f"{where}.right must be a string.", code="invalid_filter", field=where)
            self.identities.append(right["value"])
        elif kind in {"greaterThanOrEqual", "greaterThan", "lessThanOrEqual", "lessThan"} and (
            column in self.TIME_COLUMNS
        ):
            moment = self._time(right, where)
            if kind.startswith("greater"):
                self.since = moment
            else:
                self.until = moment
        else:
            raise Invalid(
                f"{where}: Quell does not support filtering with {kind!r} on {column!r}.",
                code="invalid_filter",
                field=where,
            )

    @staticmethod
    def _time(right: dict[str, Any], where: str) -> datetime:
        raw = right.get("time") or right.get("value")
        try:
            return soda._to_utc(datetime.fromisoformat(str(raw)))
        except ValueError:
            raise Invalid(f"{where}.right.time is not an ISO time: {raw!r}.", code="invalid_filter") from None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _measurement_row(measurement: Measurement) -> dict[str, Any]:
    return {
        "id": str(measurement.pk),
        "identity": measurement.identity,
        "value": measurement.value,
        "dataTime": _iso(measurement.data_timestamp),
    }


def _check_result_row(result: CheckResult) -> dict[str, Any]:
    check = result.check_ref
    return {
        "id": str(result.pk),
        "identity": check.identity,
        "measurementId": str(result.measurement_id) if result.measurement_id else None,
        "type": "generic",
        "definition": check.definition,
        "location": check.location,
        "metrics": check.metric_identities,
        "dataSource": result.dataset.data_source.name,
        "table": result.dataset.name,
        "partition": None,
        "column": check.column or None,
        "outcome": result.outcome,
        "value": result.value,
        "diagnostics": result.diagnostics,
        "dataTime": _iso(result.data_timestamp),
    }


def _limit(body: dict[str, Any]) -> int | None:
    limit = body.get("limit")
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise Invalid("limit must be a positive whole number.", field="limit")
    return limit


# --- Queries --------------------------------------------------------------------------------------


def cloud_configuration(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    # Soda Core 3.x reads a missing key as "disabled", so it is always sent.
    return {"disableCollectingWarehouseData": catalog_queries.samples_disabled()}


def available_check_attributes(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    results = []
    for definition in catalog_queries.list_check_attribute_definitions(by=user):
        allowed: list[Any] = definition.allowed_values
        if definition.type == "checkbox":
            allowed = [True, False]
        results.append(
            {
                "name": definition.name,
                "label": definition.label or definition.name,
                "type": definition.type,
                "allowedValues": allowed,
                "description": definition.description,
            }
        )
    return {"results": results}


def historic_measurements_v3(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    where = HistoryFilter(body.get("filter"), "metric.identity")
    rows = catalog_queries.historic_measurements(
        where.identities, by=user, since=where.since, until=where.until, limit=_limit(body)
    )
    return {"results": [_measurement_row(row) for row in rows]}


def historic_check_results_v3(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    where = HistoryFilter(body.get("filter"), "check.identity")
    rows = catalog_queries.historic_check_results(
        where.identities, by=user, since=where.since, until=where.until, limit=_limit(body)
    )
    return {"results": [_check_result_row(row) for row in rows]}


def _history_v4(body: dict[str, Any], identities_key: str) -> tuple[list[str], HistoryV4In]:
    identities = body.get(identities_key)
    if not isinstance(identities, list) or not all(isinstance(i, str) for i in identities):
        raise Invalid(f"{identities_key} must be a list of strings.", field=identities_key)
    if len(identities) > MAX_HISTORY_IDENTITIES:
        raise Invalid(
            f"{identities_key} may name at most {MAX_HISTORY_IDENTITIES} identities per request.",
            field=identities_key,
        )
    window = HistoryV4In.model_validate(body)
    has_range = window.minScanTime is not None or window.maxScanTime is not None
    if has_range == (window.limit is not None):
        raise Invalid("Send either minScanTime and maxScanTime, or limit.", field="limit")
    return identities, window


def historic_measurements_v4(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    identities, window = _history_v4(body, "metricIdentities")
    rows = catalog_queries.historic_measurements(
        identities, by=user, since=window.minScanTime, until=window.maxScanTime, limit=window.limit
    )
    return {"results": [_measurement_row(row) for row in rows]}


def historic_check_results_v4(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    identities, window = _history_v4(body, "checkIdentities")
    rows = catalog_queries.historic_check_results(
        identities, by=user, since=window.minScanTime, until=window.maxScanTime, limit=window.limit
    )
    return {"results": [_check_result_row(row) for row in rows]}


def datasets_configuration(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    request_in = DatasetsConfigurationIn.model_validate(body)
    collect = not catalog_queries.samples_disabled()
    # One entry per dataset asked about, in the order asked: the client checks the first one's name.
    return {
        "results": [
            {
                "datasetQualifiedName": item.datasetQualifiedName,
                "table": item.table,
                "collectFailedRows": collect,
            }
            for item in request_in.datasets
        ]
    }


def who_am_i(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    return {
        "user": {"id": str(user.pk), "email": user.email, "name": user.display_name},
        "organisation": {"name": Organization.get().name},
    }


# --- Commands -------------------------------------------------------------------------------------


def insert_scan_results(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    results = soda.parse_scan_results(body)
    key = f"soda-scan:{user.pk}:{results.scanId}" if results.scanId else soda.payload_key(user.pk, body)
    scan_input = soda.scan_input(
        results, idempotency_key=key, client=request.headers.get("User-Agent", "")[:200]
    )
    scan, stored = catalog_ingest.ingest_scan(scan_input, by=user)
    return soda.insert_response(scan.pk, stored, settings.BASE_URL)


def upload_contract_file(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    upload = catalog.store_contract_upload(ContractFileIn.model_validate(body).contents, by=user)
    return {"fileId": upload.file_id}


def mark_scan_failed(body: dict[str, Any], user: User, request: HttpRequest) -> dict[str, Any]:
    message = MarkScanFailedIn.model_validate(body)
    scan = catalog_ingest.mark_scan_failed(
        message.scanId,
        message.logs,
        by=user,
        source="soda-core",
        client=request.headers.get("User-Agent", "")[:200],
    )
    return {"scanId": str(scan.pk)}


QUERIES: dict[str, Handler] = {
    "sodaCoreCloudConfiguration": cloud_configuration,
    "sodaCoreAvailableCheckAttributes": available_check_attributes,
    "sodaCoreHistoricMeasurements": historic_measurements_v3,
    "sodaCoreHistoricCheckResults": historic_check_results_v3,
    "sodaCoreHistoricMeasurements2": historic_measurements_v4,
    "sodaCoreHistoricCheckResults2": historic_check_results_v4,
    "sodaCoreDatasetsConfiguration": datasets_configuration,
    "whoAmI": who_am_i,
}

COMMANDS: dict[str, Handler] = {
    "sodaCoreInsertScanResults": insert_scan_results,
    "sodaCoreUploadContractFile": upload_contract_file,
    "sodaCoreMarkScanFailed": mark_scan_failed,
}

# Soda Cloud features that need Soda's hosted services (agents, contract publishing, migrations).
NOT_SUPPORTED = {
    "sodaCorePublishContract",
    "sodaCoreCanManageContracts",
    "sodaCoreVerifyContract",
    "sodaCoreTestContract",
    "sodaCoreGetContract",
    "sodaCoreContracts",
    "sodaCoreGenerateContractSkeleton",
    "sodaCoreContractSkeletonGenerationState",
    "sodaCoreUpsertDraftContract",
    "sodaCorePostProcessingUpdate",
    "sodaCoreCheckIdentities",
    "sodaCoreScanStart",
}


# --- Views ----------------------------------------------------------------------------------------


def _read_json(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    try:
        body = parse_json(request.body)
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(413, "body_too_large", f"The body is over {limit} bytes.")
    except UnreadableJSON as error:
        return JsonResponse(error.as_dict(), status=error.status)
    if not isinstance(body, dict):
        return _error(400, "invalid_request", "The body must be a JSON object with a type.")
    return body


def _dispatch(request: HttpRequest, handlers: dict[str, Handler], endpoint: str) -> HttpResponse:
    body = _read_json(request)
    if isinstance(body, JsonResponse):
        return body
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        return _error(400, "invalid_request", 'The body needs a "type".')
    if kind == "login" and endpoint == "command":
        return _login(body)
    handler = handlers.get(kind)
    if handler is None:
        other = "query" if endpoint == "command" else "command"
        if kind in (QUERIES if other == "query" else COMMANDS):
            return _error(400, "wrong_endpoint", f"{kind} is a {other}: send it to /api/{other}.")
        if kind in NOT_SUPPORTED:
            return _error(
                400, "unsupported_type", f"Quell does not support {kind}, a Soda Cloud-only feature."
            )
        return _error(400, "unknown_type", f"Unknown {endpoint} type {kind!r}.")
    try:
        user = services.user_for_token(body.get("token"))
        return JsonResponse(handler(body, user, request))
    except QuellError as error:
        return JsonResponse(error.as_dict(), status=error.status)
    except ValidationError as error:
        return _error(400, "invalid_request", f"{kind}: {soda.describe_validation_error(error)}")


def _login(body: dict[str, Any]) -> HttpResponse:
    try:
        credentials = LoginIn.model_validate(body)
        return JsonResponse({"token": services.log_in(credentials.apiKeyId, credentials.apiKeySecret)})
    except ValidationError as error:
        return _error(400, "invalid_request", f"login: {soda.describe_validation_error(error)}")
    except QuellError as error:
        return JsonResponse(error.as_dict(), status=error.status)


@csrf_exempt
@require_POST
def command(request: HttpRequest) -> HttpResponse:
    return _dispatch(request, COMMANDS, "command")


@csrf_exempt
@require_POST
def query(request: HttpRequest) -> HttpResponse:
    return _dispatch(request, QUERIES, "query")


def _read_limited(request: HttpRequest, limit: int) -> bytes:
    """At most `limit` bytes of the body; the rest is read and dropped so the connection stays usable."""
    kept = request.read(limit)
    while request.read(64 * 1024):
        pass
    return kept


@csrf_exempt
@require_POST
def scan_upload(request: HttpRequest) -> HttpResponse:
    """Soda Core 3.x's failed-row samples: JSON Lines, the raw token in `Authorization`."""
    try:
        user = services.user_for_token(request.headers.get("Authorization", "").removeprefix("Bearer "))
        limit = Organization.get().failed_rows_max_bytes
        data = _read_limited(request, limit + 1)
        sample = catalog.store_failed_rows_sample(
            data, by=user, file_path=request.headers.get("File-Path", "")
        )
    except QuellError as error:
        return JsonResponse(error.as_dict(), status=error.status)
    return JsonResponse({"fileId": sample.file_id})
