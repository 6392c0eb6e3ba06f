"""Domain operations on the catalog: datasets, responsibilities, ingesting scans, their history and samples."""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Concat, RowNumber
from django.utils import timezone

from quell.accounts.models import DatasetRole, Organization, User, UserGroup
from quell.catalog import access, counters
from quell.catalog.events import ResponsibilitiesChanged, ResultsIngested
from quell.catalog.models import (
    FAILING_OUTCOMES,
    AttributeType,
    Check,
    CheckAttributeDefinition,
    CheckResult,
    ContractUpload,
    Dataset,
    DataSource,
    FailedRowsSample,
    Measurement,
    Outcome,
    Responsibility,
    Scan,
    ScanState,
)
from quell.incidents.models import OPEN_STATUSES
from quell.lib import events, metrics
from quell.lib.errors import Forbidden, Invalid, NotFound, Taken, Unprocessable
from quell.lib.jsontext import UnreadableJSON, parse_json
from quell.lib.seen import checked_for, mark_checked
from quell.lib.text import require_plain_text

MANAGER_ROLE = "Manager"


# --- Datasets -------------------------------------------------------------------------------------


def create_dataset(data_source: DataSource, name: str, *, owner: User | None) -> tuple[Dataset, bool]:
    """Create a dataset with its starting responsibilities; (the dataset, True).

    Everyone gets the organisation's default role (none if an admin chose none), and the user who
    brought the dataset in becomes its owner with the Manager role, as in Soda Cloud. When another
    transaction committed the same name first, this returns (theirs, False) and writes nothing:
    get_or_create INSERTs in a savepoint, which on PostgreSQL waits for that writer and then fails
    alone, and reads their row again.
    """
    dataset, created = Dataset.objects.get_or_create(
        data_source=data_source, name=name, defaults={"owner": owner}
    )
    if not created:
        return dataset, False
    default_role = Organization.get().default_dataset_role
    # No incident can be linked to the dataset yet, so no status counter depends on who sees it.
    if default_role is not None:
        Responsibility.objects.create(
            dataset=dataset, group=UserGroup.objects.get(is_everyone=True), role=default_role
        )
    if owner is not None and not owner.is_admin:
        Responsibility.objects.create(
            dataset=dataset, user=owner, role=DatasetRole.objects.get(name=MANAGER_ROLE)
        )
    return dataset, True


DATASET_SEARCH_WORDS = 10


def list_datasets(
    *, by: User, search: str = "", data_source_name: str = "", matching: str = ""
) -> QuerySet[Dataset]:
    """The datasets the caller can view, by data source and name.

    `search` keeps names containing it; `matching` (the dataset pickers' search) keeps datasets whose
    `source/name` contains every word of it. Both ignore case.
    """
    # Each dataset probed for the caller's view permission, in the order listed: a page or a picker
    # stops after its first rows, where building the member's whole list of viewable datasets first
    # took 25-40 ms at 1,000,000 incidents on PostgreSQL (counting them by probes is faster too).
    datasets = access.only_viewable(Dataset.objects.all(), by, "pk").select_related("data_source")
    if search:
        datasets = datasets.filter(name__icontains=search)
    words = matching.split()[:DATASET_SEARCH_WORDS]
    if words:
        datasets = datasets.alias(path=Concat("data_source__name", Value("/"), "name"))
        for word in words:
            datasets = datasets.filter(path__icontains=word)
    if data_source_name:
        datasets = datasets.filter(data_source__name=data_source_name)
    return datasets.order_by("data_source__name", "name", "id")


def get_dataset(dataset_id: int, *, by: User) -> Dataset:
    return access.visible_dataset(by, dataset_id)


def get_data_source(data_source_id: int, *, by: User) -> DataSource:
    """A data source the caller can view one of the datasets of; NotFound for the others."""
    source = DataSource.objects.filter(
        pk=data_source_id, pk__in=access.datasets_with(by).values("data_source_id")
    ).first()
    if source is None:
        raise NotFound(f"Data source {data_source_id} not found.")
    return source


# --- Responsibilities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsibilityInput:
    type: str  # "user" or "userGroup"
    principal_id: int
    role_id: int


def list_responsibilities(dataset_id: int, *, by: User) -> list[Responsibility]:
    dataset = access.visible_dataset(by, dataset_id)
    access.require(by, dataset, access.MANAGE_PERMISSIONS, "see its responsibilities")
    return list(dataset.responsibilities.select_related("user", "group", "role").order_by("id"))


def set_responsibilities(
    dataset_id: int, items: list[ResponsibilityInput], *, by: User
) -> list[Responsibility]:
    """Replace a dataset's whole list of responsibilities, as Soda's POST does."""
    dataset = access.visible_dataset(by, dataset_id)
    access.require(by, dataset, access.MANAGE_PERMISSIONS, "change its responsibilities")
    roles = DatasetRole.objects.in_bulk({item.role_id for item in items})
    user_ids = {item.principal_id for item in items if item.type == "user"}
    group_ids = {item.principal_id for item in items if item.type == "userGroup"}
    users = User.objects.filter(is_active=True).in_bulk(user_ids)
    groups = UserGroup.objects.in_bulk(group_ids)
    seen: set[tuple[str, int]] = set()
    rows: list[Responsibility] = []
    for position, item in enumerate(items):
        where = f"responsibilities[{position}]"
        if item.role_id not in roles:
            raise Unprocessable(
                f"{where}: there is no dataset role {item.role_id}.", code="unknown_role", field=where
            )
        if item.type == "user":
            if item.principal_id not in users:
                raise Unprocessable(
                    f"{where}: there is no active user {item.principal_id}.", code="unknown_user", field=where
                )
            row = Responsibility(dataset=dataset, user=users[item.principal_id], role=roles[item.role_id])
        elif item.type == "userGroup":
            if item.principal_id not in groups:
                raise Unprocessable(
                    f"{where}: there is no user group {item.principal_id}.", code="unknown_group", field=where
                )
            row = Responsibility(dataset=dataset, group=groups[item.principal_id], role=roles[item.role_id])
        else:
            raise Invalid(f'{where}: type must be "user" or "userGroup".', field=where)
        if (item.type, item.principal_id) in seen:
            raise Unprocessable(f"{where}: names the same {item.type} twice.", code="duplicate", field=where)
        seen.add((item.type, item.principal_id))
        rows.append(row)
    with transaction.atomic():
        dataset.responsibilities.all().delete()
        Responsibility.objects.bulk_create(rows)
        events.record(ResponsibilitiesChanged(dataset_id=dataset.pk, by=by))
    # Read back rather than re-check: the caller may just have removed their own access.
    return list(dataset.responsibilities.select_related("user", "group", "role").order_by("id"))


