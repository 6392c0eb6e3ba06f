"""Domain operations on the catalog: datasets, their responsibilities, and ingesting check results."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from quell.accounts.models import DatasetRole, Organization, User, UserGroup
from quell.catalog import access
from quell.catalog.models import (
    Check,
    CheckResult,
    Dataset,
    DataSource,
    Measurement,
    Outcome,
    Responsibility,
    Scan,
)
from quell.lib.errors import Invalid, NotFound

MANAGER_ROLE = "Manager"


# --- Datasets -------------------------------------------------------------------------------------


def create_dataset(data_source: DataSource, name: str, *, owner: User | None) -> Dataset:
    """Create a dataset with its starting responsibilities.

    Everyone gets the organisation's default role (none if an admin chose none), and the user who
    brought the dataset in becomes its owner with the Manager role, as in Soda Cloud.
    """
    dataset = Dataset.objects.create(data_source=data_source, name=name, owner=owner)
    default_role = Organization.get().default_dataset_role
    if default_role is not None:
        Responsibility.objects.create(
            dataset=dataset, group=UserGroup.objects.get(is_everyone=True), role=default_role
        )
    if owner is not None and not owner.is_admin:
        Responsibility.objects.create(
            dataset=dataset, user=owner, role=DatasetRole.objects.get(name=MANAGER_ROLE)
        )
    return dataset


def list_datasets(*, by: User, search: str = "", data_source_name: str = "") -> QuerySet[Dataset]:
    datasets = access.datasets_with(by).select_related("data_source")
    if search:
        datasets = datasets.filter(name__icontains=search)
    if data_source_name:
        datasets = datasets.filter(data_source__name=data_source_name)
    return datasets.order_by("data_source__name", "name", "id")


def get_dataset(dataset_id: int, *, by: User) -> Dataset:
    return access.visible_dataset(by, dataset_id)


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
            raise Invalid(
                f"{where}: there is no dataset role {item.role_id}.", code="unknown_role", field=where
            )
        if item.type == "user":
            if item.principal_id not in users:
                raise Invalid(
                    f"{where}: there is no active user {item.principal_id}.", code="unknown_user", field=where
                )
            row = Responsibility(dataset=dataset, user=users[item.principal_id], role=roles[item.role_id])
        elif item.type == "userGroup":
            if item.principal_id not in groups:
                raise Invalid(
                    f"{where}: there is no user group {item.principal_id}.", code="unknown_group", field=where
                )
            row = Responsibility(dataset=dataset, group=groups[item.principal_id], role=roles[item.role_id])
        else:
            raise Invalid(f'{where}: type must be "user" or "userGroup".', field=where)
        if (item.type, item.principal_id) in seen:
            raise Invalid(f"{where}: names the same {item.type} twice.", code="duplicate", field=where)
        seen.add((item.type, item.principal_id))
        rows.append(row)
    with transaction.atomic():
        dataset.responsibilities.all().delete()
        Responsibility.objects.bulk_create(rows)
    # Read back rather than re-check: the caller may just have removed their own access.
    return list(dataset.responsibilities.select_related("user", "group", "role").order_by("id"))


# --- Checks and results ---------------------------------------------------------------------------


def list_checks(*, by: User, dataset_id: int | None = None) -> QuerySet[Check]:
    checks = Check.objects.filter(dataset__in=access.datasets_with(by)).select_related("dataset__data_source")
    if dataset_id is not None:
        checks = checks.filter(dataset_id=dataset_id)
    return checks.order_by("dataset_id", "name", "id")


def get_check(check_id: int, *, by: User) -> Check:
    check = list_checks(by=by).filter(pk=check_id).first()
    if check is None:
        raise NotFound(f"Check {check_id} not found.")
    return check


def list_check_results(
    check_id: int, *, by: User, outcomes: list[str] | None = None
) -> QuerySet[CheckResult]:
    check = get_check(check_id, by=by)
    results = check.results.select_related("check_ref", "dataset")
    if outcomes:
        results = results.filter(outcome__in=outcomes)
    return results.order_by("-data_timestamp", "-id")


def visible_check_results(*, by: User) -> QuerySet[CheckResult]:
    return CheckResult.objects.filter(dataset__in=access.datasets_with(by))


# --- Ingestion ------------------------------------------------------------------------------------


@dataclass
class CheckInput:
    name: str
    identity: str = ""
    column: str = ""
    definition: str = ""
    check_type: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResultInput:
    data_source: str
    dataset: str
    check: CheckInput
    outcome: str
    value: float | None = None
    data_timestamp: datetime | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class MeasurementInput:
    identity: str
    metric_name: str
    value: Any
    data_source: str = ""
    dataset: str = ""


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


def derived_identity(data_source: str, dataset: str, check_name: str) -> str:
    """An identity for checks whose tool gives none: the same name on the same dataset is the same check."""
    return hashlib.sha256(f"{data_source}\x1f{dataset}\x1f{check_name}".encode()).hexdigest()[:16]


def ingest_scan(scan_input: ScanInput, *, by: User) -> tuple[Scan, list[CheckResult]]:
    """Store a scan with its results and measurements, creating data sources, datasets and checks.

    All or nothing: any invalid result or missing permission raises before anything is kept. A scan
    whose idempotency key this user sent before returns the stored scan and writes nothing. Keys are
    per user, so someone else's key neither finds nor reveals another user's scan.
    """
    _validate(scan_input)
    if scan_input.idempotency_key:
        scan_input.idempotency_key = f"{by.pk}:{scan_input.idempotency_key}"
        existing = _stored_scan(scan_input.idempotency_key)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return _ingest(scan_input, by)
    except IntegrityError:
        # The same user stored the same scan in the meantime; theirs stands.
        existing = _stored_scan(scan_input.idempotency_key) if scan_input.idempotency_key else None
        if existing is not None:
            return existing
        raise


def _stored_scan(key: str) -> tuple[Scan, list[CheckResult]] | None:
    scan = Scan.objects.filter(idempotency_key=key).first()
    if scan is None:
        return None
    return scan, list(scan.results.select_related("check_ref", "dataset").order_by("id"))


def _validate(scan_input: ScanInput) -> None:
    if not scan_input.results and not scan_input.measurements:
        raise Invalid("A scan needs at least one result.", code="empty_scan", field="results")
    for position, result in enumerate(scan_input.results):
        where = f"results[{position}]"
        for name, value in (("dataSource", result.data_source), ("dataset", result.dataset)):
            if not value.strip():
                raise Invalid(f"{where}.{name} must not be empty.", field=f"{where}.{name}")
        if not result.check.name.strip():
            raise Invalid(f"{where}.check.name must not be empty.", field=f"{where}.check.name")
        if result.outcome not in Outcome.values:
            allowed = ", ".join(Outcome.values)
            raise Invalid(
                f"{where}.outcome must be one of {allowed}, not {result.outcome!r}.",
                code="invalid_outcome",
                field=f"{where}.outcome",
            )
        if result.value is not None and not math.isfinite(result.value):
            raise Invalid(f"{where}.value must be a finite number.", field=f"{where}.value")


def _ingest(scan_input: ScanInput, by: User) -> tuple[Scan, list[CheckResult]]:
    source_names = {r.data_source for r in scan_input.results} | {
        m.data_source for m in scan_input.measurements if m.data_source
    }
    sources = {s.name: s for s in DataSource.objects.filter(name__in=source_names)}
    for name in sorted(source_names - sources.keys()):
        sources[name] = DataSource.objects.create(name=name, type=scan_input.data_source_types.get(name, ""))

    dataset_keys = {(r.data_source, r.dataset) for r in scan_input.results} | {
        (m.data_source, m.dataset) for m in scan_input.measurements if m.data_source and m.dataset
    }
    datasets: dict[tuple[str, str], Dataset] = {}
    for source_name, dataset_name in sorted(dataset_keys):
        found = Dataset.objects.filter(data_source=sources[source_name], name=dataset_name).first()
        if found is None:
            if not access.can_create_datasets(by):
                raise access.Forbidden(
                    f"You may not create datasets, and {source_name}/{dataset_name} does not exist yet."
                )
            found = create_dataset(sources[source_name], dataset_name, owner=by)
        else:
            _require_manage_checks(by, found)
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
        created_by=by,
    )

    results: list[CheckResult] = []
    checks: dict[tuple[int, str], Check] = {}
    for result in scan_input.results:
        dataset = datasets[(result.data_source, result.dataset)]
        identity = result.check.identity or derived_identity(
            result.data_source, result.dataset, result.check.name
        )
        check = checks.get((dataset.pk, identity)) or _upsert_check(
            dataset, identity, result.check, scan_input.source
        )
        checks[(dataset.pk, identity)] = check
        results.append(
            CheckResult(
                check_ref=check,
                dataset=dataset,
                scan=scan,
                outcome=result.outcome,
                value=result.value,
                diagnostics=result.diagnostics,
                data_timestamp=result.data_timestamp or scan_input.data_timestamp,
            )
        )
    CheckResult.objects.bulk_create(results)
    for result_row in results:
        check = result_row.check_ref
        if check.last_result_at is None or result_row.data_timestamp >= check.last_result_at:
            check.last_outcome = result_row.outcome
            check.last_result_at = result_row.data_timestamp
    Check.objects.bulk_update(list(checks.values()), ["last_outcome", "last_result_at"])

    Measurement.objects.bulk_create(
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
    return scan, results


def _require_manage_checks(user: User, dataset: Dataset) -> None:
    perms = access.permissions_on(user, dataset.pk)
    if access.VIEW not in perms:
        # Pushing into a dataset one cannot see must not reveal that it exists.
        raise access.Forbidden(f"You may not push results to {dataset.data_source.name}/{dataset.name}.")
    access.require(user, dataset, access.MANAGE_CHECKS, "push results to it")


def _upsert_check(dataset: Dataset, identity: str, check_input: CheckInput, source: str) -> Check:
    check, created = Check.objects.get_or_create(
        dataset=dataset,
        identity=identity,
        defaults={
            "name": check_input.name,
            "column": check_input.column,
            "definition": check_input.definition,
            "check_type": check_input.check_type,
            "attributes": check_input.attributes,
            "source": source,
        },
    )
    if not created:
        # The newest scan describes the check as it is now.
        changed = False
        for attr, value in (
            ("name", check_input.name),
            ("column", check_input.column),
            ("definition", check_input.definition),
            ("check_type", check_input.check_type),
            ("attributes", check_input.attributes),
        ):
            if value and getattr(check, attr) != value:
                setattr(check, attr, value)
                changed = True
        if changed:
            check.save(update_fields=["name", "column", "definition", "check_type", "attributes"])
    return check
