"""Storing a scan: the one write path of every ingest (Soda Core, the REST push, dbt, GX, imports).

ingest_scan validates a whole scan before it writes anything, creates the data sources, datasets and
checks it names, and stores its results and measurements in one transaction, in a fixed number of
statements however many checks it has (quell.catalog.ingest_statements). mark_scan_failed records a
scan that failed on the client.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import User
from quell.catalog import counters, queries, services, visibility
from quell.catalog.events import ResultsIngested
from quell.catalog.ingest_statements import insert_results, record_last_outcomes, upsert_checks
from quell.catalog.models import (
    CheckResult,
    ContractUpload,
    Dataset,
    DataSource,
    FailedRowsSample,
    Measurement,
    Outcome,
    Scan,
    ScanState,
)
from quell.lib import events, metrics
from quell.lib.errors import Forbidden, Invalid
from quell.lib.text import require_plain_text

# --- What a scan brings ---------------------------------------------------------------------------

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


# --- Storing a scan -------------------------------------------------------------------------------


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
        # A source another scan creates at the same moment is theirs, read back (see services.create_dataset).
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
    held = permissions.permissions_on_many(by, {dataset.pk for dataset in existing.values()})
    may_create: dict[str, bool] = {}
    datasets: dict[tuple[str, str], Dataset] = {}
    for source_name, dataset_name in sorted(dataset_keys):
        found = existing.get((source_name, dataset_name))
        if found is None:
            if source_name not in may_create:
                may_create[source_name] = visibility.can_create_datasets_in(by, sources[source_name])
            if not may_create[source_name]:
                raise _refused_push(source_name, dataset_name)
            found, created = services.create_dataset(sources[source_name], dataset_name, owner=by)
            if not created:
                # Another scan created it a moment ago: push to it as to any existing dataset.
                _require_manage_checks(by, found, permissions.permissions_on(by, found.pk), source_name)
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
    checks = upsert_checks(described, scan_input.source)
    outcomes_before = {check.pk: check.last_outcome for check in checks.values()}

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
    insert_results(results)
    newest: dict[int, CheckResult] = {}
    for result_row in results:
        check = result_row.check_ref
        if check.last_result_at is None or result_row.data_timestamp >= check.last_result_at:
            check.last_outcome = result_row.outcome
            check.last_result_at = result_row.data_timestamp
            newest[check.pk] = result_row
    record_last_outcomes(newest)
    # Every dataset of the scan, not only those with results: the contracts below save theirs, and
    # all are then already locked in the recount's id order.
    counters.recount_checks(dataset.pk for dataset in datasets.values())

    _attach_samples(scan_input, results, by)
    _apply_contracts(scan_input, datasets, by)
    events.record(ResultsIngested(scan=scan, results=results, by=by, outcomes_before=outcomes_before))
    return scan, results


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
    if permissions.VIEW not in perms:
        raise _refused_push(source_name, dataset.name)
    if permissions.MANAGE_CHECKS not in perms:
        permissions.require(user, dataset, permissions.MANAGE_CHECKS, "push results to it")


def _refused_push(source_name: str, dataset_name: str) -> Forbidden:
    """The one answer to a push naming a dataset the caller cannot see or may not create.

    The same status, code and words for both, so a push never tells a name that exists but is
    hidden from one that does not (docs/permissions.md).
    """
    return Forbidden(
        f"You may not push results to {source_name}/{dataset_name}: "
        "you can see no dataset of that name and may not create one."
    )


# --- A scan that failed ---------------------------------------------------------------------------


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
            scan = queries.visible_scans(by).filter(pk=int(external_id)).first()
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
                permissions.require(by, dataset, permissions.MANAGE_CHECKS, "mark its scan failed")
        scan.state = ScanState.FAILED
        scan.has_errors = True
        scan.logs = [*scan.logs, *logs]
        scan.save(update_fields=["state", "has_errors", "logs"])
        return scan
