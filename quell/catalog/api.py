"""REST endpoints for datasets, checks, their results, responsibilities and generic result ingestion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any, Literal

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Status
from pydantic import model_validator

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
    UtcDatetime,
    caller,
    paginate,
    rows_response,
    user_ref,
)
from quell.catalog import services
from quell.catalog.models import Check, CheckResult, Dataset, Responsibility

router = Router(tags=["datasets and checks"])

OutcomeName = Literal["pass", "warn", "fail", "excluded", "unevaluated"]


class DataSourceRef(Schema):
    id: int
    name: str


class DatasetOut(Schema):
    id: int
    name: str
    label: str
    dataSource: DataSourceRef
    owner: UserRef | None
    incidentCount: int
    openIncidentCount: int
    checkCount: int
    cloudUrl: str


class CheckOut(Schema):
    id: int
    name: str
    identity: str
    definition: str
    column: str | None
    type: str
    attributes: dict[str, Any]
    source: str
    datasetId: int
    datasets: list[DataSourceRef]
    evaluationStatus: str | None
    lastResultTimestamp: datetime | None
    cloudUrl: str


class CheckResultOut(Schema):
    id: int
    checkId: int
    checkName: str
    datasetId: int
    datasetName: str
    scanId: int | None
    outcome: str
    value: float | None
    dataTimestamp: UtcDatetime
    diagnostics: dict[str, Any]


class ResponsibilityItem(Schema):
    type: Literal["user", "userGroup"]
    userId: Id | None = None
    userGroupId: Id | None = None
    roleId: Id

    @model_validator(mode="after")
    def names_its_principal(self) -> ResponsibilityItem:
        if self.type == "user" and self.userId is None:
            raise ValueError('a responsibility of type "user" needs userId')
        if self.type == "userGroup" and self.userGroupId is None:
            raise ValueError('a responsibility of type "userGroup" needs userGroupId')
        return self

    @property
    def principal_id(self) -> int:
        principal = self.userId if self.type == "user" else self.userGroupId
        assert principal is not None
        return principal


class ResponsibilityOut(Schema):
    type: Literal["user", "userGroup"]
    userId: Id | None
    userGroupId: Id | None
    roleId: Id
    roleName: str
    name: str


class ResponsibilitiesIn(Schema):
    responsibilities: list[ResponsibilityItem]


class CheckIn(Schema):
    name: str = Field(..., min_length=1, max_length=1000)
    identity: str | None = Field(None, max_length=300)
    column: str | None = Field(None, max_length=500)
    definition: str | None = None
    type: str | None = Field(None, max_length=100)
    attributes: dict[str, Any] | None = None


class ResultIn(Schema):
    dataSource: str = Field(..., min_length=1, max_length=200)
    dataset: str = Field(..., min_length=1, max_length=500)
    check: CheckIn
    outcome: OutcomeName
    value: float | None = None
    dataTimestamp: UtcDatetime | None = None
    diagnostics: dict[str, Any] | None = None


class ResultsIn(Schema):
    dataTimestamp: UtcDatetime
    results: list[ResultIn] = Field(..., min_length=1, max_length=10_000)
    scanDefinition: str | None = Field(None, max_length=500)
    idempotencyKey: str | None = Field(
        None, max_length=200, description="Send the same key again and the results are stored only once."
    )


class IngestedResultOut(Schema):
    id: int
    checkId: int
    datasetId: int


class IngestedOut(Schema):
    scanId: int
    results: list[IngestedResultOut]


class DatasetQuery(PageParams):
    search: str = Field("", max_length=200)
    datasourceName: str = Field("", max_length=200)


class CheckQuery(PageParams):
    datasetId: Id | None = None


class ResultQuery(PageParams):
    outcome: list[OutcomeName] = Field(default_factory=list)


def dataset_out(datasets: Iterable[Dataset]) -> list[dict[str, Any]]:
    return [
        {
            "id": ds.pk,
            "name": ds.name,
            "label": ds.label,
            "dataSource": {"id": ds.data_source_id, "name": ds.data_source.name},
            "owner": user_ref(ds.owner),
            "incidentCount": ds.incident_count,  # type: ignore[attr-defined]
            "openIncidentCount": ds.open_incident_count,
            "checkCount": ds.check_count,
            "cloudUrl": f"{settings.BASE_URL}/datasets/{ds.pk}",
        }
        for ds in datasets
    ]


def _with_counts(datasets: Any) -> Any:
    # Open incidents and checks are counted on the dataset's row (quell.catalog.counters); all its
    # incidents by a subquery per dataset answered, where a join and GROUP BY counted the incidents
    # of every dataset the caller can view before the page was cut.
    counted = Dataset.objects.filter(pk=OuterRef("pk")).annotate(n=Count("incidents")).values("n")
    return datasets.select_related("owner").annotate(incident_count=Subquery(counted))


def check_out(checks: Iterable[Check]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.pk,
            "name": c.name,
            "identity": c.identity,
            "definition": c.definition,
            "column": c.column or None,
            "type": c.check_type,
            "attributes": c.attributes,
            "source": c.source,
            "datasetId": c.dataset_id,
            "datasets": [{"id": c.dataset_id, "name": c.dataset.name}],
            "evaluationStatus": c.last_outcome or None,
            "lastResultTimestamp": c.last_result_at,
            "cloudUrl": f"{settings.BASE_URL}/checks/{c.pk}",
        }
        for c in checks
    ]


def result_out(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.pk,
            "checkId": r.check_ref_id,
            "checkName": r.check_ref.name,
            "datasetId": r.dataset_id,
            "datasetName": r.dataset.name,
            "scanId": r.scan_id,
            "outcome": r.outcome,
            "value": r.value,
            "dataTimestamp": r.data_timestamp,
            "diagnostics": r.diagnostics,
        }
        for r in results
    ]


def responsibility_out(rows: Iterable[Responsibility]) -> list[dict[str, Any]]:
    return [
        {
            "type": "user" if r.user_id else "userGroup",
            "userId": r.user_id,
            "userGroupId": r.group_id,
            "roleId": r.role_id,
            "roleName": r.role.name,
            "name": r.user.email if r.user else (r.group.name if r.group else ""),
        }
        for r in rows
    ]


@router.get(
    "/datasets", response={200: Page[DatasetOut], **COMMON_ERRORS}, summary="List datasets you can view"
)
def list_datasets(request: HttpRequest, query: Query[DatasetQuery]) -> dict[str, Any]:
    datasets = services.list_datasets(
        by=caller(request), search=query.search, data_source_name=query.datasourceName
    )
    return paginate(_with_counts(datasets), query.page, query.size, dataset_out)


@router.get("/datasets/{dataset_id}", response={200: DatasetOut, **READ_ERRORS}, summary="One dataset")
def get_dataset(request: HttpRequest, dataset_id: PathId) -> dict[str, Any]:
    dataset = services.get_dataset(dataset_id, by=caller(request))
    return dataset_out(_with_counts(Dataset.objects.filter(pk=dataset.pk).select_related("data_source")))[0]


@router.get(
    "/datasets/{dataset_id}/responsibilities",
    response={200: Page[ResponsibilityOut], **READ_ERRORS, 403: ErrorOut},
    summary="Who holds which role on a dataset",
)
def list_responsibilities(request: HttpRequest, dataset_id: PathId) -> dict[str, Any]:
    rows = services.list_responsibilities(dataset_id, by=caller(request))
    return _list_page(responsibility_out(rows))


@router.post(
    "/datasets/{dataset_id}/responsibilities",
    response={200: Page[ResponsibilityOut], **WRITE_ERRORS},
    summary="Replace a dataset's responsibilities",
    description="The body is `{responsibilities: [...]}` or the bare list; it replaces the current list.",
)
def set_responsibilities(
    request: HttpRequest, dataset_id: PathId, payload: ResponsibilitiesIn | list[ResponsibilityItem]
) -> dict[str, Any]:
    items = payload.responsibilities if isinstance(payload, ResponsibilitiesIn) else payload
    inputs = [
        services.ResponsibilityInput(type=item.type, principal_id=item.principal_id, role_id=item.roleId)
        for item in items
    ]
    rows = services.set_responsibilities(dataset_id, inputs, by=caller(request))
    return _list_page(responsibility_out(rows))


@router.get("/checks", response={200: Page[CheckOut], **COMMON_ERRORS}, summary="List checks you can view")
def list_checks(request: HttpRequest, query: Query[CheckQuery]) -> dict[str, Any]:
    checks = services.list_checks(by=caller(request), dataset_id=query.datasetId)
    return paginate(checks, query.page, query.size, check_out)


@router.get("/checks/{check_id}", response={200: CheckOut, **READ_ERRORS}, summary="One check")
def get_check(request: HttpRequest, check_id: PathId) -> dict[str, Any]:
    return check_out([services.get_check(check_id, by=caller(request))])[0]


@router.get(
    "/checks/{check_id}/results",
    response={200: Page[CheckResultOut], **READ_ERRORS},
    summary="A check's results, newest first",
)
def list_check_results(request: HttpRequest, check_id: PathId, query: Query[ResultQuery]) -> HttpResponse:
    by = caller(request)
    check = services.get_check(check_id, by=by)
    results = services.list_check_results(check, by=by, outcomes=list(query.outcome))
    # Plain rows, not a CheckResult and a Dataset per result: a year of results is 366 rows.
    rows = results.values_list(*_CHECK_RESULT_COLUMNS)
    page = paginate(rows, query.page, query.size, partial(_check_result_rows, check))
    return rows_response(Page[CheckResultOut], page)


_CHECK_RESULT_COLUMNS = (
    "id",
    "dataset_id",
    "dataset__name",
    "scan_id",
    "outcome",
    "value",
    "data_timestamp",
    "diagnostics",
)


def _check_result_rows(check: Check, rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """result_out's shape from rows of _CHECK_RESULT_COLUMNS, all results of `check`."""
    return [
        {
            "id": pk,
            "checkId": check.pk,
            "checkName": check.name,
            "datasetId": dataset_id,
            "datasetName": dataset_name,
            "scanId": scan_id,
            "outcome": outcome,
            "value": value,
            "dataTimestamp": data_timestamp,
            "diagnostics": diagnostics,
        }
        for pk, dataset_id, dataset_name, scan_id, outcome, value, data_timestamp, diagnostics in rows
    ]


