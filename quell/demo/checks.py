"""The demo's datasets and checks as organisation.toml describes them, and how each behaves day by day.

A check's `kind` in the data file picks one of the makers below; the rest of its entry is the maker's
keyword arguments. Maps by days ago have string keys in TOML, so the makers turn them into ints.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Day:
    days_ago: int
    at: datetime
    rows: int


# A check's behaviour: (day, random generator) -> (outcome, value, diagnostics).
Behaviour = Callable[[Day, random.Random], tuple[str, float | None, dict[str, Any]]]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    check_type: str
    column: str
    dimension: str
    behaviour: Behaviour
    thresholds: str = ""  # the YAML under the check, when it has warn/fail levels

    def definition(self, dataset: str) -> str:
        if self.thresholds:
            name = self.name.split(" < ")[0]
            return f"checks for {dataset}:\n  - {name}:\n      {self.thresholds}"
        return f"checks for {dataset}:\n  - {self.name}"


@dataclass(frozen=True)
class Volume:
    """Rows per day (or in the table): base, growth per day, weekend factor, noise, and by days ago
    the days with no rows at all and the days scaled by a factor."""

    base: float
    growth: float = 0.0
    weekend: float = 1.0
    noise: float = 0.0
    empty: frozenset[int] = frozenset()
    scaled: dict[int, float] = field(default_factory=dict)

    def rows(self, day_index: int, days_ago: int, on: date, rng: random.Random) -> int:
        value = self.base * (1 + self.growth) ** day_index * (1 + rng.gauss(0, self.noise))
        if on.weekday() >= 5:
            value *= self.weekend
        if days_ago in self.empty:
            return 0
        return max(0, round(value * self.scaled.get(days_ago, 1.0)))


@dataclass(frozen=True)
class DatasetSpec:
    source: str
    name: str
    volume: Volume
    checks: list[CheckSpec]


def dataset_spec(entry: dict[str, Any]) -> DatasetSpec:
    """One [[datasets]] entry of organisation.toml."""
    volume = dict(entry["volume"])
    volume["empty"] = frozenset(volume.get("empty", ()))
    volume["scaled"] = _by_day(volume.get("scaled"))
    return DatasetSpec(
        source=entry["data_source"],
        name=entry["name"],
        volume=Volume(**volume),
        checks=[_check_spec(check) for check in entry["checks"]],
    )


def _check_spec(entry: dict[str, Any]) -> CheckSpec:
    arguments = dict(entry)
    return _KINDS[arguments.pop("kind")](**arguments)


def _by_day(values: dict[str, Any] | None) -> dict[int, Any]:
    return {int(days_ago): value for days_ago, value in (values or {}).items()}


def _hours(hours: float) -> str:
    days, minutes = divmod(round(hours * 60), 24 * 60)
    hrs, minutes = divmod(minutes, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hrs, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


def _row_count() -> CheckSpec:
    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        return ("pass" if day.rows > 0 else "fail"), float(day.rows), {"value": day.rows}

    return CheckSpec("row_count > 0", "row_count", "", "Completeness", behaviour)


def _zero(metric: str, column: str, dimension: str, failing: dict[str, int] | None = None) -> CheckSpec:
    """missing_count(x) = 0, duplicate_count(x) = 0, ...: fails on the days in `failing`."""
    bad = _by_day(failing)

    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        value = bad.get(day.days_ago, 0)
        diagnostics: dict[str, Any] = {"value": value}
        if value:
            diagnostics["failedRowsCount"] = value
        return ("fail" if value else "pass"), float(value), diagnostics

    return CheckSpec(f"{metric}({column}) = 0", metric, column, dimension, behaviour)


def _levels(
    name: str,
    metric: str,
    column: str,
    dimension: str,
    *,
    usual: list[float],
    warn: float,
    fail: float,
    unit: str,
    days: dict[str, float] | None = None,
    mondays: float | None = None,
) -> CheckSpec:
    """A metric with warn and fail levels (freshness in hours, percentages); higher is worse."""
    special = _by_day(days)

    def show(value: float) -> str:
        return _hours(value) if unit == "h" else f"{value:g}{unit}"

    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        value = round(rng.uniform(*usual), 2)
        if mondays is not None and day.at.weekday() == 0:
            value = mondays
        value = special.get(day.days_ago, value)
        outcome = "fail" if value > fail else "warn" if value > warn else "pass"
        diagnostics: dict[str, Any] = {
            "value": value,
            "warn": f"when > {show(warn)}",
            "fail": f"when > {show(fail)}",
        }
        if unit == "h":
            diagnostics["freshness"] = _hours(value)
            diagnostics["maxColumnTimestamp"] = (day.at - timedelta(hours=value)).isoformat()
        return outcome, value, diagnostics

    thresholds = f"warn: when > {show(warn)}\n      fail: when > {show(fail)}"
    return CheckSpec(name, metric, column, dimension, behaviour, thresholds)


def _freshness(column: str, limit: str, **kwargs: Any) -> CheckSpec:
    return _levels(f"freshness({column}) < {limit}", "freshness", column, "Timeliness", unit="h", **kwargs)


def _percent(metric: str, column: str, limit: float, dimension: str, **kwargs: Any) -> CheckSpec:
    return _levels(
        f"{metric}({column}) < {limit:g}%", metric, column, dimension, unit="%", fail=limit, **kwargs
    )


def _between(
    metric: str,
    column: str,
    low: float,
    high: float,
    usual: list[float],
    days: dict[str, float] | None = None,
) -> CheckSpec:
    special = _by_day(days)

    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        # Drawn every day, so that a special day leaves the other days' values as they were.
        value = special.get(day.days_ago, round(rng.uniform(*usual), 2))
        return ("pass" if low <= value <= high else "fail"), value, {"value": value}

    return CheckSpec(
        f"{metric}({column}) between {low:g} and {high:g}", metric, column, "Accuracy", behaviour
    )


def _schema(columns: list[str], dropped: dict[str, list[str]] | None = None) -> CheckSpec:
    missing_on = _by_day(dropped)

    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        missing = missing_on.get(day.days_ago, [])
        if not missing:
            return "pass", None, {"columns": columns}
        present = [column for column in columns if column not in missing]
        return "fail", None, {"missingColumnNames": missing, "columns": present}

    return CheckSpec("schema", "schema", "", "Consistency", behaviour)


def _anomaly(low_days: list[int]) -> CheckSpec:
    low_on = set(low_days)

    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        low = day.days_ago in low_on
        score = round(rng.uniform(0.991, 0.998) if low else rng.uniform(0.05, 0.6), 3)
        diagnostics = {"value": day.rows, "anomalyProbability": score, "direction": "lower" if low else ""}
        return ("warn" if low else "pass"), float(day.rows), diagnostics

    return CheckSpec("anomaly detection for row_count", "anomaly_detection", "", "Completeness", behaviour)


def _minimum(
    column: str, minimum: float, usual: list[float], days: dict[str, float] | None = None
) -> CheckSpec:
    special = _by_day(days)

    def behaviour(day: Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        value = float(special.get(day.days_ago, round(rng.uniform(*usual))))
        return ("pass" if value >= minimum else "fail"), value, {"value": value}

    return CheckSpec(f"min({column}) >= {minimum:g}", "min", column, "Validity", behaviour)


_KINDS: dict[str, Callable[..., CheckSpec]] = {
    "row_count": _row_count,
    "zero": _zero,
    "freshness": _freshness,
    "percent": _percent,
    "between": _between,
    "schema": _schema,
    "anomaly": _anomaly,
    "minimum": _minimum,
}
