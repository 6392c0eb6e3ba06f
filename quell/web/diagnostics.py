"""A result's diagnostics in sentences: what Soda (3.x and 4.x) and the other tools sent, said the way a
person would say it ("Missing column: fee_amount"), for the result page. Shapes this does not know say
nothing; the page keeps the raw JSON one click away for those and for every detail left out here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from quell.web.templatetags.quell_tags import num

# Soda Cloud's threshold keys (a check's `fail` and `warn` objects), as the words a sentence uses.
COMPARISONS = {
    "greaterThan": "above",
    "greaterThanOrEqual": "at or above",
    "lessThan": "below",
    "lessThanOrEqual": "at or below",
}


def describe(diagnostics: Any) -> list[str]:
    """Sentences for what these diagnostics say, in the order a reader needs them: the check's own
    findings (columns, rows, freshness), then its thresholds. Empty when nothing is recognised."""
    if not isinstance(diagnostics, Mapping):
        return []
    said = [
        *_schema(diagnostics),
        *_v4(diagnostics.get("v4")),
        *_failed_rows(diagnostics.get("blocks")),
        *_freshness(diagnostics),
        *_anomaly(diagnostics),
        *_reasons(diagnostics.get("outcomeReasons")),
    ]
    for level in ("fail", "warn"):
        if when := threshold_phrase(diagnostics.get(level)):
            said.append(f"{level.capitalize()}s when the value is {when}.")
    return said


def threshold_phrase(threshold: Any) -> str:
    """Soda's `{"greaterThan": 1000}` as "above 1,000"; two bounds say whether the zone is between them
    or outside them (Soda sends `greaterThan: 0, lessThan: 0` for "fail unless exactly 0")."""
    if not isinstance(threshold, Mapping):
        return ""
    bounds = {key: value for key, value in threshold.items() if key in COMPARISONS and _is_number(value)}
    above = next(((k, v) for k, v in bounds.items() if k.startswith("greater")), None)
    below = next(((k, v) for k, v in bounds.items() if k.startswith("less")), None)
    if above and below:
        if above[1] < below[1]:
            return f"between {num(above[1])} and {num(below[1])}"
        if above[1] == below[1] and "OrEqual" not in above[0] + below[0]:
            return f"anything but {num(above[1])}"
        return f"{COMPARISONS[above[0]]} {num(above[1])} or {COMPARISONS[below[0]]} {num(below[1])}"
    one = above or below
    return f"{COMPARISONS[one[0]]} {num(one[1])}" if one else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _names(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(key) for key in value]
    if isinstance(value, list):
        return [str(v.get("name") if isinstance(v, Mapping) else v) for v in value]
    return []


def _listed(label: str, names: list[str]) -> list[str]:
    """`Missing column: fee_amount`, `Missing columns: a, b`."""
    if not names:
        return []
    plural = label.replace("column", "columns") if len(names) > 1 else label
    return [f"{plural}: {', '.join(names)}"]


def _schema(d: Mapping[str, Any]) -> Iterable[str]:
    """Soda Core 3.x schema checks: validations against the expected schema, then changes since the last scan."""
    yield from _listed("Missing column", _names(d.get("missing_column_names")))
    yield from _listed("Column that should not be there", _names(d.get("present_column_names")))
    for name, found in _pairs(d.get("column_type_mismatches")):
        yield f"Wrong type: {name} is {found.get('actual_type', '?')}, expected {found.get('expected_type', '?')}"
    for name, found in _pairs(d.get("column_index_mismatches")):
        yield (
            f"Wrong position: {name} is at {found.get('actual_index', '?')}, "
            f"expected at {found.get('expected_index', '?')}"
        )
    yield from _listed("Added column", _names(d.get("column_additions")))
    yield from _listed("Removed column", _names(d.get("column_deletions")))
    for name, found in _pairs(d.get("column_type_changes")):
        yield f"Type changed: {name} from {found.get('previous_type', '?')} to {found.get('new_type', '?')}"
    for name, found in _pairs(d.get("column_index_changes")):
        yield (
            f"Position changed: {name} from {found.get('previous_index', '?')} "
            f"to {found.get('new_index', '?')}"
        )


def _pairs(value: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if isinstance(value, Mapping):
        for name, found in value.items():
            yield str(name), found if isinstance(found, Mapping) else {}


def _v4(v4: Any) -> Iterable[str]:
    """Soda Core 4.x (contracts): a `v4` object whose `type` names the check."""
    if not isinstance(v4, Mapping):
        return
    kind = v4.get("type")
    if kind == "schema":
        expected, actual = v4.get("expected"), v4.get("actual")
        if isinstance(expected, list) and isinstance(actual, list):
            found = {
                str(c.get("name")): c.get("type") for c in actual if isinstance(c, Mapping) and "name" in c
            }
            wanted = [c for c in expected if isinstance(c, Mapping) and "name" in c]
            yield from _listed(
                "Missing column", [str(c["name"]) for c in wanted if str(c["name"]) not in found]
            )
            for c in wanted:
                name = str(c["name"])
                if c.get("type") and name in found and str(found[name]).lower() != str(c["type"]).lower():
                    yield f"Wrong type: {name} is {found[name]}, expected {c['type']}"
        return
    failed, tested = v4.get("failedRowsCount"), v4.get("checkRowsTested")
    what = {"missing": "missing a value", "invalid": "with an invalid value", "duplicate": "duplicated"}
    if kind in what and _is_number(failed):
        of = f" of {num(tested)}" if _is_number(tested) else ""
        share = v4.get("failedRowsPercent")
        percent = f" ({num(round(share, 2))}%)" if isinstance(share, int | float) else ""
        yield f"{num(failed)}{of} rows {what[str(kind)]}{percent}"
    elif kind == "row_count" and _is_number(tested):
        yield f"{num(tested)} rows"


def _failed_rows(blocks: Any) -> Iterable[str]:
    """Soda Core 3.x's failed-rows blocks (missing, invalid, duplicate, reference and failed-rows checks)."""
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, Mapping) and block.get("type") == "failedRowsAnalysis":
            failing = block.get("totalFailingRows")
            if _is_number(failing):
                yield f"{num(failing)} failing row{'s' if failing != 1 else ''}"


def _freshness(d: Mapping[str, Any]) -> Iterable[str]:
    """Soda Core 3.x freshness checks: the newest value in the column, against the scan's now."""
    newest = d.get("maxColumnTimestampUtc") or d.get("maxColumnTimestamp")
    if newest:
        now = d.get("nowTimestampUtc") or d.get("nowTimestamp")
        age = f" ({d['freshness']} old)" if d.get("freshness") else ""
        yield f"Newest data: {newest}{age}" + (f", checked at {now}" if now else "")


def _anomaly(d: Mapping[str, Any]) -> Iterable[str]:
    """Soda's anomaly checks: the value the model expected."""
    if _is_number(d.get("anomalyPredictedValue")):
        yield f"Expected about {num(d['anomalyPredictedValue'])}"


def _reasons(reasons: Any) -> Iterable[str]:
    """The outcome reasons Soda sends beside diagnostics (kept with them at ingest)."""
    for reason in reasons if isinstance(reasons, list) else []:
        if isinstance(reason, Mapping) and reason.get("message"):
            yield str(reason["message"])
