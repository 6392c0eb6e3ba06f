"""REST endpoints for scans, failed-row samples, contracts, check attributes and file imports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Status
from pydantic import ConfigDict, JsonValue

from quell.accounts.queries import get_organization
from quell.api.base import (
    COMMON_ERRORS,
    MAX_ID,
    READ_ERRORS,
    UNPROCESSABLE,
    WRITE_ERRORS,
    Body,
    ErrorOut,
    Id,
    Page,
    PageParams,
    Schema,
    SchemaExtra,
    UserRef,
    WholeNumber,
    caller,
    paginate,
    request_examples,
    text,
    user_ref,
)
from quell.api.catalog import CheckResultOut, DatasetId, result_out
from quell.catalog import ingest as catalog_ingest
from quell.catalog import queries as catalog_queries
from quell.catalog import services as catalog
from quell.catalog.models import AttributeType, CheckAttributeDefinition, Scan
from quell.ingest.examples import DBT_MANIFEST, DBT_RUN_RESULTS, GX_VALIDATION_RESULT, SODA_SCAN_RESULTS
from quell.ingest.importers import dbt_scan, gx_scan, soda_file_scan
from quell.lib.text import NON_BLANK_ONE_LINE_PATTERN, TEXT_PATTERN, TRIMMED_ONE_LINE_PATTERN

router = Router(tags=["scans and imports"])

ScanId = Annotated[int, Path(ge=1, le=MAX_ID, description="The scan's id.", example=84)]
ResultId = Annotated[int, Path(ge=1, le=MAX_ID, description="The check result's id.", example=1045)]
AttributeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The check attribute's id.", example=1)]
STATES = "`completed`, `completedWithWarnings`, `completedWithFailures`, `completedWithErrors` or `failed`"
# The label a check attribute keeps (CheckAttributeDefinition.label).
ATTRIBUTE_LABEL_MAX = CheckAttributeDefinition._meta.get_field("label").max_length or 200
ATTRIBUTE_VALUES_MAX = 1000
ATTRIBUTE_DESCRIPTION_MAX = 5000


class DatasetRef(Schema):
    id: int = Field(description="The dataset's id.")
    name: str = Field(description="The dataset's name.")
    dataSource: str = Field(description="The name of its data source.")


class ScanOut(Schema):
    id: int = Field(description="The scan's id.")
    definitionName: str = Field(description="The scan's name (Soda's scan definition); may be empty.")
    state: str = Field(description=f"How it ended, over the results you can see: {STATES}.")
    source: str = Field(description="Who sent it: `soda-core`, `dbt`, `gx`, `api`, ...")
    client: str = Field(description="The sending tool and its version, when it said.")
    dataTimestamp: datetime = Field(description="The time of the data the scan looked at.")
    startedAt: datetime | None = Field(description="When the scan started, when known.")
    endedAt: datetime | None = Field(description="When it ended, when known.")
    hasErrors: bool = Field(description="Whether the tool reported errors running it.")
    hasWarnings: bool = Field(description="Whether a result you can see warns.")
    hasFailures: bool = Field(description="Whether a result you can see fails.")
    datasets: list[DatasetRef] = Field(description="The datasets it checked that you can see.")
    resultCounts: dict[str, int] = Field(
        description="Results you can see by outcome: `pass`, `warn`, `fail` and `other`."
    )
    createdBy: UserRef | None = Field(description="Whose key sent it.")
    cloudUrl: str = Field(description="The scan's page in Quell.")


class LogLine(Schema):
    level: str = Field(description="The line's level as the tool gave it (`INFO`, `ERROR`, ...).")
    message: str = Field(description="The line's text.")
    timestamp: str | None = Field(None, description="When the tool wrote it, as the tool gave it.")
    index: int | None = Field(None, description="Its number in the tool's log, when given.")


class ScanQuery(PageParams):
    dataSourceId: Id | None = Field(None, description="Keeps the scans of this data source (404 if unknown).")
    datasetId: Id | None = Field(
        None, description="Keeps the scans of this dataset (404 if you cannot view it)."
    )


class FailedRowsOut(Schema):
    fileId: str = Field(description="The sample's file id, as its upload was given.")
    columns: list[dict[str, Any]] = Field(description="The sample's columns as the tool described them.")
    rows: list[list[Any]] = Field(description="The failed rows kept, one list of values per row.")
    totalRowCount: int | None = Field(description="How many rows failed in all, when the tool said.")
    storedRowCount: int = Field(description="How many of them Quell kept.")
    truncated: bool = Field(description="Whether rows were left out to respect the size limit.")


class FailedRowsListOut(Schema):
    samples: list[FailedRowsOut] = Field(description="The result's failed-row samples, oldest first.")


class ContractOut(Schema):
    datasetId: int = Field(description="The dataset's id.")
    contract: str = Field(description="The contract's YAML as last verified; empty when none was.")
    filePath: str = Field(description="The contract file's path as Soda Core named it.")
    updatedAt: datetime | None = Field(description="When a scan last verified it; null when none did.")


AttributeTypeName = Literal["checkbox", "datetime", "multiselect", "number", "singleselect", "text"]
assert set(get_args(AttributeTypeName)) == set(AttributeType.values)
CHOICES: list[JsonValue] = ["multiselect", "singleselect"]
assert set(CHOICES) == set(catalog.CHOICE_TYPES)
# An allowed value as the service compares them (stripped, then unique): one line, not blank, and
# with no whitespace at either end, so that values the schema calls unique are unique to it too.
AllowedValue = Annotated[str, Field(pattern=TRIMMED_ONE_LINE_PATTERN)]


class CheckAttributeIn(Body):
    # A choice needs values to choose from; any other type takes none (catalog.services' rule).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"type": {"enum": CHOICES}, "allowedValues": {"minItems": 1}},
                    "required": ["type", "allowedValues"],
                },
                {
                    "properties": {
                        "type": {"enum": sorted(set(get_args(AttributeTypeName)) - set(CHOICES))},
                        "allowedValues": {"maxItems": 0},
                    }
                },
            ]
        }
    )

    name: str = Field(
        description="The attribute's name, as checks' `attributes` use it: 1 to 100 letters, digits, "
        "underscores, dots or hyphens, not starting with a dot or hyphen. Unique (409 `name_taken`).",
        pattern=catalog.ATTRIBUTE_NAME.pattern,
        examples=["team"],
    )
    type: AttributeTypeName = Field(description="What values it takes.", examples=["singleselect"])
    label: str = text("", description="How forms label it.", max_length=ATTRIBUTE_LABEL_MAX)
    allowedValues: list[AllowedValue] = Field(
        default_factory=list,
        max_length=ATTRIBUTE_VALUES_MAX,
        json_schema_extra={"uniqueItems": True},
        description="The values to choose from: at least one for `singleselect` and `multiselect`, none "
        "for the other types. Each on one line, without whitespace at either end, each once.",
    )
    description: str = text(
        "",
        description="What it means; may span lines.",
        max_length=ATTRIBUTE_DESCRIPTION_MAX,
        pattern=TEXT_PATTERN,
    )


class CheckAttributeOut(Schema):
    id: int = Field(description="The attribute's id.")
    name: str = Field(description="Its name, as checks' `attributes` use it.")
    type: str = Field(description="What values it takes.")
    label: str = Field(description="How forms label it.")
    allowedValues: list[str] = Field(description="The values to choose from, for the choice types.")
    description: str = Field(description="What it means.")


# The range goes into the schema only: catalog.update_failed_rows_settings refuses the rest, naming it.
SampleBytes = Annotated[
    int, WholeNumber, SchemaExtra(minimum=catalog.MIN_SAMPLE_BYTES, maximum=catalog.MAX_SAMPLE_BYTES)
]


class FailedRowsSettingsIn(Body):
    collectFailedRows: bool | None = Field(
        None, description="Whether Soda Core may upload failed-row samples. Left out: unchanged."
    )
    failedRowsMaxBytes: SampleBytes | None = Field(
        None,
        description="How many bytes of each sample to keep; larger ones are cut (`truncated`). "
        "Left out: unchanged.",
    )


class FailedRowsSettingsOut(Schema):
    collectFailedRows: bool = Field(description="Whether Soda Core may upload failed-row samples.")
    failedRowsMaxBytes: int = Field(description="How many bytes of each sample are kept.")


_OPTIONAL_NAME = f"^$|{NON_BLANK_ONE_LINE_PATTERN}"


class DbtImportIn(Body):
    runResults: dict[str, Any] = Field(
        description="dbt's target/run_results.json from `dbt test` or `dbt build`, as dbt wrote it."
    )
    manifest: dict[str, Any] = Field(description="dbt's target/manifest.json from the same run.")
    dataSource: str = text(
        "",
        description="The data source to file the results under; empty: each model's database.",
        max_length=catalog_ingest.LIMITS["dataSource"],
        pattern=_OPTIONAL_NAME,
    )


class GxImportIn(Body):
    result: dict[str, Any] = Field(
        description="A Great Expectations 1.x validation result or checkpoint result, as JSON."
    )
    dataSource: str = text(
        "",
        description="The data source to file the results under; empty: the result's own.",
        max_length=catalog_ingest.LIMITS["dataSource"],
        pattern=_OPTIONAL_NAME,
    )
    dataset: str = text(
        "",
        description="The dataset to file the results under; empty: the result's own.",
        max_length=catalog_ingest.LIMITS["dataset"],
        pattern=_OPTIONAL_NAME,
    )


class SodaImportIn(Body):
    results: dict[str, Any] = Field(description="The file `soda scan -srf FILE` wrote.")


class ImportedResultOut(Schema):
    id: int = Field(description="The stored result's id.")
    checkId: int = Field(description="Its check (created if it was new).")
    datasetId: int = Field(description="Its dataset (created if it was new).")
    outcome: str = Field(description="Its outcome, translated from the tool's.")


class ImportedOut(Schema):
    scanId: int = Field(description="The scan that holds the results.")
    results: list[ImportedResultOut] = Field(description="The stored results.")


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


@router.get(
    "/scans",
    response={200: Page[ScanOut], **READ_ERRORS},
    summary="Scans, newest first",
    description="Scans that checked a dataset you can view, by data time, newest first; each shows only "
    "what you can view of it. Any user.",
)
def list_scans(request: HttpRequest, query: Query[ScanQuery]) -> dict[str, Any]:
    by = caller(request)
    scans = catalog_queries.list_scans(by=by, data_source_id=query.dataSourceId, dataset_id=query.datasetId)
    return paginate(catalog_queries.with_scan_details(scans, by=by), query.page, query.size, scan_out)


@router.get(
    "/scans/{scan_id}",
    response={200: ScanOut, **READ_ERRORS},
    summary="One scan",
    description="Needs View dataset on one of the datasets it checked (404 otherwise).",
)
def get_scan(request: HttpRequest, scan_id: ScanId) -> dict[str, Any]:
    by = caller(request)
    scan = catalog_queries.get_scan(scan_id, by=by)
    return scan_out(
        catalog_queries.with_scan_details(Scan.objects.filter(pk=scan.pk).select_related("created_by"), by=by)
    )[0]


@router.get(
    "/scans/{scan_id}/results",
    response={200: Page[CheckResultOut], **READ_ERRORS},
    summary="A scan's check results on datasets you can view",
    description="By dataset and check name. Needs View dataset on one of its datasets (404 otherwise).",
)
def list_scan_results(request: HttpRequest, scan_id: ScanId, query: Query[PageParams]) -> dict[str, Any]:
    results = catalog_queries.scan_results(scan_id, by=caller(request))
    return paginate(results, query.page, query.size, result_out)


@router.get(
    "/scans/{scan_id}/logs",
    response={200: Page[LogLine], **READ_ERRORS, 403: ErrorOut},
    summary="A scan's logs",
    description="The tool's log lines, which name every table and check of the scan, so only for admins, "
    "the scan's sender and those who can view all its datasets (403 for others; 404 if you can view "
    "none).",
)
def list_scan_logs(request: HttpRequest, scan_id: ScanId, query: Query[PageParams]) -> dict[str, Any]:
    lines = catalog_queries.scan_logs(scan_id, by=caller(request))
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
    summary="Failed-row samples of a check result",
    description="Needs Access failed row samples on the result's dataset (403 without; 404 if you "
    "cannot view it).",
)
def get_failed_rows(request: HttpRequest, result_id: ResultId) -> dict[str, Any]:
    samples = catalog_queries.failed_rows(result_id, by=caller(request))
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
    description="Needs View dataset on it (404 otherwise). Empty until a scan verifies a contract.",
)
def get_contract(request: HttpRequest, dataset_id: DatasetId) -> dict[str, Any]:
    dataset = catalog_queries.get_dataset(dataset_id, by=caller(request))
    return {
        "datasetId": dataset.pk,
        "contract": dataset.contract,
        "filePath": dataset.contract_file_path,
        "updatedAt": dataset.contract_updated_at,
    }


@router.get(
    "/checkAttributes",
    response={200: Page[CheckAttributeOut], **COMMON_ERRORS},
    summary="Check attributes",
    description="The attributes checks may carry, by name (Soda Cloud's check attributes). Any user.",
)
def list_check_attributes(request: HttpRequest, query: Query[PageParams]) -> dict[str, Any]:
    definitions = catalog_queries.list_check_attribute_definitions(by=caller(request))
    return paginate(definitions, query.page, query.size, lambda rows: [attribute_out(d) for d in rows])


@router.post(
    "/checkAttributes",
    response={201: CheckAttributeOut, **WRITE_ERRORS, 409: ErrorOut},
    summary="Define a check attribute (admins)",
    description="Admins only (403 for others). The name must be new (409 `name_taken`). `singleselect` "
    "and `multiselect` need their allowed values; the other types take none.",
    openapi_extra=request_examples(
        team=(
            "Which team owns a check",
            {
                "name": "team",
                "type": "singleselect",
                "label": "Owning team",
                "allowedValues": ["data-platform", "analytics", "finance"],
                "description": "The team that answers for the check's failures.",
            },
        ),
        reviewed=("A checkbox", {"name": "reviewed", "type": "checkbox", "label": "Reviewed by a person"}),
    ),
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
    description="Admins only (403 for others); 404 for an attribute that does not exist. Checks keep "
    "the values they carry.",
)
def delete_check_attribute(request: HttpRequest, definition_id: AttributeId) -> Status[None]:
    catalog.delete_check_attribute_definition(definition_id, by=caller(request))
    return Status(204, None)


@router.get(
    "/organization/failedRows",
    response={200: FailedRowsSettingsOut, **COMMON_ERRORS},
    summary="Whether failed-row samples are collected, and how large each may be",
    description="Any user may read them; admins change them (POST).",
)
def get_failed_rows_settings(request: HttpRequest) -> dict[str, Any]:
    org = get_organization(by=caller(request))
    return {"collectFailedRows": org.collect_failed_rows, "failedRowsMaxBytes": org.failed_rows_max_bytes}


@router.post(
    "/organization/failedRows",
    response={200: FailedRowsSettingsOut, **WRITE_ERRORS},
    summary="Turn failed-row samples on or off, or change their size limit (admins)",
    description="Admins only (403 for others). Fields left out stay as they are.",
    openapi_extra=request_examples(
        on=("Collect samples of up to 1 MiB", {"collectFailedRows": True, "failedRowsMaxBytes": 1_048_576}),
        off=("Stop collecting samples", {"collectFailedRows": False}),
    ),
)
def update_failed_rows_settings(request: HttpRequest, payload: FailedRowsSettingsIn) -> dict[str, Any]:
    org = catalog.update_failed_rows_settings(
        by=caller(request), collect=payload.collectFailedRows, max_bytes=payload.failedRowsMaxBytes
    )
    return {"collectFailedRows": org.collect_failed_rows, "failedRowsMaxBytes": org.failed_rows_max_bytes}


def _imported(scan_input: catalog_ingest.ScanInput, request: HttpRequest) -> Status[dict[str, Any]]:
    # What the document holds (a blank or over-long name) breaks rules the schema leaves to the
    # document's tool; ingest_scan refuses them with a 400 naming the code, as IMPORT_DESCRIPTION lists.
    scan, results = catalog_ingest.ingest_scan(scan_input, by=caller(request))
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
    "The same import as `quell ingest`: the results are stored as one scan, all or nothing, with the "
    "permissions of POST /checkResults (Manage checks on each existing dataset, the right to create "
    "new ones). A document that is not what it claims to be, or whose names break Quell's limits, is "
    "a 400 naming it (`malformed_file`; or, for what it holds, `empty_scan`, `invalid_outcome`, "
    "`invalid_sample`, `too_long`, `invisible_character`, `unknown_contract`); the schema leaves the "
    "documents' shapes to their tools. Importing the same run again stores nothing new."
)
IMPORT_RESPONSES: dict[int, Any] = {201: ImportedOut, **WRITE_ERRORS, **UNPROCESSABLE}


@router.post(
    "/imports/dbt",
    response=IMPORT_RESPONSES,
    summary="Import dbt test results (run_results.json with its manifest.json)",
    description=IMPORT_DESCRIPTION,
    openapi_extra=request_examples(
        test=(
            "One not_null test of a model, filed under the demo's postgres_app",
            {"runResults": DBT_RUN_RESULTS, "manifest": DBT_MANIFEST, "dataSource": "postgres_app"},
        )
    ),
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
    response=IMPORT_RESPONSES,
    summary="Import a Great Expectations 1.x validation or checkpoint result",
    description=IMPORT_DESCRIPTION,
    openapi_extra=request_examples(
        validation=(
            "A validation result for the demo's snowflake_prod/orders",
            {"result": GX_VALIDATION_RESULT, "dataSource": "snowflake_prod", "dataset": "orders"},
        )
    ),
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
    response=IMPORT_RESPONSES,
    summary="Import a Soda Core scan results file (`soda scan -srf`)",
    description=IMPORT_DESCRIPTION,
    openapi_extra=request_examples(
        scan=("A scan of the demo's snowflake_prod/orders", {"results": SODA_SCAN_RESULTS})
    ),
)
def import_soda(request: HttpRequest, payload: SodaImportIn) -> Status[dict[str, Any]]:
    return _imported(soda_file_scan(payload.results, by=caller(request), name="results"), request)
