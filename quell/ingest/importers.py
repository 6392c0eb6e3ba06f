"""Results files from other tools read into Quell's ScanInput: dbt, Great Expectations 1.x, Soda's `-srf`.

Each reader takes parsed JSON and raises `MalformedFile` naming the file and what is wrong with
it, before anything is written; `catalog.ingest.ingest_scan` then stores the scan all or nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_artifacts_parser.parser import parse_manifest, parse_run_results
from django.utils import timezone
from pydantic import ValidationError

from quell.accounts.models import User
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult, Outcome, Scan
from quell.ingest import soda
from quell.lib.errors import Invalid, Unprocessable
from quell.lib.jsontext import UnreadableJSON, parse_json

FORMATS = ("dbt", "gx", "soda")


class MalformedFile(Unprocessable):
    code = "malformed_file"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}", field=name)


def read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MalformedFile(str(path), "no such file.") from None
    except OSError as error:
        raise MalformedFile(str(path), f"cannot be read ({error}).") from None
    try:
        return parse_json(raw, subject="The file")
    except UnreadableJSON as error:
        raise MalformedFile(str(path), f"{error.problem}.") from None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _digest(*documents: Any) -> str:
    canonical = json.dumps(documents, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- dbt ------------------------------------------------------------------------------------------

DBT_OUTCOMES = {
    "pass": Outcome.PASS,
    "success": Outcome.PASS,
    "warn": Outcome.WARN,
    "fail": Outcome.FAIL,
    "error": Outcome.UNEVALUATED,
    "runtime error": Outcome.UNEVALUATED,
    "skipped": Outcome.UNEVALUATED,
}


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def dbt_scan(
    run_results: Any,
    manifest: Any,
    *,
    by: User,
    run_results_name: str = "run_results.json",
    manifest_name: str = "manifest.json",
    data_source: str = "",
) -> catalog_ingest.ScanInput:
    """A scan from `dbt test` / `dbt build`: each test is a check on the model (or source) it tests.

    The data source is the model's database unless `data_source` names one; the dataset is the
    model's relation name, as Soda Core 3.x names a table. A test keeps its history through its
    dbt `unique_id`.
    """
    if not isinstance(run_results, dict):
        raise MalformedFile(run_results_name, "is not a dbt run_results.json (not a JSON object).")
    if not isinstance(manifest, dict):
        raise MalformedFile(manifest_name, "is not a dbt manifest.json (not a JSON object).")
    try:
        runs: Any = parse_run_results(run_results)
    except (ValueError, ValidationError) as error:
        raise MalformedFile(
            run_results_name, f"is not a dbt run_results.json ({_first_line(error)})."
        ) from None
    try:
        graph: Any = parse_manifest(manifest)
    except (ValueError, ValidationError) as error:
        raise MalformedFile(manifest_name, f"is not a dbt manifest.json ({_first_line(error)}).") from None
    nodes: dict[str, Any] = dict(graph.nodes or {})
    sources: dict[str, Any] = dict(graph.sources or {})
    results = []
    for position, run in enumerate(runs.results):
        unique_id = run.unique_id
        # Seeds, models and unit tests are not data tests: they say nothing about the data.
        if not unique_id.startswith("test."):
            continue
        node = nodes.get(unique_id)
        if node is None:
            raise MalformedFile(
                manifest_name,
                f"has no test {unique_id}, which {run_results_name} ran (results[{position}]); "
                "use the manifest.json from the same dbt run.",
            )
        tested = _tested_relation(node, nodes, sources)
        if tested is None:
            raise MalformedFile(manifest_name, f"test {unique_id} tests no model or source it describes.")
        database, relation = tested
        status = _enum_value(run.status)
        outcome = DBT_OUTCOMES.get(status)
        if outcome is None:
            raise MalformedFile(run_results_name, f"results[{position}] has an unknown status {status!r}.")
        metadata = getattr(node, "test_metadata", None)
        column = getattr(node, "column_name", None) or ""
        kwargs = {
            k: v
            for k, v in (getattr(metadata, "kwargs", None) or {}).items()
            if k not in {"model", "column_name"}
        }
        if metadata is not None:
            name = f"{metadata.name}({column})" if column else metadata.name
            definition = (
                f"{metadata.name}: {json.dumps(kwargs, sort_keys=True, default=str)}"
                if kwargs
                else metadata.name
            )
        else:
            name = node.name
            definition = getattr(node, "raw_code", "") or ""
        severity = _enum_value(getattr(node.config, "severity", "")) if node.config else ""
        results.append(
            catalog_ingest.ResultInput(
                data_source=data_source or database,
                dataset=relation,
                check=catalog_ingest.CheckInput(
                    name=name[:1000],
                    identity=unique_id[:300],
                    column=column,
                    definition=definition,
                    check_type=metadata.name if metadata is not None else "singular",
                    attributes={"severity": severity.lower()} if severity else {},
                    location={"filePath": getattr(node, "original_file_path", "") or ""},
                ),
                outcome=outcome,
                value=float(run.failures) if isinstance(run.failures, int) else None,
                diagnostics={
                    "dbt": {
                        "status": status,
                        "failures": run.failures,
                        "message": run.message,
                        "executionTime": run.execution_time,
                    }
                },
            )
        )
    if not results:
        raise MalformedFile(run_results_name, "holds no test results (run `dbt test` or `dbt build`).")
    generated = runs.metadata.generated_at
    started = getattr(runs.metadata, "invocation_started_at", None)
    which = runs.args.get("which") if isinstance(runs.args, dict) else None
    return catalog_ingest.ScanInput(
        data_timestamp=_aware(generated) or timezone.now(),
        results=results,
        source="dbt",
        definition_name=f"dbt {which}" if which else "dbt",
        started_at=_aware(started),
        ended_at=_aware(generated),
        idempotency_key=f"dbt:{by.pk}:{runs.metadata.invocation_id or _digest(run_results)}",
        data_source_types={
            (data_source or r.data_source): graph.metadata.adapter_type or "" for r in results
        },
        client=f"dbt {runs.metadata.dbt_version}" if runs.metadata.dbt_version else "dbt",
    )


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return _parse_time(value)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _tested_relation(node: Any, nodes: dict[str, Any], sources: dict[str, Any]) -> tuple[str, str] | None:
    candidates = []
    attached = getattr(node, "attached_node", None)
    if attached:
        candidates.append(attached)
    depends_on = getattr(node, "depends_on", None)
    candidates += list(getattr(depends_on, "nodes", None) or [])
    for unique_id in candidates:
        target = nodes.get(unique_id) or sources.get(unique_id)
        if target is None or unique_id.startswith("test."):
            continue
        relation = getattr(target, "alias", None) or getattr(target, "identifier", None) or target.name
        return (target.database or "dbt", relation)
    return None


# --- Great Expectations 1.x ---------------------------------------------------------------------

GX_WARN_SEVERITIES = {"warning", "info"}


@dataclass
class _GxRun:
    data_source: str
    dataset: str
    expectations: list[dict[str, Any]]
    run_time: datetime | None


def _gx_runs(document: Any, name: str, data_source: str, dataset: str) -> list[_GxRun]:
    """The validations in a validation result (`.to_json_dict()`) or a checkpoint result (`describe_dict()`)."""
    if not isinstance(document, dict):
        raise MalformedFile(name, "is not a Great Expectations result (not a JSON object).")
    results = document.get("results")
    if isinstance(results, list) and all(isinstance(r, dict) and "expectation_config" in r for r in results):
        return [_gx_validation(document, name, data_source, dataset)]
    if isinstance(document.get("validation_results"), list):
        runs = []
        for position, item in enumerate(document["validation_results"]):
            if not isinstance(item, dict) or not isinstance(item.get("expectations"), list):
                raise MalformedFile(name, f"validation_results[{position}] has no expectations list.")
            runs.append(_gx_described(item, position, name, data_source, dataset))
        return runs
    if isinstance(document.get("run_results"), dict):
        return [
            _gx_validation(item.get("validation_result", item), name, data_source, dataset)
            for item in document["run_results"].values()
            if isinstance(item, dict)
        ]
    raise MalformedFile(
        name,
        "is neither a validation result (with `results`) nor a checkpoint result "
        "(with `validation_results` or `run_results`).",
    )


def _gx_validation(document: dict[str, Any], name: str, data_source: str, dataset: str) -> _GxRun:
    meta = _dict(document.get("meta"))
    batch = _dict(meta.get("active_batch_definition"))
    source = data_source or batch.get("datasource_name")
    asset = dataset or batch.get("data_asset_name")
    if not source or not asset:
        raise MalformedFile(
            name, "does not say which data source and asset it validated; pass them explicitly."
        )
    expectations = []
    for position, item in enumerate(document["results"]):
        config = item.get("expectation_config") if isinstance(item, dict) else None
        if not isinstance(config, dict) or not isinstance(item.get("success"), bool):
            raise MalformedFile(name, f"results[{position}] has no expectation_config or success.")
        expectations.append(
            {
                "type": config.get("type") or config.get("expectation_type"),
                "kwargs": config.get("kwargs") or {},
                "severity": config.get("severity") or "",
                "success": item["success"],
                "result": item.get("result") or {},
                "raised": bool(_dict(item.get("exception_info")).get("raised_exception")),
                "exception": _dict(item.get("exception_info")).get("exception_message"),
            }
        )
    run_id = _dict(meta.get("run_id"))
    when = _parse_time(meta.get("validation_time")) or _parse_time(run_id.get("run_time"))
    return _GxRun(str(source), str(asset), expectations, when)


def _gx_described(item: dict[str, Any], position: int, name: str, data_source: str, dataset: str) -> _GxRun:
    expectations = []
    batch_id = ""
    for index, expectation in enumerate(item["expectations"]):
        if not isinstance(expectation, dict) or not isinstance(expectation.get("success"), bool):
            raise MalformedFile(name, f"validation_results[{position}].expectations[{index}] has no success.")
        kwargs = expectation.get("kwargs") or {}
        batch_id = batch_id or str(kwargs.get("batch_id") or "")
        expectations.append(
            {
                "type": expectation.get("expectation_type") or expectation.get("type"),
                "kwargs": kwargs,
                "severity": expectation.get("severity") or "",
                "success": expectation["success"],
                "result": expectation.get("result") or {},
                "raised": False,
                "exception": None,
            }
        )
    # A described checkpoint names its batch only as "<data source>-<asset>".
    described_source, _, described_asset = batch_id.partition("-")
    source = data_source or described_source
    asset = dataset or described_asset
    if not source or not asset:
        raise MalformedFile(
            name, f"validation_results[{position}] does not say which data source and asset it validated."
        )
    return _GxRun(source, asset, expectations, None)


def _gx_value(result: dict[str, Any]) -> float | None:
    for key in ("observed_value", "unexpected_count"):
        value = result.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def gx_scan(
    document: Any, *, by: User, name: str = "result.json", data_source: str = "", dataset: str = ""
) -> catalog_ingest.ScanInput:
    """A scan from a GX 1.x validation or checkpoint result: each expectation is a check on its asset."""
    runs = _gx_runs(document, name, data_source, dataset)
    results = []
    for run in runs:
        for position, expectation in enumerate(run.expectations):
            kind = expectation["type"]
            if not isinstance(kind, str) or not kind:
                raise MalformedFile(name, f"expectation {position} has no type.")
            kwargs = {k: v for k, v in expectation["kwargs"].items() if k != "batch_id"}
            column = str(kwargs["column"]) if isinstance(kwargs.get("column"), str) else ""
            # The same expectation with the same arguments on the same asset is the same check,
            # whichever form of result it arrives in.
            identity = "gx:" + _digest(run.data_source, run.dataset, kind, kwargs)[:24]
            if expectation["raised"]:
                outcome = Outcome.UNEVALUATED
            elif expectation["success"]:
                outcome = Outcome.PASS
            elif str(expectation["severity"]).lower() in GX_WARN_SEVERITIES:
                outcome = Outcome.WARN
            else:
                outcome = Outcome.FAIL
            result = expectation["result"] if isinstance(expectation["result"], dict) else {}
            results.append(
                catalog_ingest.ResultInput(
                    data_source=run.data_source,
                    dataset=run.dataset,
                    check=catalog_ingest.CheckInput(
                        name=(f"{kind}({column})" if column else kind)[:1000],
                        identity=identity,
                        column=column,
                        definition=json.dumps({kind: kwargs}, sort_keys=True, default=str),
                        check_type=kind[:100],
                    ),
                    outcome=outcome,
                    value=_gx_value(result),
                    diagnostics={"gx": {"result": result, "exception": expectation["exception"]}},
                    data_timestamp=run.run_time,
                )
            )
    if not results:
        raise MalformedFile(name, "holds no expectation results.")
    when = next((run.run_time for run in runs if run.run_time), None)
    run_identity = document.get("id") or _dict(document.get("meta")).get("validation_id")
    return catalog_ingest.ScanInput(
        data_timestamp=when or timezone.now(),
        results=results,
        source="great_expectations",
        definition_name=str(document.get("suite_name") or "Great Expectations")[:500],
        idempotency_key=f"gx:{by.pk}:{run_identity or _digest(document)}",
        client="Great Expectations",
    )


# --- Soda Core's results file ---------------------------------------------------------------------


def soda_file_scan(document: Any, *, by: User, name: str = "results.json") -> catalog_ingest.ScanInput:
    """A scan from `soda scan -srf results.json`, for machines that cannot reach Quell."""
    if not isinstance(document, dict):
        raise MalformedFile(name, "is not a Soda scan results file (not a JSON object).")
    try:
        results = soda.parse_scan_results(document)
    except ValidationError as error:
        raise MalformedFile(
            name, f"is not a Soda scan results file ({soda.describe_validation_error(error)})."
        ) from None
    if not results.checks and not results.metrics:
        raise MalformedFile(name, "holds no checks or metrics.")
    return soda.scan_input(
        results, idempotency_key=soda.payload_key(by.pk, document), client="soda scan -srf"
    )


# --- Running an import ----------------------------------------------------------------------------


@dataclass
class ImportRequest:
    format: str
    files: list[Path]
    data_source: str = ""
    dataset: str = ""


def read_scan(request: ImportRequest, *, by: User) -> catalog_ingest.ScanInput:
    """Read and check the files of one import, writing nothing."""
    if request.format == "dbt":
        if len(request.files) != 2:
            raise Invalid("A dbt import takes run_results.json and manifest.json.", field="files")
        run_results_path, manifest_path = request.files
        return dbt_scan(
            read_json(run_results_path),
            read_json(manifest_path),
            by=by,
            run_results_name=str(run_results_path),
            manifest_name=str(manifest_path),
            data_source=request.data_source,
        )
    if len(request.files) != 1:
        raise Invalid(f"A {request.format} import takes one file.", field="files")
    (path,) = request.files
    if request.format == "gx":
        return gx_scan(
            read_json(path), by=by, name=str(path), data_source=request.data_source, dataset=request.dataset
        )
    if request.format == "soda":
        return soda_file_scan(read_json(path), by=by, name=str(path))
    raise Invalid(f"Unknown format {request.format!r}; use one of {', '.join(FORMATS)}.", field="format")


def run_import(
    request: ImportRequest,
    *,
    by: User,
    on_start: Callable[[int], object] | None = None,
    on_progress: catalog_ingest.Progress | None = None,
) -> tuple[Scan, list[CheckResult]]:
    """Read the files, then store them as one scan, all or nothing."""
    scan_input = read_scan(request, by=by)
    if on_start is not None:
        on_start(len(scan_input.results))
    return catalog_ingest.ingest_scan(scan_input, by=by, on_progress=on_progress)