@router.post(
    "/checkResults",
    response={201: IngestedOut, **WRITE_ERRORS},
    summary="Push check results from any tool",
    description=(
        "Creates data sources, datasets and checks as needed, all or nothing. Needs the permission to "
        "create datasets for new ones and Manage checks on existing ones."
    ),
)
def push_check_results(request: HttpRequest, payload: ResultsIn) -> Status[dict[str, Any]]:
    scan_input = services.ScanInput(
        data_timestamp=payload.dataTimestamp,
        source="api",
        definition_name=payload.scanDefinition or "",
        idempotency_key=f"api:{payload.idempotencyKey}" if payload.idempotencyKey else None,
        results=[
            services.ResultInput(
                data_source=r.dataSource,
                dataset=r.dataset,
                check=services.CheckInput(
                    name=r.check.name,
                    identity=r.check.identity or "",
                    column=r.check.column or "",
                    definition=r.check.definition or "",
                    check_type=r.check.type or "",
                    attributes=r.check.attributes or {},
                ),
                outcome=r.outcome,
                value=r.value,
                data_timestamp=r.dataTimestamp,
                diagnostics=r.diagnostics or {},
            )
            for r in payload.results
        ],
    )
    scan, results = services.ingest_scan(scan_input, by=caller(request))
    return Status(
        201,
        {
            "scanId": scan.pk,
            "results": [{"id": r.pk, "checkId": r.check_ref_id, "datasetId": r.dataset_id} for r in results],
        },
    )


def _list_page(content: list[Any]) -> dict[str, Any]:
    return {
        "content": content,
        "first": True,
        "last": True,
        "number": 0,
        "size": len(content),
        "totalElements": len(content),
        "totalPages": 1 if content else 0,
    }