# --- Checks and results ---------------------------------------------------------------------------


CHECK_SEARCH_WORDS = 10


def list_checks(
    *,
    by: User,
    dataset_id: int | None = None,
    outcomes: list[str] | None = None,
    search: str = "",
    attention_first: bool = False,
) -> QuerySet[Check]:
    """The checks the caller can view, by dataset and name.

    `outcomes` keeps checks whose latest outcome is one of them; `search` keeps checks whose name
    contains every word of it (ignoring case). `attention_first` puts first the checks that warn or
    fail now and have no result in an open incident (each annotated `needs_attention`).
    """
    checks = Check.objects.filter(dataset__in=access.datasets_with(by)).select_related("dataset__data_source")
    if dataset_id is not None:
        checks = checks.filter(dataset_id=dataset_id)
    if outcomes:
        checks = checks.filter(last_outcome__in=outcomes)
    for word in search.split()[:CHECK_SEARCH_WORDS]:
        checks = checks.filter(name__icontains=word)
    if not attention_first:
        return checks.order_by("dataset_id", "name", "id")
    in_open_incident = CheckResult.objects.filter(
        check_ref=OuterRef("pk"), incident_links__incident__status__in=OPEN_STATUSES
    )
    # The CASE probes only the checks that warn or fail (a few), each through its results' index
    # (result_check_newest) and the links' index on check_result, not every visible check.
    needs_attention = Case(
        When(last_outcome__in=FAILING_OUTCOMES, then=~Exists(in_open_incident)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return checks.annotate(needs_attention=needs_attention).order_by(
        "-needs_attention", "dataset__data_source__name", "dataset__name", "name", "id"
    )


def get_check(check_id: int, *, by: User) -> Check:
    check = list_checks(by=by).filter(pk=check_id).first()
    if check is None:
        raise NotFound(f"Check {check_id} not found.")
    return mark_checked(check, by)


def list_check_results(
    check: Check | int, *, by: User, outcomes: list[str] | None = None
) -> QuerySet[CheckResult]:
    """A check's results, newest first. `check` may be one get_check fetched for `by` (see quell.lib.seen)."""
    if not (isinstance(check, Check) and checked_for(check, by)):
        check = get_check(check.pk if isinstance(check, Check) else check, by=by)
    # The reverse manager gives each result this same `check` as its check_ref, with no join (a join
    # built a Check, JSON fields parsed, for each of a year's 366 results).
    results = check.results.select_related("dataset")
    if outcomes:
        results = results.filter(outcome__in=outcomes)
    return results.order_by("-data_timestamp", "-id")


def visible_check_results(*, by: User) -> QuerySet[CheckResult]:
    return CheckResult.objects.filter(dataset__in=access.datasets_with(by))


def recent_results_of_checks(check_ids: list[int], *, by: User, per_check: int) -> QuerySet[CheckResult, Any]:
    """The newest `per_check` results of each of these checks that the caller can view, in one query
    (the incident page's small charts). Rows of id, check_ref_id, data_timestamp, outcome, value and
    the diagnostics' `fail` and `warn` thresholds (not the whole diagnostics, which may hold samples)."""
    # One LIMITed subquery per check, each a short walk of result_check_newest: a window over the
    # checks' whole history would number every result they ever had (years of hourly scans) to keep 30.
    newest = Q(pk__in=[])
    for check_id in check_ids:
        newest |= Q(
            pk__in=CheckResult.objects.filter(check_ref_id=check_id)
            .order_by("-data_timestamp", "-id")
            .values("pk")[:per_check]
        )
    return (
        visible_check_results(by=by)
        .filter(newest)
        .values(
            "id",
            "check_ref_id",
            "data_timestamp",
            "outcome",
            "value",
            "diagnostics__fail",
            "diagnostics__warn",
        )
    )


# --- Ingestion ------------------------------------------------------------------------------------

# Column sizes, checked before writing so an over-long name is a 400 rather than a database error.
LIMITS = {
    "dataSource": 200,
    "dataset": 500,
    "check.name": 1000,
    "check.identity": 300,
    "check.column": 500,
    "check.type": 100,
    "metric.identity": 1000,
    "metric.metricName": 200,
    "definitionName": 500,
    "externalId": 300,
    "client": 200,
}


@dataclass
class CheckInput:
    name: str
    identity: str = ""
    column: str = ""
    definition: str = ""
    check_type: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    metric_identities: list[str] = field(default_factory=list)
    location: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleRef:
    """A failed-rows sample a result refers to by the file id its upload was given."""

    file_id: str
    columns: list[Any] = field(default_factory=list)
    total_row_count: int | None = None


@dataclass
class ResultInput:
    data_source: str
    dataset: str
    check: CheckInput
    outcome: str
    value: float | None = None
    data_timestamp: datetime | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    samples: list[SampleRef] = field(default_factory=list)


@dataclass
class MeasurementInput:
    identity: str
    metric_name: str
    value: Any
    data_source: str = ""
    dataset: str = ""


@dataclass
class ContractInput:
    """A contract uploaded before the scan (by file id) that the scan verified on this dataset."""

    data_source: str
    dataset: str
    file_id: str
    file_path: str = ""


@dataclass
class ScanInput:
    data_timestamp: datetime
    results: list[ResultInput]
    source: str = "api"
    definition_name: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    has_errors: bool = False
    logs: list[Any] = field(default_factory=list)
    measurements: list[MeasurementInput] = field(default_factory=list)
    idempotency_key: str | None = None
    data_source_types: dict[str, str] = field(default_factory=dict)
    external_id: str = ""
    client: str = ""
    contracts: list[ContractInput] = field(default_factory=list)


Progress = Callable[[int], object]


def derived_identity(data_source: str, dataset: str, check_name: str) -> str:
    """An identity for checks whose tool gives none: the same name on the same dataset is the same check."""
    return hashlib.sha256(f"{data_source}\x1f{dataset}\x1f{check_name}".encode()).hexdigest()[:16]


def ingest_scan(
    scan_input: ScanInput, *, by: User, on_progress: Progress | None = None
) -> tuple[Scan, list[CheckResult]]:
    """Store a scan with its results and measurements, creating data sources, datasets and checks.

    All or nothing: any invalid result or missing permission raises before anything is kept. A scan
    whose idempotency key was seen before returns the stored scan and writes nothing. `on_progress`
    is called with the number of results stored since its last call.
    """
    _validate(scan_input)
    if scan_input.idempotency_key:
        # Keys are the sender's own: another user's identical key must neither return nor block theirs.
        key = f"{by.pk}:{scan_input.idempotency_key}"
        if len(key) > IDEMPOTENCY_KEY_MAX:
            key = f"{by.pk}:sha256:{hashlib.sha256(scan_input.idempotency_key.encode()).hexdigest()}"
        scan_input = replace(scan_input, idempotency_key=key)
        existing = _stored_scan(key)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            scan, results = _ingest(scan_input, by, on_progress)
            # Counted when it commits: a scan rolled back with an outer transaction was never ingested.
            outcomes = [result.outcome for result in results]
            transaction.on_commit(partial(metrics.count_ingested, scan_input.source, outcomes))
            return scan, results
    except IntegrityError:
        # Someone stored the same scan in the meantime; theirs stands.
        if scan_input.idempotency_key:
            existing = _stored_scan(scan_input.idempotency_key)
            if existing is not None:
                return existing
        raise


IDEMPOTENCY_KEY_MAX = 300


def _stored_scan(key: str) -> tuple[Scan, list[CheckResult]] | None:
    scan = Scan.objects.filter(idempotency_key=key).first()
    if scan is None:
        return None
    return scan, list(scan.results.select_related("check_ref", "dataset__data_source").order_by("id"))


def _too_long(where: str, name: str, value: str) -> None:
    limit = LIMITS[name]
    if len(value) > limit:
        raise Invalid(f"{where} is longer than {limit} characters.", code="too_long", field=where)


def _require_finite(where: str, value: Any) -> None:
    """Refuse NaN and infinities anywhere in a value: PostgreSQL's JSON cannot hold them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"{where} must be a finite number.", field=where)
    if isinstance(value, dict):
        for key, item in value.items():
            _require_finite(f"{where}.{key}", item)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _require_finite(f"{where}[{position}]", item)


def _validate(scan_input: ScanInput) -> None:
    if not scan_input.results and not scan_input.measurements:
        raise Invalid("A scan needs at least one result.", code="empty_scan", field="results")
    _too_long("definitionName", "definitionName", scan_input.definition_name)
    require_plain_text(scan_input.definition_name, "definitionName")
    _too_long("externalId", "externalId", scan_input.external_id)
    _too_long("client", "client", scan_input.client)
    for position, result in enumerate(scan_input.results):
        where = f"results[{position}]"
        for name, value in (("dataSource", result.data_source), ("dataset", result.dataset)):
            if not value.strip():
                raise Invalid(f"{where}.{name} must not be empty.", field=f"{where}.{name}")
            _too_long(f"{where}.{name}", name, value)
            require_plain_text(value, f"{where}.{name}")
        if not result.check.name.strip():
            raise Invalid(f"{where}.check.name must not be empty.", field=f"{where}.check.name")
        for name, value in (
            ("check.name", result.check.name),
            ("check.identity", result.check.identity),
            ("check.column", result.check.column),
            ("check.type", result.check.check_type),
        ):
            _too_long(f"{where}.{name}", name, value)
        # Names are refused rather than cleaned: a cleaned name would be a silent rename of what the
        # warehouse calls it, and two names could become one. A check's name may span lines (Soda
        # falls back to a check's multi-line definition when it has no name).
        require_plain_text(result.check.name, f"{where}.check.name", multiline=True)
        require_plain_text(result.check.column, f"{where}.check.column")
        if result.outcome not in Outcome.values:
            allowed = ", ".join(Outcome.values)
            raise Invalid(
                f"{where}.outcome must be one of {allowed}, not {result.outcome!r}.",
                code="invalid_outcome",
                field=f"{where}.outcome",
            )
        if result.value is not None and not math.isfinite(result.value):
            raise Invalid(f"{where}.value must be a finite number.", field=f"{where}.value")
        _require_finite(f"{where}.diagnostics", result.diagnostics)
    for position, measurement in enumerate(scan_input.measurements):
        where = f"metrics[{position}]"
        if not measurement.identity.strip():
            raise Invalid(f"{where}.identity must not be empty.", field=f"{where}.identity")
        _too_long(f"{where}.identity", "metric.identity", measurement.identity)
        _too_long(f"{where}.metricName", "metric.metricName", measurement.metric_name)
        _require_finite(f"{where}.value", measurement.value)


def _scan_state(scan_input: ScanInput) -> str:
    if scan_input.has_errors:
        return ScanState.COMPLETED_WITH_ERRORS
    outcomes = {r.outcome for r in scan_input.results}
    if Outcome.FAIL in outcomes:
        return ScanState.COMPLETED_WITH_FAILURES
    if Outcome.WARN in outcomes:
        return ScanState.COMPLETED_WITH_WARNINGS
    return ScanState.COMPLETED


def _ingest(scan_input: ScanInput, by: User, on_progress: Progress | None) -> tuple[Scan, list[CheckResult]]:
    source_names = (
        {r.data_source for r in scan_input.results}
        | {m.data_source for m in scan_input.measurements if m.data_source}
        | {c.data_source for c in scan_input.contracts}
    )
    sources = {s.name: s for s in DataSource.objects.filter(name__in=source_names)}
    for name in sorted(source_names - sources.keys()):
        # A source another scan creates at the same moment is theirs, read back (see create_dataset).
        sources[name], _ = DataSource.objects.get_or_create(
            name=name, defaults={"type": scan_input.data_source_types.get(name, "")}
        )
    for name, source in sources.items():
        # A source created by a tool that did not say its type learns it from one that does.
        if not source.type and scan_input.data_source_types.get(name):
            source.type = scan_input.data_source_types[name][:100]
            source.save(update_fields=["type"])

    dataset_keys = (
        {(r.data_source, r.dataset) for r in scan_input.results}
        | {(m.data_source, m.dataset) for m in scan_input.measurements if m.data_source and m.dataset}
        | {(c.data_source, c.dataset) for c in scan_input.contracts}
    )
    # One query for the scan's datasets and one for the sender's permissions on them, however many
    # tables a scan covers; refusals still name the first offending dataset in name order.
    source_by_id = {source.pk: source for source in sources.values()}
    existing = {
        (source_by_id[dataset.data_source_id].name, dataset.name): dataset
        for dataset in Dataset.objects.filter(
            data_source__in=sources.values(), name__in={name for _, name in dataset_keys}
        )
        if (source_by_id[dataset.data_source_id].name, dataset.name) in dataset_keys
    }
    held = access.permissions_on_many(by, {dataset.pk for dataset in existing.values()})
    may_create: dict[str, bool] = {}
    datasets: dict[tuple[str, str], Dataset] = {}
    for source_name, dataset_name in sorted(dataset_keys):
        found = existing.get((source_name, dataset_name))
        if found is None:
            if source_name not in may_create:
                may_create[source_name] = access.can_create_datasets_in(by, sources[source_name])
            if not may_create[source_name]:
                raise _refused_push(source_name, dataset_name)
            found, created = create_dataset(sources[source_name], dataset_name, owner=by)
            if not created:
                # Another scan created it a moment ago: push to it as to any existing dataset.
                _require_manage_checks(by, found, access.permissions_on(by, found.pk), source_name)
        else:
            _require_manage_checks(by, found, held[found.pk], source_name)
        # Its source is at hand; callers that name a result's dataset must not read it again.
        found.data_source = sources[source_name]
        datasets[(source_name, dataset_name)] = found

    scan = Scan.objects.create(
        definition_name=scan_input.definition_name,
        data_source=sources[sorted(source_names)[0]] if len(source_names) == 1 else None,
        source=scan_input.source,
        idempotency_key=scan_input.idempotency_key,
        data_timestamp=scan_input.data_timestamp,
        started_at=scan_input.started_at,
        ended_at=scan_input.ended_at,
        has_errors=scan_input.has_errors,
        has_warnings=any(r.outcome == Outcome.WARN for r in scan_input.results),
        has_failures=any(r.outcome == Outcome.FAIL for r in scan_input.results),
        logs=scan_input.logs,
        state=_scan_state(scan_input),
        external_id=scan_input.external_id,
        client=scan_input.client,
        created_by=by,
    )
    # A new scan has no datasets yet: add() them without reading the current ones as set() would.
    scan.datasets.add(*datasets.values())

    measurements = Measurement.objects.bulk_create(
        Measurement(
            identity=m.identity,
            metric_name=m.metric_name,
            dataset=datasets.get((m.data_source, m.dataset)),
            scan=scan,
            value=m.value,
            data_timestamp=scan_input.data_timestamp,
        )
        for m in scan_input.measurements
    )
    measurement_by_identity = {m.identity: m for m in measurements}

    # Each result's check, described by the first result that names it.
    keys: list[tuple[int, str]] = []
    described: dict[tuple[int, str], tuple[Dataset, CheckInput]] = {}
    for result in scan_input.results:
        dataset = datasets[(result.data_source, result.dataset)]
        identity = result.check.identity or derived_identity(
            result.data_source, result.dataset, result.check.name
        )
        keys.append((dataset.pk, identity))
        described.setdefault((dataset.pk, identity), (dataset, result.check))
    checks = _upsert_checks(described, scan_input.source)

    results: list[CheckResult] = []
    # One arrival time for the whole scan (housekeeping expires results by it).
    arrived = timezone.now()
    for result, key in zip(scan_input.results, keys, strict=True):
        dataset = datasets[(result.data_source, result.dataset)]
        check = checks[key]
        measurement = next(
            (
                measurement_by_identity[m]
                for m in result.check.metric_identities
                if m in measurement_by_identity
            ),
            None,
        )
        results.append(
            CheckResult(
                check_ref=check,
                dataset=dataset,
                scan=scan,
                outcome=result.outcome,
                value=result.value,
                diagnostics=result.diagnostics,
                measurement=measurement,
                data_timestamp=result.data_timestamp or scan_input.data_timestamp,
                created_at=arrived,
            )
        )
        if on_progress is not None:
            on_progress(1)
    _insert_results(results)
    newest: dict[int, CheckResult] = {}
    for result_row in results:
        check = result_row.check_ref
        if check.last_result_at is None or result_row.data_timestamp >= check.last_result_at:
            check.last_outcome = result_row.outcome
            check.last_result_at = result_row.data_timestamp
            newest[check.pk] = result_row
    _record_last_outcomes(newest)
    # Every dataset of the scan, not only those with results: the contracts below save theirs, and
    # all are then already locked in the recount's id order.
    counters.recount_checks(dataset.pk for dataset in datasets.values())

    _attach_samples(scan_input, results, by)
    _apply_contracts(scan_input, datasets, by)
    events.record(ResultsIngested(scan=scan, results=results, by=by))
    return scan, results


def _insert_results(results: list[CheckResult]) -> None:
    """INSERT results and give each its id, as bulk_create does, with the values prepared here.

    bulk_create compiled each of the nine values of each result through the ORM's insert compiler:
    a third of a 1,000-check ingest on SQLite. The values that need it are still converted by their
    field (get_db_prep_save), the times once per distinct time. The statements are bulk_create's:
    on PostgreSQL one INSERT of an array per column (UNNEST), elsewhere multi-row INSERTs; both
    RETURNING the ids in the order of the rows.
    """
    if not results:
        return
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite before 3.35
        CheckResult.objects.bulk_create(results)
        return
    meta = CheckResult._meta
    at_field = meta.get_field("data_timestamp")
    value_field = meta.get_field("value")
    diagnostics_field = meta.get_field("diagnostics")
    times: dict[datetime, Any] = {}

    def at(moment: datetime) -> Any:
        if moment not in times:
            times[moment] = at_field.get_db_prep_save(moment, connection)
        return times[moment]

    rows = [
        (
            r.check_ref_id,
            r.dataset_id,
            r.scan_id,
            r.outcome,
            value_field.get_db_prep_save(r.value, connection),
            diagnostics_field.get_db_prep_save(r.diagnostics, connection),
            r.measurement_id,
            at(r.data_timestamp),
            at(r.created_at),
        )
        for r in results
    ]
    ids: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                _INSERT_RESULTS + _UNNEST_RESULTS, [list(column) for column in zip(*rows, strict=True)]
            )
            ids += [row[0] for row in cursor.fetchall()]
        else:
            for start in range(0, len(rows), _RESULT_INSERT_BATCH):
                batch = rows[start : start + _RESULT_INSERT_BATCH]
                values = ", ".join([_RESULT_PLACEHOLDERS] * len(batch))
                cursor.execute(
                    f"{_INSERT_RESULTS} VALUES {values} RETURNING id", [v for row in batch for v in row]
                )
                ids += [row[0] for row in cursor.fetchall()]
    for result, pk in zip(results, ids, strict=True):
        result.pk = pk
        result._state.adding = False
        result._state.db = connection.alias


_INSERT_RESULTS = (
    "INSERT INTO catalog_checkresult (check_id, dataset_id, scan_id, outcome, value, diagnostics, "
    "measurement_id, data_timestamp, created_at)"
)
_UNNEST_RESULTS = (
    " SELECT * FROM UNNEST((%s)::bigint[], (%s)::bigint[], (%s)::bigint[], (%s)::varchar[], "
    "(%s)::double precision[], (%s)::jsonb[], (%s)::bigint[], (%s)::timestamptz[], (%s)::timestamptz[]) "
    "RETURNING id"
)
_RESULT_PLACEHOLDERS = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
# Rows per multi-row INSERT: nine values each stay under SQLite's 999 variables.
_RESULT_INSERT_BATCH = 110


def _record_last_outcomes(newest: dict[int, CheckResult]) -> None:
    """Store each check's newest outcome, unless a result newer than this scan's got there first.

    One parameterised UPDATE run for every check (executemany: one prepared statement on SQLite, a
    pipeline on PostgreSQL). bulk_update built a CASE expression per check in Python and took three
    quarters of a 1,000-check ingest; the condition on last_result_at also keeps a slower, older
    scan that commits later from putting back an outdated outcome.
    """
    if not newest:
        return
    at_field = Check._meta.get_field("last_result_at")
    rows = []
    # In id order: two scans updating the same checks lock them in the same order (no deadlock).
    for check_id, row in sorted(newest.items(), key=lambda item: item[0]):
        at = at_field.get_db_prep_save(row.data_timestamp, connection)
        rows.append((row.outcome, at, check_id, at))
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE catalog_check SET last_outcome = %s, last_result_at = %s "
            "WHERE id = %s AND (last_result_at IS NULL OR last_result_at <= %s)",
            rows,
        )


def _attach_samples(scan_input: ScanInput, results: list[CheckResult], by: User) -> None:
    refs = {
        ref.file_id: (row, ref)
        for result, row in zip(scan_input.results, results, strict=True)
        for ref in result.samples
    }
    if not refs:
        return
    # Only the uploader's own, still unclaimed samples: a file id seen elsewhere must not pull in
    # someone else's rows.
    samples = FailedRowsSample.objects.filter(file_id__in=refs, uploaded_by=by, check_result__isnull=True)
    for sample in samples:
        row, ref = refs[sample.file_id]
        sample.check_result = row
        sample.columns = ref.columns or sample.columns
        if ref.total_row_count is not None:
            sample.total_row_count = ref.total_row_count
    FailedRowsSample.objects.bulk_update(samples, ["check_result", "columns", "total_row_count"])


def _apply_contracts(scan_input: ScanInput, datasets: dict[tuple[str, str], Dataset], by: User) -> None:
    for contract in scan_input.contracts:
        upload = ContractUpload.objects.filter(file_id=contract.file_id, uploaded_by=by).first()
        if upload is None:
            raise Invalid(
                f"There is no contract upload {contract.file_id!r}; upload the contract first.",
                code="unknown_contract",
                field="contract.fileId",
            )
        dataset = datasets[(contract.data_source, contract.dataset)]
        dataset.contract = upload.contents
        dataset.contract_file_path = contract.file_path[:1000]
        dataset.contract_updated_at = timezone.now()
        dataset.save(update_fields=["contract", "contract_file_path", "contract_updated_at"])
        upload.dataset = dataset
        upload.save(update_fields=["dataset"])


def _require_manage_checks(user: User, dataset: Dataset, perms: frozenset[str], source_name: str) -> None:
    if access.VIEW not in perms:
        raise _refused_push(source_name, dataset.name)
    if access.MANAGE_CHECKS not in perms:
        access.require(user, dataset, access.MANAGE_CHECKS, "push results to it")


def _refused_push(source_name: str, dataset_name: str) -> Forbidden:
    """The one answer to a push naming a dataset the caller cannot see or may not create.

    The same status, code and words for both, so a push never tells a name that exists but is
    hidden from one that does not (docs/permissions.md).
    """
    return Forbidden(
        f"You may not push results to {source_name}/{dataset_name}: "
        "you can see no dataset of that name and may not create one."
    )


_DESCRIBED_BY_NEWEST_SCAN = (
    "name",
    "column",
    "definition",
    "check_type",
    "attributes",
    "metric_identities",
    "location",
)


# Checks looked up per statement; keeps every statement well under SQLite's variable limit.
_CHECK_LOOKUP_BATCH = 500


def _find_checks(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Check]:
    found: dict[tuple[int, str], Check] = {}
    for start in range(0, len(keys), _CHECK_LOOKUP_BATCH):
        by_dataset: dict[int, list[str]] = {}
        for dataset_id, identity in keys[start : start + _CHECK_LOOKUP_BATCH]:
            by_dataset.setdefault(dataset_id, []).append(identity)
        condition = Q()
        for dataset_id, identities in by_dataset.items():
            condition |= Q(dataset_id=dataset_id, identity__in=identities)
        for check in Check.objects.filter(condition):
            found[(check.dataset_id, check.identity)] = check
    return found


def _upsert_checks(
    described: dict[tuple[int, str], tuple[Dataset, CheckInput]], source: str
) -> dict[tuple[int, str], Check]:
    """The scan's checks, created where new and re-described by this scan where they exist.

    A scan of 1,000 checks costs one read, one INSERT for the new ones and one re-read, where a
    get_or_create per check cost 1,000 round trips. A check another scan creates at the same time is
    skipped by the INSERT (ignore_conflicts: ON CONFLICT DO NOTHING, which on PostgreSQL waits for
    that scan to commit) and read back like one that existed.
    """
    keys = list(described)
    checks = _find_checks(keys)
    missing = [key for key in keys if key not in checks]
    if missing:
        Check.objects.bulk_create(
            [
                Check(
                    dataset=described[key][0],
                    identity=key[1],
                    name=check_input.name,
                    column=check_input.column,
                    definition=check_input.definition,
                    check_type=check_input.check_type,
                    attributes=check_input.attributes,
                    metric_identities=check_input.metric_identities,
                    location=check_input.location,
                    source=source,
                )
                for key in missing
                for check_input in [described[key][1]]
            ],
            ignore_conflicts=True,
        )
        checks.update(_find_checks(missing))
    changed: list[Check] = []
    for key, check in checks.items():
        check.dataset = described[key][0]
        # The newest scan describes the check as it is now (a just-created check already matches).
        check_input = described[key][1]
        differs = False
        for attr in _DESCRIBED_BY_NEWEST_SCAN:
            value = getattr(check_input, attr)
            if value and getattr(check, attr) != value:
                setattr(check, attr, value)
                differs = True
        if differs:
            changed.append(check)
    if changed:
        Check.objects.bulk_update(changed, list(_DESCRIBED_BY_NEWEST_SCAN))
    return checks


# --- History (Soda's change-over-time and anomaly checks ask for it) --------------------------------

# The most values one history query returns per identity, whatever the client asks for.
HISTORY_MAX_PER_IDENTITY = 1000


def _visible_measurements(by: User) -> QuerySet[Measurement]:
    if not by.is_active:
        return Measurement.objects.none()
    if by.is_admin:
        return Measurement.objects.all()
    # A metric no check of the scan refers to may belong to no dataset; its uploader may still read it.
    return Measurement.objects.filter(
        Q(dataset__in=access.dataset_ids_with(by)) | Q(dataset__isnull=True, scan__created_by=by)
    )


def historic_measurements(
    identities: list[str],
    *,
    by: User,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[Measurement]:
    """Stored values of these metrics that the caller may see, newest first, at most `limit` per identity."""
    per_identity = min(limit or HISTORY_MAX_PER_IDENTITY, HISTORY_MAX_PER_IDENTITY)
    rows = _visible_measurements(by).filter(identity__in=identities)
    if since is not None:
        rows = rows.filter(data_timestamp__gte=since)
    if until is not None:
        rows = rows.filter(data_timestamp__lte=until)
    rows = rows.annotate(
        position=Window(
            RowNumber(), partition_by=[F("identity")], order_by=[F("data_timestamp").desc(), F("id").desc()]
        )
    ).filter(position__lte=per_identity)
    return list(rows.order_by("-data_timestamp", "-id"))


def historic_check_results(
    identities: list[str],
    *,
    by: User,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[CheckResult]:
    """Results of the checks with these identities that the caller may see, newest first."""
    per_identity = min(limit or HISTORY_MAX_PER_IDENTITY, HISTORY_MAX_PER_IDENTITY)
    rows = visible_check_results(by=by).filter(check_ref__identity__in=identities)
    if since is not None:
        rows = rows.filter(data_timestamp__gte=since)
    if until is not None:
        rows = rows.filter(data_timestamp__lte=until)
    rows = rows.annotate(
        position=Window(
            RowNumber(),
            partition_by=[F("check_ref__identity")],
            order_by=[F("data_timestamp").desc(), F("id").desc()],
        )
    ).filter(position__lte=per_identity)
    return list(rows.select_related("check_ref", "dataset__data_source").order_by("-data_timestamp", "-id"))


# --- Scans ----------------------------------------------------------------------------------------


def visible_scans(by: User) -> QuerySet[Scan]:
    """Scans that reported on a dataset the caller can view, and those the caller pushed."""
    if not by.is_active:
        return Scan.objects.none()
    if by.is_admin:
        return Scan.objects.all()
    on_visible = Scan.datasets.through.objects.filter(
        scan_id=OuterRef("pk"), dataset_id__in=access.dataset_ids_with(by)
    )
    return Scan.objects.filter(Q(Exists(on_visible)) | Q(created_by=by))


def list_scans(
    *, by: User, data_source_id: int | None = None, dataset_id: int | None = None
) -> QuerySet[Scan]:
    """Scans newest first, for one data source or one dataset the caller can view, or all they can see."""
    scans = visible_scans(by)
    if dataset_id is not None:
        access.visible_dataset(by, dataset_id)
        scans = scans.filter(
            Exists(Scan.datasets.through.objects.filter(scan_id=OuterRef("pk"), dataset_id=dataset_id))
        )
    if data_source_id is not None:
        if not access.datasets_with(by).filter(data_source_id=data_source_id).exists():
            raise NotFound(f"Data source {data_source_id} not found.")
        scans = scans.filter(
            Exists(
                Scan.datasets.through.objects.filter(
                    scan_id=OuterRef("pk"), dataset__data_source_id=data_source_id
                )
            )
        )
    return scans.select_related("data_source", "created_by").order_by("-data_timestamp", "-id")


def with_scan_details(scans: QuerySet[Scan], *, by: User) -> QuerySet[Scan]:
    """Scans with what a list shows of each, in a fixed number of queries however many there are.

    Each scan gets `visible_datasets` (the datasets it reported on that the caller can view) and
    counts of its results on those datasets: `passes`, `warns`, `fails`, `excluded`, `unevaluated`;
    show the scan's `visible_state`, `has_visible_failures` and `has_visible_warnings` (computed from
    these counts), never its stored state and flags, which cover datasets the caller may not view.
    The counts are correlated subqueries, so a page of scans costs the same however long the history.
    """
    visible = access.datasets_with(by)

    def count(outcome: str) -> Coalesce:
        rows = CheckResult.objects.filter(scan=OuterRef("pk"), outcome=outcome, dataset__in=visible)
        grouped = rows.order_by().values("scan").annotate(n=Count("*")).values("n")
        return Coalesce(Subquery(grouped, output_field=IntegerField()), Value(0))

    return scans.prefetch_related(
        Prefetch(
            "datasets",
            queryset=visible.select_related("data_source").order_by("name", "id"),
            to_attr="visible_datasets",
        )
    ).annotate(
        passes=count(Outcome.PASS),
        warns=count(Outcome.WARN),
        fails=count(Outcome.FAIL),
        excluded=count(Outcome.EXCLUDED),
        unevaluated=count(Outcome.UNEVALUATED),
    )


def get_scan(scan_id: int, *, by: User) -> Scan:
    scan = visible_scans(by).select_related("data_source", "created_by").filter(pk=scan_id).first()
    if scan is None:
        raise NotFound(f"Scan {scan_id} not found.")
    return scan


def scan_results(scan_id: int, *, by: User) -> QuerySet[CheckResult]:
    """A scan's results on datasets the caller can view, grouped by dataset then check."""
    scan = get_scan(scan_id, by=by)
    return (
        visible_check_results(by=by)
        .filter(scan=scan)
        .select_related("check_ref", "dataset__data_source")
        .order_by("dataset__name", "check_ref__name", "id")
    )


def can_read_scan_logs(scan: Scan, by: User) -> bool:
    # Logs name every table and check of the scan, so they are for those who can see all of them.
    if by.is_admin or scan.created_by_id == by.pk:
        return True
    dataset_ids = set(scan.datasets.values_list("id", flat=True))
    return bool(dataset_ids) and not (
        dataset_ids - set(access.datasets_with(by).values_list("id", flat=True))
    )


def scan_logs(scan_id: int, *, by: User) -> list[dict[str, Any]]:
    """The scan's log lines as the client sent them (`level`, `message`, `timestamp`, ...)."""
    scan = get_scan(scan_id, by=by)
    if not can_read_scan_logs(scan, by):
        raise Forbidden("The scan's logs cover datasets you cannot view.")
    return [line for line in scan.logs if isinstance(line, dict)]


def mark_scan_failed(external_id: str, logs: list[Any], *, by: User, source: str, client: str = "") -> Scan:
    """Record that a scan failed (Soda's sodaCoreMarkScanFailed), adding its logs.

    The scan is the one Quell answered with this id, or the caller's own with this client-side id;
    when neither exists the failure is kept as a scan of its own so it shows in the scan list.
    """
    if not external_id.strip():
        raise Invalid("scanId must not be empty.", field="scanId")
    _too_long("scanId", "externalId", external_id)
    _require_finite("logs", logs)
    with transaction.atomic():
        scan = None
        if external_id.isdigit() and len(external_id) < 19:
            scan = visible_scans(by).filter(pk=int(external_id)).first()
        if scan is None:
            scan = Scan.objects.filter(external_id=external_id, created_by=by).order_by("-id").first()
        if scan is None:
            return Scan.objects.create(
                external_id=external_id,
                source=source,
                client=client,
                data_timestamp=timezone.now(),
                has_errors=True,
                state=ScanState.FAILED,
                logs=logs,
                created_by=by,
            )
        if not (by.is_admin or scan.created_by_id == by.pk):
            for dataset in scan.datasets.all():
                access.require(by, dataset, access.MANAGE_CHECKS, "mark its scan failed")
        scan.state = ScanState.FAILED
        scan.has_errors = True
        scan.logs = [*scan.logs, *logs]
        scan.save(update_fields=["state", "has_errors", "logs"])
        return scan


# --- Failed-row samples ---------------------------------------------------------------------------

# Samples and contracts whose scan results never arrived are cleared out after this long.
UNCLAIMED_UPLOAD_LIFETIME = timedelta(days=1)


@dataclass
class FailedRows:
    """A failed-rows sample ready to show: column descriptions and the stored rows."""

    file_id: str
    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    total_row_count: int | None
    stored_row_count: int
    truncated: bool


def samples_disabled() -> bool:
    return not Organization.get().collect_failed_rows


def store_failed_rows_sample(data: bytes, *, by: User, file_path: str = "") -> FailedRowsSample:
    """Keep an uploaded sample (JSON Lines, one array per row) until scan results claim it.

    Only whole rows are kept, up to the organisation's size limit; a larger upload is cut and
    marked truncated. Refused when the organisation does not collect failed rows.
    """
    org = Organization.get()
    if not org.collect_failed_rows:
        raise Forbidden(
            "This organisation does not collect failed-row samples.", code="soda_core_uploads_disabled"
        )
    truncated = len(data) > org.failed_rows_max_bytes
    if truncated:
        data = data[: org.failed_rows_max_bytes]
        data = data[: data.rfind(b"\n") + 1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("A failed-rows sample must be UTF-8 JSON Lines.", code="invalid_sample") from None
    if "\x00" in text:
        raise Invalid("A failed-rows sample may not contain NUL characters.", code="invalid_sample")
    lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            row = parse_json(line, subject=f"Line {number} of the sample")
        except UnreadableJSON as error:
            raise Invalid(error.message, code="invalid_sample") from None
        if not isinstance(row, list):
            raise Invalid(f"Line {number} of the sample is not a JSON array.", code="invalid_sample")
    with transaction.atomic():
        FailedRowsSample.objects.filter(
            check_result__isnull=True, created_at__lt=timezone.now() - UNCLAIMED_UPLOAD_LIFETIME
        ).delete()
        return FailedRowsSample.objects.create(
            file_id=uuid.uuid4().hex,
            uploaded_by=by,
            file_path=file_path[:1000],
            content=text,
            stored_row_count=len(lines),
            byte_size=len(data),
            truncated=truncated,
        )


def get_check_result(result_id: int, *, by: User) -> CheckResult:
    result = (
        visible_check_results(by=by)
        .select_related("check_ref", "dataset__data_source", "scan")
        .filter(pk=result_id)
        .first()
    )
    if result is None:
        raise NotFound(f"Check result {result_id} not found.")
    return result


def can_view_failed_rows(result: CheckResult, by: User) -> bool:
    return access.VIEW_FAILED_ROWS in access.permissions_on(by, result.dataset_id)


def failed_rows(result_id: int, *, by: User) -> list[FailedRows]:
    """The failed-row samples of a check result, for callers with "Access failed row samples"."""
    result = get_check_result(result_id, by=by)
    access.require(by, result.dataset, access.VIEW_FAILED_ROWS, "see the failed rows of its checks")
    return [
        FailedRows(
            file_id=sample.file_id,
            columns=[c for c in sample.columns if isinstance(c, dict)],
            # Every line went through parse_json before it was stored.
            rows=[json.loads(line) for line in sample.content.splitlines() if line.strip()],  # noqa: TID251
            total_row_count=sample.total_row_count,
            stored_row_count=sample.stored_row_count,
            truncated=sample.truncated,
        )
        for sample in result.failed_rows_samples.order_by("id")
    ]


def update_failed_rows_settings(
    *, by: User, collect: bool | None = None, max_bytes: int | None = None
) -> Organization:
    """Turn the collection of failed-row samples on or off, or change how much of each is kept."""
    access.require_admin(by, "change how failed-row samples are collected")
    org = Organization.get()
    if collect is not None:
        org.collect_failed_rows = collect
    if max_bytes is not None:
        if not MIN_SAMPLE_BYTES <= max_bytes <= MAX_SAMPLE_BYTES:
            raise Invalid(
                f"The sample size limit must be between {MIN_SAMPLE_BYTES} and {MAX_SAMPLE_BYTES} bytes.",
                field="failedRowsMaxBytes",
            )
        org.failed_rows_max_bytes = max_bytes
    org.save(update_fields=["collect_failed_rows", "failed_rows_max_bytes"])
    return org


MIN_SAMPLE_BYTES = 1024
MAX_SAMPLE_BYTES = 64 * 1024 * 1024


# --- Contracts ------------------------------------------------------------------------------------

CONTRACT_MAX_CHARS = 1024 * 1024


def store_contract_upload(contents: str, *, by: User) -> ContractUpload:
    """Keep a contract's text until the scan results that verified it name its file id."""
    if not contents.strip():
        raise Invalid("The contract is empty.", field="contents")
    if len(contents) > CONTRACT_MAX_CHARS:
        raise Invalid(f"The contract is longer than {CONTRACT_MAX_CHARS} characters.", field="contents")
    with transaction.atomic():
        ContractUpload.objects.filter(
            dataset__isnull=True, created_at__lt=timezone.now() - UNCLAIMED_UPLOAD_LIFETIME
        ).delete()
        return ContractUpload.objects.create(file_id=uuid.uuid4().hex, contents=contents, uploaded_by=by)


# --- Check attributes -----------------------------------------------------------------------------

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")
CHOICE_TYPES = (AttributeType.SINGLESELECT, AttributeType.MULTISELECT)


def list_check_attribute_definitions(*, by: User) -> QuerySet[CheckAttributeDefinition]:
    # Everyone who writes checks needs to know which attributes exist; only admins define them.
    if not by.is_active:
        return CheckAttributeDefinition.objects.none()
    return CheckAttributeDefinition.objects.order_by("name", "id")


def create_check_attribute_definition(
    *,
    by: User,
    name: str,
    attribute_type: str,
    label: str = "",
    allowed_values: list[str] | None = None,
    description: str = "",
) -> CheckAttributeDefinition:
    access.require_admin(by, "define check attributes")
    name = (name or "").strip()
    if not ATTRIBUTE_NAME.match(name):
        raise Invalid(
            "An attribute name is 1 to 100 letters, digits, underscores, dots or hyphens.", field="name"
        )
    if attribute_type not in AttributeType.values:
        raise Invalid(f"type must be one of {', '.join(AttributeType.values)}.", field="type")
    values = [str(v).strip() for v in (allowed_values or [])]
    if attribute_type in CHOICE_TYPES:
        if not values or any(not v for v in values):
            raise Invalid(
                f"A {attribute_type} attribute needs a list of allowed values.", field="allowedValues"
            )
        if len(set(values)) != len(values):
            raise Invalid("The allowed values repeat a value.", field="allowedValues")
    elif values:
        raise Invalid(f"A {attribute_type} attribute takes no allowed values.", field="allowedValues")
    for value in values:
        require_plain_text(value, "allowedValues", label="An allowed value")
    require_plain_text(label or "", "label", label="The label")
    require_plain_text(description or "", "description", label="The description", multiline=True)
    taken = Taken(f"There is already an attribute named {name}.", code="name_taken", field="name")
    if CheckAttributeDefinition.objects.filter(name=name).exists():
        raise taken
    try:
        # In a savepoint: a name defined at the same moment fails this INSERT alone, not the caller's
        # transaction (PostgreSQL waits for that writer, then raises the unique violation).
        with transaction.atomic():
            return CheckAttributeDefinition.objects.create(
                name=name,
                type=attribute_type,
                label=(label or "").strip()[:200],
                allowed_values=values,
                description=(description or "").strip(),
            )
    except IntegrityError:
        raise taken from None


def delete_check_attribute_definition(definition_id: int, *, by: User) -> None:
    access.require_admin(by, "remove check attributes")
    deleted, _ = CheckAttributeDefinition.objects.filter(pk=definition_id).delete()
    if not deleted:
        raise NotFound(f"Check attribute {definition_id} not found.")
