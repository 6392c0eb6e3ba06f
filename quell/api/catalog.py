"""REST endpoints for datasets, checks, their results, responsibilities and generic result ingestion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, get_args

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from ninja import Field, Path, Query, Router, Status
from pydantic import ConfigDict, model_validator

from quell.accounts.models import Responsibility
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
    UserRef,
    UtcDatetime,
    caller,
    paginate,
    request_examples,
    rows_response,
    text,
    user_ref,
)
from quell.api.mutes import MutedOut, muted_out
from quell.catalog import ingest, queries, services
from quell.catalog.models import Check, CheckResult, Dataset
from quell.incidents.mutes import mutes_of_checks, mutes_of_datasets
from quell.lib.text import NON_BLANK_ONE_LINE_PATTERN, NON_BLANK_TEXT_PATTERN

router = Router(tags=["datasets and checks"])

OutcomeName = Literal["pass", "warn", "fail", "excluded", "unevaluated"]
OUTCOMES = "`pass`, `warn`, `fail`, `excluded` (the check did not apply) or `unevaluated` (it could not run)"
DatasetId = Annotated[int, Path(ge=1, le=MAX_ID, description="The dataset's id.", example=5)]
CheckId = Annotated[int, Path(ge=1, le=MAX_ID, description="The check's id.", example=1)]
# At most this many results in one push, so that one request stays one reasonable transaction.
RESULTS_PER_PUSH = 10_000
_FLOAT_MAX = 1.7976931348623157e308
SEARCH_MAX = 200


class DataSourceRef(Schema):
    id: int = Field(description="The data source's id.")
    name: str = Field(description="The data source's name, as the tool that pushes to it calls it.")


class DatasetOut(Schema):
    id: int = Field(description="The dataset's id.")
    name: str = Field(description="The dataset's name (a table's), unique within its data source.")
    label: str = Field(description="A display name an admin gave it; empty when it has none.")
    dataSource: DataSourceRef = Field(description="The data source the dataset belongs to.")
    owner: UserRef | None = Field(description="Who owns the dataset (its first pusher); null when no one.")
    incidentCount: int = Field(description="How many incidents involve the dataset, resolved ones too.")
    openIncidentCount: int = Field(description="How many of them are not resolved.")
    checkCount: int = Field(description="How many checks the dataset has.")
    muted: MutedOut | None = Field(
        description="The mute of the whole dataset (scope `dataset`) until it ends; null when not muted."
    )
    cloudUrl: str = Field(description="The dataset's page in Quell.")


class CheckOut(Schema):
    id: int = Field(description="The check's id.")
    name: str = Field(description="The check's name, as its tool reports it (`row_count > 0`).")
    identity: str = Field(
        description="What keeps the check's history together across scans: the tool's own identity, "
        "or one Quell derived from the data source, dataset and name."
    )
    definition: str = Field(description="The check's definition (Soda's YAML, a dbt test), when known.")
    column: str | None = Field(description="The column the check is about; null when none.")
    type: str = Field(description="The kind of check (`row_count`, `missing_count`, `not_null`, ...).")
    attributes: dict[str, Any] = Field(
        description="Attributes its tool gave it (`dimension`, `severity`, ...)."
    )
    source: str = Field(description="Which tool reported it: `soda-core`, `dbt`, `gx`, `api`, ...")
    datasetId: int = Field(description="The dataset the check belongs to.")
    datasets: list[DataSourceRef] = Field(description="That dataset, as a list (Soda Cloud's shape).")
    evaluationStatus: str | None = Field(
        description=f"The latest result's outcome: {OUTCOMES}; null before any."
    )
    lastResultTimestamp: datetime | None = Field(description="The data time of the latest result.")
    muted: MutedOut | None = Field(
        description="The mute the check is under until it ends: its own (scope `check`) or its whole "
        "dataset's (`dataset`), whichever ends later; null when not muted."
    )
    cloudUrl: str = Field(description="The check's page in Quell.")


class CheckResultOut(Schema):
    id: int = Field(description="The result's id (what incidents link).")
    checkId: int = Field(description="The check it is a result of.")
    checkName: str = Field(description="That check's name.")
    datasetId: int = Field(description="The dataset the check belongs to.")
    datasetName: str = Field(description="That dataset's name.")
    scanId: int | None = Field(description="The scan that reported it.")
    outcome: str = Field(description=f"The outcome: {OUTCOMES}.")
    value: float | None = Field(
        description="The measured value (a row count, a percentage), when there is one."
    )
    dataTimestamp: UtcDatetime = Field(description="The time of the data the check looked at (UTC).")
    diagnostics: dict[str, Any] = Field(
        description="What the tool reported with it (thresholds, samples, ...)."
    )


class ResponsibilityItem(Body):
    # The rule names_its_principal enforces, in the schema's words.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"type": {"const": "user"}, "userId": {"type": "integer"}},
                    "required": ["userId"],
                },
                {
                    "properties": {"type": {"const": "userGroup"}, "userGroupId": {"type": "integer"}},
                    "required": ["userGroupId"],
                },
            ]
        }
    )

    type: Literal["user", "userGroup"] = Field(
        description="`user` (give userId) or `userGroup` (give userGroupId)."
    )
    userId: Id | None = Field(None, description="The user who holds the role, for type `user`.", examples=[2])
    userGroupId: Id | None = Field(
        None, description="The group whose members hold the role, for type `userGroup`.", examples=[1]
    )
    roleId: Id = Field(description="The dataset role they hold (GET /datasets/roles).", examples=[2])

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
    type: Literal["user", "userGroup"] = Field(description="Whether a user or a group holds the role.")
    userId: Id | None = Field(description="The user, for type `user`; else null.")
    userGroupId: Id | None = Field(description="The group, for type `userGroup`; else null.")
    roleId: Id = Field(description="The dataset role they hold.")
    roleName: str = Field(description="That role's name.")
    name: str = Field(description="The user's email or the group's name.")


class ResponsibilitiesIn(Body):
    responsibilities: list[ResponsibilityItem] = Field(
        description="Who holds which role on the dataset: the whole list, which replaces the current one."
    )


# A check's name may span lines (Soda falls back to a multi-line definition when a check has none).
class CheckIn(Body):
    name: str = text(
        description="The check's name: not blank; may span lines.",
        max_length=ingest.LIMITS["check.name"],
        pattern=NON_BLANK_TEXT_PATTERN,
        examples=["row_count > 0"],
    )
    identity: str | None = Field(
        None,
        description="The check's identity across scans; left out, Quell derives one from the data "
        "source, dataset and name, so the same name on the same dataset is the same check.",
        max_length=ingest.LIMITS["check.identity"],
    )
    column: str | None = text(
        None, description="The column the check is about, if one.", max_length=ingest.LIMITS["check.column"]
    )
    definition: str | None = Field(
        None, description="The check's definition (YAML, SQL, ...), kept as given."
    )
    type: str | None = Field(
        None,
        description="The kind of check (`row_count`, `missing_count`, ...).",
        max_length=ingest.LIMITS["check.type"],
    )
    attributes: dict[str, Any] | None = Field(None, description="Attributes of the check, kept as given.")


class ResultIn(Body):
    dataSource: str = text(
        description="The data source's name; one line, not blank. A new name creates the data source.",
        max_length=ingest.LIMITS["dataSource"],
        pattern=NON_BLANK_ONE_LINE_PATTERN,
        examples=["snowflake_prod"],
    )
    dataset: str = text(
        description="The dataset's (table's) name in that data source; one line, not blank. A new name "
        "creates the dataset, if you may create datasets there.",
        max_length=ingest.LIMITS["dataset"],
        pattern=NON_BLANK_ONE_LINE_PATTERN,
        examples=["orders"],
    )
    check: CheckIn = Field(description="The check this is a result of; created on first sight.")
    outcome: OutcomeName = Field(description=f"The outcome: {OUTCOMES}.")
    value: float | None = Field(
        None, ge=-_FLOAT_MAX, le=_FLOAT_MAX, description="The measured value, a finite number, if any."
    )
    dataTimestamp: UtcDatetime | None = Field(
        None, description="The time of the data checked; left out, the push's dataTimestamp."
    )
    diagnostics: dict[str, Any] | None = Field(
        None, description="Anything else to keep with the result (thresholds, messages), shown on its page."
    )


class ResultsIn(Body):
    dataTimestamp: UtcDatetime = Field(
        description="The time of the data the checks looked at.", examples=["2026-11-26T06:00:00Z"]
    )
    results: list[ResultIn] = Field(
        ..., min_length=1, max_length=RESULTS_PER_PUSH, description="The results, stored as one scan."
    )
    scanDefinition: str | None = text(
        None,
        description="A name for the scan (Soda's scan definition); one line.",
        max_length=ingest.LIMITS["definitionName"],
    )
    idempotencyKey: str | None = Field(
        None, max_length=200, description="Send the same key again and the results are stored only once."
    )


class IngestedResultOut(Schema):
    id: int = Field(description="The stored result's id, which incidents link.")
    checkId: int = Field(description="The check it belongs to (created if it was new).")
    datasetId: int = Field(description="The dataset it belongs to (created if it was new).")


class IngestedOut(Schema):
    scanId: int = Field(description="The scan that holds the results.")
    results: list[IngestedResultOut] = Field(description="The stored results, in the order sent.")


class DatasetQuery(PageParams):
    search: str = Field("", max_length=SEARCH_MAX, description="Keeps datasets whose name contains this.")
    datasourceName: str = Field(
        "", max_length=ingest.LIMITS["dataSource"], description="Keeps the datasets of this data source."
    )


class CheckQuery(PageParams):
    datasetId: Id | None = Field(None, description="Keeps the checks of this dataset.")


class ResultQuery(PageParams):
    outcome: list[OutcomeName] = Field(
        default_factory=list,
        max_length=len(get_args(OutcomeName)),
        description="Keeps results with one of these outcomes (repeat the parameter); none: all.",
    )


def dataset_out(datasets: Iterable[Dataset]) -> list[dict[str, Any]]:
    datasets = list(datasets)
    mutes = mutes_of_datasets(ds.pk for ds in datasets)  # one statement for the page
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
            "muted": muted_out(mutes.get(ds.pk)),
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
    checks = list(checks)
    mutes = mutes_of_checks((c.pk, c.dataset_id) for c in checks)  # one statement for the page
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
            "muted": muted_out(mutes.get(c.pk)),
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
    "/datasets",
    response={200: Page[DatasetOut], **COMMON_ERRORS},
    summary="List datasets you can view",
    description="The datasets on which you hold View dataset (admins: all), by data source and name.",
)
def list_datasets(request: HttpRequest, query: Query[DatasetQuery]) -> dict[str, Any]:
    datasets = queries.list_datasets(
        by=caller(request), search=query.search, data_source_name=query.datasourceName
    )
    return paginate(_with_counts(datasets), query.page, query.size, dataset_out)


@router.get(
    "/datasets/{dataset_id}",
    response={200: DatasetOut, **READ_ERRORS},
    summary="One dataset",
    description="Needs View dataset on it (404 otherwise, as for a dataset that does not exist).",
)
def get_dataset(request: HttpRequest, dataset_id: DatasetId) -> dict[str, Any]:
    dataset = queries.get_dataset(dataset_id, by=caller(request))
    return dataset_out(_with_counts(Dataset.objects.filter(pk=dataset.pk).select_related("data_source")))[0]


@router.get(
    "/datasets/{dataset_id}/responsibilities",
    response={200: Page[ResponsibilityOut], **READ_ERRORS, 403: ErrorOut},
    summary="Who holds which role on a dataset",
    description="Needs Manage dataset responsibilities on it (403 without; 404 if you cannot view it).",
)
def list_responsibilities(request: HttpRequest, dataset_id: DatasetId) -> dict[str, Any]:
    rows = queries.list_responsibilities(dataset_id, by=caller(request))
    return _list_page(responsibility_out(rows))


@router.post(
    "/datasets/{dataset_id}/responsibilities",
    response={200: Page[ResponsibilityOut], **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Replace a dataset's responsibilities",
    description="Needs Manage dataset responsibilities on the dataset (403 without; 404 if you cannot "
    "view it). The body is `{responsibilities: [...]}` or the bare list (as Soda Cloud takes it); it "
    "replaces the whole current list, so an empty list leaves the dataset to admins. Each item names "
    "an active user (`userId`) or a group (`userGroupId`) and a role; one that names no such role, "
    "active user or group, or the same user or group twice, is a 400 (`unknown_role`, "
    "`unknown_user`, `unknown_group`, `duplicate`).",
    openapi_extra=request_examples(
        team=(
            "Everyone views inventory, Marco manages it, Elena edits it (the demo's own)",
            {
                "responsibilities": [
                    {"type": "userGroup", "userGroupId": 1, "roleId": 4},
                    {"type": "user", "userId": 2, "roleId": 2},
                    {"type": "user", "userId": 3, "roleId": 3},
                ]
            },
        )
    ),
)
def set_responsibilities(
    request: HttpRequest, dataset_id: DatasetId, payload: ResponsibilitiesIn | list[ResponsibilityItem]
) -> dict[str, Any]:
    items = payload.responsibilities if isinstance(payload, ResponsibilitiesIn) else payload
    inputs = [
        services.ResponsibilityInput(type=item.type, principal_id=item.principal_id, role_id=item.roleId)
        for item in items
    ]
    rows = services.set_responsibilities(dataset_id, inputs, by=caller(request))
    return _list_page(responsibility_out(rows))


@router.get(
    "/checks",
    response={200: Page[CheckOut], **COMMON_ERRORS},
    summary="List checks you can view",
    description="The checks of the datasets on which you hold View dataset, by dataset and name.",
)
def list_checks(request: HttpRequest, query: Query[CheckQuery]) -> dict[str, Any]:
    checks = queries.list_checks(by=caller(request), dataset_id=query.datasetId)
    return paginate(checks, query.page, query.size, check_out)


@router.get(
    "/checks/{check_id}",
    response={200: CheckOut, **READ_ERRORS},
    summary="One check",
    description="Needs View dataset on its dataset (404 otherwise).",
)
def get_check(request: HttpRequest, check_id: CheckId) -> dict[str, Any]:
    return check_out([queries.get_check(check_id, by=caller(request))])[0]


@router.get(
    "/checks/{check_id}/results",
    response={200: Page[CheckResultOut], **READ_ERRORS},
    summary="A check's results, newest first",
    description="By data time, newest first. Needs View dataset on the check's dataset (404 otherwise).",
)
def list_check_results(request: HttpRequest, check_id: CheckId, query: Query[ResultQuery]) -> HttpResponse:
    by = caller(request)
    check = queries.get_check(check_id, by=by)
    results = queries.list_check_results(check, by=by, outcomes=list(query.outcome))
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
    description="Stores the results as one scan, creating data sources, datasets and checks as needed, "
    "all or nothing. Needs Manage checks on each existing dataset named, and for a new dataset the "
    "right to create datasets (admins; others when the organisation lets users create datasets and "
    "they manage checks in that data source). A dataset you cannot see is refused like one you may "
    "not create (403), so a push never tells you whether it exists. With an `idempotencyKey` sent "
    "before, the scan stored then is answered and nothing is written.",
    openapi_extra=request_examples(
        failing=(
            "A failing row count on the demo's snowflake_prod/orders",
            {
                "dataTimestamp": "2026-11-26T06:00:00Z",
                "results": [
                    {
                        "dataSource": "snowflake_prod",
                        "dataset": "orders",
                        "check": {"name": "row_count > 0"},
                        "outcome": "fail",
                        "value": 0,
                    }
                ],
            },
        ),
        described=(
            "A new check with its definition, column and diagnostics, sent at most once",
            {
                "dataTimestamp": "2026-11-26T06:00:00Z",
                "scanDefinition": "nightly_orders",
                "idempotencyKey": "nightly_orders-2026-11-26",
                "results": [
                    {
                        "dataSource": "snowflake_prod",
                        "dataset": "orders",
                        "check": {
                            "name": "missing_count(currency) = 0",
                            "column": "currency",
                            "type": "missing_count",
                            "definition": "checks for orders:\n  - missing_count(currency) = 0",
                            "attributes": {"dimension": "Completeness"},
                        },
                        "outcome": "warn",
                        "value": 12,
                        "diagnostics": {"value": 12, "fail": {"greaterThan": 100}},
                    }
                ],
            },
        ),
    ),
)
def push_check_results(request: HttpRequest, payload: ResultsIn) -> Status[dict[str, Any]]:
    scan_input = ingest.ScanInput(
        data_timestamp=payload.dataTimestamp,
        source="api",
        definition_name=payload.scanDefinition or "",
        idempotency_key=f"api:{payload.idempotencyKey}" if payload.idempotencyKey else None,
        results=[
            ingest.ResultInput(
                data_source=r.dataSource,
                dataset=r.dataset,
                check=ingest.CheckInput(
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
    scan, results = ingest.ingest_scan(scan_input, by=caller(request))
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
