"""Soda Core's scan results (3.x and 4.x uploads, and `soda scan -srf` files) read into Quell's ScanInput.

Both versions send one JSON document per scan; they differ in how a check names itself (3.x:
`identity` / `identities.v3`, 4.x: `identities.vc1`), where its dataset lives (4.x adds the
`datasetPrefix` schema path) and which outcomes exist (4.x adds `excluded` and `unevaluated`).
Unknown keys are ignored, as Soda Cloud does, so newer clients keep working.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import Check, CheckResult, Dataset, Outcome


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SodaAttribute(_Lenient):
    name: str
    value: Any = None


class SodaCheck(_Lenient):
    identity: str | None = None
    identities: dict[str, str | None] | None = None
    checkPath: str | None = None
    name: str | None = None
    checkType: str | None = None
    definition: str | None = None
    resourceAttributes: list[SodaAttribute] | None = None
    location: dict[str, Any] | None = None
    dataSource: str = Field(min_length=1)
    table: str = Field(min_length=1)
    datasetPrefix: list[str] | None = None
    column: str | None = None
    metrics: list[str] | None = None
    outcome: str | None = None
    outcomeReasons: list[dict[str, Any]] | None = None
    diagnostics: dict[str, Any] | None = None
    source: str | None = None


class SodaMetric(_Lenient):
    identity: str = Field(min_length=1)
    metricName: str | None = None
    value: Any = None
    dataSourceName: str | None = None
    tableName: str | None = None


class SodaContractRef(_Lenient):
    fileId: str | None = None
    metadata: dict[str, Any] | None = None


class SodaScanResults(_Lenient):
    """The body of `sodaCoreInsertScanResults`, which is also what `soda scan -srf` writes."""

    scanId: str | None = None
    version: str | None = None
    definitionName: str | None = None
    defaultDataSource: str | None = None
    defaultDataSourceProperties: dict[str, Any] | None = None
    dataTimestamp: UtcDatetime
    scanStartTimestamp: UtcDatetime | None = None
    scanEndTimestamp: UtcDatetime | None = None
    hasErrors: bool = False
    metrics: list[SodaMetric] | None = None
    checks: list[SodaCheck] | None = None
    automatedMonitoringChecks: list[SodaCheck] | None = None
    logs: list[dict[str, Any]] | None = None
    contract: SodaContractRef | None = None


def parse_scan_results(body: dict[str, Any]) -> SodaScanResults:
    """Validate a Soda scan-results document; raises pydantic's ValidationError."""
    return SodaScanResults.model_validate(body)


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item.get("loc", ()))
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


def is_v4(results: SodaScanResults) -> bool:
    return results.version == "4" or any(
        (check.identities or {}).get("vc1") for check in results.checks or []
    )


def _finite(value: Any) -> Any:
    """The value with NaN and infinities turned into null, which JSON columns can hold.

    Soda serialises float('nan') from, say, the average of an empty column as `NaN`; refusing the
    whole scan for it would lose every other result.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def dataset_name(check: SodaCheck) -> str:
    """3.x names a dataset by its table; 4.x qualifies it with its schema path (`main/customers`)."""
    return "/".join([*(check.datasetPrefix or []), check.table])


def qualified_name(data_source: str, dataset: str) -> str:
    """Soda Core 4.x's dataset qualified name, e.g. `crm/main/customers`."""
    return f"{data_source}/{dataset}"


def check_identity(check: SodaCheck) -> str:
    identities = check.identities or {}
    return identities.get("vc1") or check.identity or identities.get("v3") or ""


def _outcome(check: SodaCheck) -> str:
    # A 3.x check without an outcome is sent only with reasons it could not be evaluated.
    return check.outcome if check.outcome is not None else Outcome.UNEVALUATED


def _value(diagnostics: dict[str, Any]) -> float | None:
    value = diagnostics.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _samples(diagnostics: dict[str, Any]) -> list[catalog_ingest.SampleRef]:
    refs = []
    for block in diagnostics.get("blocks") or []:
        if not isinstance(block, dict) or not isinstance(block.get("file"), dict):
            continue
        file = block["file"]
        reference = file.get("reference") if isinstance(file.get("reference"), dict) else {}
        if reference.get("type") == "sodaCloudStorage" and isinstance(reference.get("fileId"), str):
            total = file.get("totalRowCount")
            refs.append(
                catalog_ingest.SampleRef(
                    file_id=reference["fileId"],
                    columns=file.get("columns") if isinstance(file.get("columns"), list) else [],
                    total_row_count=total if isinstance(total, int) and total >= 0 else None,
                )
            )
    return refs


def _metric_datasets(results: SodaScanResults, checks: list[SodaCheck]) -> dict[str, tuple[str, str]]:
    """Which dataset each metric measured.

    3.x metrics carry only an identity (`metric-<scan definition>-<data source>-<table>-...`). A
    check that reads the metric says which dataset it is; failing that, the identity's prefix does.
    """
    found: dict[str, tuple[str, str]] = {}
    for check in checks:
        for identity in check.metrics or []:
            found.setdefault(identity, (check.dataSource, dataset_name(check)))
    prefixes = sorted(
        {
            (
                f"metric-{results.definitionName or ''}-{check.dataSource}-{check.table}-",
                check.dataSource,
                dataset_name(check),
            )
            for check in checks
        },
        key=lambda item: len(item[0]),
        reverse=True,
    )
    for metric in results.metrics or []:
        if metric.identity in found:
            continue
        if metric.dataSourceName and metric.tableName:
            found[metric.identity] = (metric.dataSourceName, metric.tableName)
            continue
        for prefix, source, dataset in prefixes:
            if metric.identity.startswith(prefix):
                found[metric.identity] = (source, dataset)
                break
    return found


