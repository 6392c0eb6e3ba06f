"""REST endpoints for scans, failed-row samples, contracts, check attributes and file imports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Status

from quell.accounts.services import get_organization
from quell.api.base import (
    COMMON_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    ErrorOut,
    Id,
    Page,
    PageParams,
    PathId,
    Schema,
    UserRef,
    caller,
    paginate,
    user_ref,
)
from quell.catalog import services as catalog
from quell.catalog.api import CheckResultOut, result_out
from quell.catalog.models import CheckAttributeDefinition, Scan
from quell.ingest.importers import dbt_scan, gx_scan, soda_file_scan

router = Router(tags=["scans and imports"])


class DatasetRef(Schema):
    id: int
    name: str
    dataSource: str


class ScanOut(Schema):
    id: int
    definitionName: str
    state: str
    source: str
    client: str
    dataTimestamp: datetime
    startedAt: datetime | None
    endedAt: datetime | None
    hasErrors: bool
    hasWarnings: bool
    hasFailures: bool
    datasets: list[DatasetRef]
    resultCounts: dict[str, int]
    createdBy: UserRef | None
    cloudUrl: str


class LogLine(Schema):
    level: str
    message: str
    timestamp: str | None = None
    index: int | None = None


class ScanQuery(PageParams):
    dataSourceId: Id | None = None
    datasetId: Id | None = None


class FailedRowsOut(Schema):
    fileId: str
    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    totalRowCount: int | None
    storedRowCount: int
    truncated: bool


class FailedRowsListOut(Schema):
    samples: list[FailedRowsOut]


class ContractOut(Schema):
    datasetId: int
    contract: str
    filePath: str
    updatedAt: datetime | None


AttributeTypeName = Literal["checkbox", "datetime", "multiselect", "number", "singleselect", "text"]


class CheckAttributeIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    type: AttributeTypeName
    label: str = Field("", max_length=200)
    allowedValues: list[str] = Field(default_factory=list, max_length=1000)
    description: str = Field("", max_length=5000)


class CheckAttributeOut(Schema):
    id: int
    name: str
    type: str
    label: str
    allowedValues: list[str]
    description: str


class FailedRowsSettingsIn(Schema):
    collectFailedRows: bool | None = None
    failedRowsMaxBytes: int | None = Field(None, ge=1, le=2**31 - 1)


class FailedRowsSettingsOut(Schema):
    collectFailedRows: bool
    failedRowsMaxBytes: int


class DbtImportIn(Schema):
    runResults: dict[str, Any]
    manifest: dict[str, Any]
    dataSource: str = Field("", max_length=200)


class GxImportIn(Schema):
    result: dict[str, Any]
    dataSource: str = Field("", max_length=200)
    dataset: str = Field("", max_length=500)


class SodaImportIn(Schema):
    results: dict[str, Any]


class ImportedResultOut(Schema):
    id: int
    checkId: int
    datasetId: int
    outcome: str


class ImportedOut(Schema):
    scanId: int
    results: list[ImportedResultOut]


def scan_out(scans: Iterable[Scan]) -> list[dict[str, Any]]:
    return [
        {
            "id": scan.pk,
            "definitionName": scan.definition_name,
            "state": scan.visible_state,
            "source": scan.source,
            "client": scan.client,
            "dataTimestamp": scan.data_timestamp,
            "startedAt": scan.started_at,
            "endedAt": scan.ended_at,
            "hasErrors": scan.has_errors,
            "hasWarnings": scan.has_visible_warnings,
            "hasFailures": scan.has_visible_failures,
            "datasets": [
                {"id": ds.pk, "name": ds.name, "dataSource": ds.data_source.name}
                for ds in scan.visible_datasets  # type: ignore[attr-defined]
            ],
            "resultCounts": {
                "pass": scan.passes,  # type: ignore[attr-defined]
                "warn": scan.warns,  # type: ignore[attr-defined]
                "fail": scan.fails,  # type: ignore[attr-defined]
                "other": scan.excluded + scan.unevaluated,  # type: ignore[attr-defined]
            },
            "createdBy": user_ref(scan.created_by),
            "cloudUrl": f"{settings.BASE_URL}/scans/{scan.pk}",
        }
        for scan in scans
    ]


def attribute_out(definition: CheckAttributeDefinition) -> dict[str, Any]:
    return {
        "id": definition.pk,
        "name": definition.name,
        "type": definition.type,
        "label": definition.label,
        "allowedValues": definition.allowed_values,
        "description": definition.description,
    }


@router.get("/scans", response={200: Page[ScanOut], **READ_ERRORS}, summary="Scans, newest first")
def list_scans(request: HttpRequest, query: Query[ScanQuery]) -> dict[str, Any]:
    by = caller(request)
    scans = catalog.list_scans(by=by, data_source_id=query.dataSourceId, dataset_id=query.datasetId)
    return paginate(catalog.with_scan_details(scans, by=by), query.page, query.size, scan_out)


@router.get("/scans/{scan_id}", response={200: ScanOut, **READ_ERRORS}, summary="One scan")
def get_scan(request: HttpRequest, scan_id: PathId) -> dict[str, Any]:
    by = caller(request)
    scan = catalog.get_scan(scan_id, by=by)
    return scan_out(
        catalog.with_scan_details(Scan.objects.filter(pk=scan.pk).select_related("created_by"), by=by)
    )[0]


@router.get(
    "/scans/{scan_id}/results",
    response={200: Page[CheckResultOut], **READ_ERRORS},
    summary="A scan's check results on datasets you can view",
)
def list_scan_results(request: HttpRequest, scan_id: PathId, query: Query[PageParams]) -> dict[str, Any]:
    results = catalog.scan_results(scan_id, by=caller(request))
    return paginate(results, query.page, query.size, result_out)


@router.get(
    "/scans/{scan_id}/logs",
    response={200: Page[LogLine], **READ_ERRORS, 403: ErrorOut},
    summary="A scan's logs (only for those who can view all its datasets)",
)
def list_scan_logs(request: HttpRequest, scan_id: PathId, query: Query[PageParams]) -> dict[str, Any]:
    lines = catalog.scan_logs(scan_id, by=caller(request))
    start = query.page * query.size
    total = len(lines)
    pages = -(-total // query.size)
    return {
        "content": [
            {
                "level": str(line.get("level", "")),
                "message": str(line.get("message", "")),
                "timestamp": line.get("timestamp") if isinstance(line.get("timestamp"), str) else None,
                "index": line.get("index") if isinstance(line.get("index"), int) else None,
            }
            for line in lines[start : start + query.size]
        ],
        "first": query.page == 0,
        "last": query.page >= pages - 1,
        "number": query.page,
        "size": query.size,
        "totalElements": total,
        "totalPages": pages,
    }


@router.get(
    "/checkResults/{result_id}/failedRows",
    response={200: FailedRowsListOut, **READ_ERRORS, 403: ErrorOut},
    summary="Failed-row samples of a check result (needs Access failed row samples)",
)
def get_failed_rows(request: HttpRequest, result_id: PathId) -> dict[str, Any]:
    samples = catalog.failed_rows(result_id, by=caller(request))
    return {
        "samples": [
            {
                "fileId": s.file_id,
                "columns": s.columns,
                "rows": s.rows,
                "totalRowCount": s.total_row_count,
                "storedRowCount": s.stored_row_count,
                "truncated": s.truncated,
            }
            for s in samples
        ]
    }


@router.get(
    "/datasets/{dataset_id}/contract",
    response={200: ContractOut, **READ_ERRORS},
    summary="The data contract Soda Core 4.x last verified on a dataset",
)
def get_contract(request: HttpRequest, dataset_id: PathId) -> dict[str, Any]:
    dataset = catalog.get_dataset(dataset_id, by=caller(request))
    return {
        "datasetId": dataset.pk,
        "contract": dataset.contract,
        "filePath": dataset.contract_file_path,
        "updatedAt": dataset.contract_updated_at,
    }


@router.get(
    "/checkAttributes", response={200: Page[CheckAttributeOut], **COMMON_ERRORS}, summary="Check attributes"
)
def list_check_attributes(request: HttpRequest, query: Query[PageParams]) -> dict[str, Any]:
    definitions = catalog.list_check_attribute_definitions(by=caller(request))
    return paginate(definitions, query.page, query.size, lambda rows: [attribute_out(d) for d in rows])


@router.post(
    "/checkAttributes",
    response={201: CheckAttributeOut, **WRITE_ERRORS, 409: ErrorOut},
    summary="Define a check attribute (admins)",
)
def create_check_attribute(request: HttpRequest, payload: CheckAttributeIn) -> Status[dict[str, Any]]:
    definition = catalog.create_check_attribute_definition(
        by=caller(request),
        name=payload.name,
        attribute_type=payload.type,
        label=payload.label,
        allowed_values=payload.allowedValues,
        description=payload.description,
    )
    return Status(201, attribute_out(definition))


@router.delete(
    "/checkAttributes/{definition_id}",
    response={204: None, **WRITE_ERRORS},
    summary="Remove a check attribute (admins)",
)
def delete_check_attribute(request: HttpRequest, definition_id: PathId) -> Status[None]:
    catalog.delete_check_attribute_definition(definition_id, by=caller(request))
    return Status(204, None)


@router.get(
    "/organization/failedRows",
    response={200: FailedRowsSettingsOut, **COMMON_ERRORS},
    summary="Whether failed-row samples are collected, and how large each may be",
)
def get_failed_rows_settings(request: HttpRequest) -> dict[str, Any]:
    org = get_organization(by=caller(request))
    return {"collectFailedRows": org.collect_failed_rows, "failedRowsMaxBytes": org.failed_rows_max_bytes}


@router.post(
    "/organization/failedRows",
    response={200: FailedRowsSettingsOut, **WRITE_ERRORS},
    summary="Turn failed-row samples on or off, or change their size limit (admins)",
)
def update_failed_rows_settings(request: HttpRequest, payload: FailedRowsSettingsIn) -> dict[str, Any]:
    org = catalog.update_failed_rows_settings(
        by=caller(request), collect=payload.collectFailedRows, max_bytes=payload.failedRowsMaxBytes
    )
    return {"collectFailedRows": org.collect_failed_rows, "failedRowsMaxBytes": org.failed_rows_max_bytes}


def _imported(scan_input: catalog.ScanInput, request: HttpRequest) -> Status[dict[str, Any]]:
    scan, results = catalog.ingest_scan(scan_input, by=caller(request))
    return Status(
        201,
        {
            "scanId": scan.pk,
            "results": [
                {"id": r.pk, "checkId": r.check_ref_id, "datasetId": r.dataset_id, "outcome": r.outcome}
                for r in results
            ],
        },
    )


IMPORT_DESCRIPTION = (
    "The same import as `quell ingest`, all or nothing; a malformed document is a 400 naming it."
)


@router.post(
    "/imports/dbt",
    response={201: ImportedOut, **WRITE_ERRORS},
    summary="Import dbt test results (run_results.json with its manifest.json)",
    description=IMPORT_DESCRIPTION,
)
def import_dbt(request: HttpRequest, payload: DbtImportIn) -> Status[dict[str, Any]]:
    by = caller(request)
    scan_input = dbt_scan(
        payload.runResults,
        payload.manifest,
        by=by,
        run_results_name="runResults",
        manifest_name="manifest",
        data_source=payload.dataSource,
    )
    return _imported(scan_input, request)


@router.post(
    "/imports/greatExpectations",
    response={201: ImportedOut, **WRITE_ERRORS},
    summary="Import a Great Expectations 1.x validation or checkpoint result",
    description=IMPORT_DESCRIPTION,
)
def import_gx(request: HttpRequest, payload: GxImportIn) -> Status[dict[str, Any]]:
    scan_input = gx_scan(
        payload.result,
        by=caller(request),
        name="result",
        data_source=payload.dataSource,
        dataset=payload.dataset,
    )
    return _imported(scan_input, request)


@router.post(
    "/imports/soda",
    response={201: ImportedOut, **WRITE_ERRORS},
    summary="Import a Soda Core scan results file (`soda scan -srf`)",
    description=IMPORT_DESCRIPTION,
)
def import_soda(request: HttpRequest, payload: SodaImportIn) -> Status[dict[str, Any]]:
    return _imported(soda_file_scan(payload.results, by=caller(request), name="results"), request)