def scan_input(
    results: SodaScanResults, *, idempotency_key: str | None, client: str = ""
) -> catalog_ingest.ScanInput:
    """Quell's scan from a Soda document: checks keep Soda's identity, metrics become measurements."""
    checks = [*(results.checks or []), *(results.automatedMonitoringChecks or [])]
    metric_names = {m.identity: m.metricName or "" for m in results.metrics or []}
    v4 = is_v4(results)
    result_inputs = []
    for check in checks:
        diagnostics = _finite(check.diagnostics or {})
        if check.outcomeReasons:
            diagnostics = {**diagnostics, "outcomeReasons": _finite(check.outcomeReasons)}
        location = dict(check.location or {})
        if check.checkPath:
            location["checkPath"] = check.checkPath
        metrics = list(check.metrics or [])
        result_inputs.append(
            catalog_ingest.ResultInput(
                data_source=check.dataSource,
                dataset=dataset_name(check),
                check=catalog_ingest.CheckInput(
                    name=check.name
                    or check.checkPath
                    or check.definition
                    or check_identity(check)
                    or "check",
                    identity=check_identity(check),
                    column=check.column or "",
                    definition=check.definition or "",
                    check_type=check.checkType or (metric_names.get(metrics[0], "") if metrics else ""),
                    attributes={a.name: _finite(a.value) for a in check.resourceAttributes or []},
                    metric_identities=metrics,
                    location=_finite(location),
                ),
                outcome=_outcome(check),
                value=_value(diagnostics),
                diagnostics=diagnostics,
                samples=_samples(diagnostics),
            )
        )
    metric_datasets = _metric_datasets(results, checks)
    measurements = [
        catalog_ingest.MeasurementInput(
            identity=metric.identity,
            metric_name=metric.metricName or "",
            value=_finite(metric.value),
            data_source=metric_datasets.get(metric.identity, ("", ""))[0],
            dataset=metric_datasets.get(metric.identity, ("", ""))[1],
        )
        for metric in results.metrics or []
    ]
    contracts = []
    if results.contract and results.contract.fileId and checks:
        source = (results.contract.metadata or {}).get("source")
        file_path = source.get("filePath") if isinstance(source, dict) else None
        contracts.append(
            catalog_ingest.ContractInput(
                data_source=checks[0].dataSource,
                dataset=dataset_name(checks[0]),
                file_id=results.contract.fileId,
                file_path=file_path if isinstance(file_path, str) else "",
            )
        )
    source_type = (results.defaultDataSourceProperties or {}).get("type")
    return catalog_ingest.ScanInput(
        data_timestamp=results.dataTimestamp,
        results=result_inputs,
        source="soda-core",
        definition_name=results.definitionName or "",
        started_at=results.scanStartTimestamp,
        ended_at=results.scanEndTimestamp,
        has_errors=results.hasErrors,
        logs=[_finite(line) for line in results.logs or []],
        measurements=measurements,
        idempotency_key=idempotency_key,
        data_source_types=(
            {results.defaultDataSource: source_type}
            if results.defaultDataSource and isinstance(source_type, str)
            else {}
        ),
        external_id=results.scanId or "",
        client=client or ("SodaCore/4" if v4 else "SodaCore/3"),
        contracts=contracts,
    )


def payload_key(user_id: int, body: dict[str, Any]) -> str:
    """The same upload sent again by the same user (a client retry) has the same key."""
    canonical = json.dumps(
        {k: v for k, v in body.items() if k != "token"}, sort_keys=True, separators=(",", ":"), default=str
    )
    return f"soda:{user_id}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def insert_response(scan_id: int, results: list[CheckResult], base_url: str) -> dict[str, Any]:
    """What Soda Core 4.x reads back: the scan id, a link, and each check's id and dataset."""
    checks: dict[int, Check] = {}
    datasets: dict[int, Dataset] = {}
    for row in results:
        checks.setdefault(row.check_ref_id, row.check_ref)
        datasets.setdefault(row.dataset_id, row.dataset)
    first_dataset = next(iter(datasets.values()), None)
    return {
        "scanId": str(scan_id),
        "cloudUrl": f"{base_url}/datasets/{first_dataset.pk}"
        if first_dataset
        else f"{base_url}/scans/{scan_id}",
        "checks": [
            {
                "id": str(check.pk),
                "identities": [check.identity],
                "datasets": [
                    {
                        "id": str(check.dataset_id),
                        "dqn": qualified_name(
                            datasets[check.dataset_id].data_source.name, datasets[check.dataset_id].name
                        ),
                    }
                ],
            }
            for check in checks.values()
        ],
    }
