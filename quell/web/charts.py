"""A check's result values over time as an inline SVG: a line through the values, each point marked by
its outcome with a distinct shape (circle pass, triangle warn, square fail, hollow diamond excluded or
not evaluated) so colour is not the only signal. Server-side, so the page needs no charting script."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Protocol

from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime

from quell.web.diagnostics import threshold_phrase
from quell.web.templatetags.quell_tags import num


@dataclass(frozen=True)
class Size:
    """A chart's viewBox and margins; the <svg> scales to its container's width (CSS), so these set
    the proportions and the room for labels rather than pixels."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    y_ticks: int  # about how many value ticks
    x_ticks: int  # at most how many date ticks


FULL = Size(960, 240, 64, 16, 14, 34, 6, 7)
SMALL = Size(400, 150, 58, 10, 10, 30, 3, 3)
# Kept for callers that read the full chart's size.
WIDTH, HEIGHT = FULL.width, FULL.height


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    outcome: str
    value: float
    at: datetime

    @property
    def box_x(self) -> float:
        return self.x - 5

    @property
    def box_y(self) -> float:
        return self.y - 5

    @property
    def diamond(self) -> str:
        return f"{self.x:.1f},{self.y - 6:.1f} {self.x - 6:.1f},{self.y:.1f} {self.x:.1f},{self.y + 6:.1f} {self.x + 6:.1f},{self.y:.1f}"

    @property
    def triangle(self) -> str:
        return f"{self.x:.1f},{self.y - 6:.1f} {self.x - 6:.1f},{self.y + 5:.1f} {self.x + 6:.1f},{self.y + 5:.1f}"

    # The point's markup is built here rather than in the template: with 90 points, the template's
    # date, number and floatformat filters per point were most of the check page's rendering time.
    @property
    def title(self) -> str:
        return f"{localtime(self.at):%Y-%m-%d %H:%M}: {num(self.value)} ({self.outcome})"

    @property
    def shape(self) -> SafeString:
        # Only numbers go into the markup, so there is nothing to escape.
        if self.outcome == "fail":
            markup = f'<rect x="{self.box_x:.1f}" y="{self.box_y:.1f}" width="10" height="10"/>'
        elif self.outcome == "warn":
            markup = f'<polygon points="{self.triangle}"/>'
        elif self.outcome != "pass":
            markup = f'<polygon points="{self.diamond}"/>'
        else:
            markup = f'<circle cx="{self.x:.1f}" cy="{self.y:.1f}" r="4"/>'
        return mark_safe(markup)  # noqa: S308


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


# Soda Cloud's threshold keys as the comparison a label shows ("fail > 1,000").
SYMBOLS = {"greaterThan": ">", "greaterThanOrEqual": "≥", "lessThan": "<", "lessThanOrEqual": "≤"}


@dataclass(frozen=True)
class Threshold:
    """One bound of a check's `fail` or `warn` zone as Soda sent it in a result's diagnostics."""

    level: str  # "fail" or "warn"
    comparison: str  # a key of SYMBOLS
    value: float

    @property
    def label(self) -> str:
        return f"{self.level} {SYMBOLS[self.comparison]} {num(self.value)}"


@dataclass(frozen=True)
class Rule:
    """A threshold's line across the plot."""

    level: str
    y: float
    label: str

    @property
    def label_y(self) -> float:
        return self.y - 4  # just above the line


@dataclass(frozen=True)
class Band:
    """The part of the plot where values warn or fail."""

    level: str
    y: float
    height: float


@dataclass(frozen=True)
class Chart:
    key: str  # makes the <title>/<desc> ids unique when a page shows several charts
    width: int
    height: int
    points: list[Point]
    line: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    without_value: int
    counts: dict[str, int]
    results: int  # how many results the chart covers, with a value or not
    first: datetime
    last: datetime
    rules: list[Rule]
    bands: list[Band]
    zones: dict[str, str]  # "fail": "above 1,000", for the description

    @property
    def marks(self) -> SafeString:
        """Every point's <g>, built here rather than by a loop in the template (90 points with three
        lookups each were most of the chart's rendering time); text escaped as the template would."""
        return mark_safe(  # noqa: S308
            "".join(
                f'\n      <g class="point point-{escape(p.outcome)}"><title>{escape(p.title)}</title>{p.shape}</g>\n    '
                for p in self.points
            )
        )

    @property
    def plot_width(self) -> int:
        return self.plot_right - self.plot_left

    @property
    def period(self) -> str:
        """ "from 3 Nov to 1 Dec", or "on 3 Nov" when every result has the same day."""
        years = localtime(self.first).year != localtime(self.last).year
        first, last = _day(self.first, years), _day(self.last, years)
        if first == last:
            return f"on {first}"
        return f"from {first} to {last}"


def _day(at: datetime, year: bool) -> str:
    local = localtime(at)
    return f"{local.day} {local:%b %Y}" if year else f"{local.day} {local:%b}"


def _label(value: float, step: float | None = None) -> str:
    if abs(value) >= 1e15 or (step is not None and step < 1e-6):
        return f"{value:.3g}"  # 1.7e+308, not a 309-digit number
    if step is not None:
        # As many decimals as the step needs, so ticks read 0.5, 1.0, 1.5 or 0, 500, 1,000.
        decimals = next((d for d in range(7) if abs(round(step, d) - step) < step * 1e-9), 6)
        return f"{value + 0.0:,.{decimals}f}"  # + 0.0 turns -0.0 into 0.0
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int) -> list[float] | None:
    """About `count` evenly spaced round values (steps of 1, 2, 2.5 or 5 times a power of ten) from at
    or below `low` to at or above `high`; None when the range is too wide for floats (near 1.8e308)."""
    if low == high:
        pad = abs(low) / 10 or 1.0
        low, high = low - pad, high + pad
    span = high - low
    if not math.isfinite(span):
        return None
    raw = span / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(n * power for n in (1, 2, 2.5, 5, 10) if raw <= n * power * (1 + 1e-9))
    start, stop = math.floor(low / step), math.ceil(high / step)
    ticks = [n * step for n in range(start, stop + 1)]
    return ticks if all(math.isfinite(t) for t in ticks) and len(ticks) > 1 else None


HOUR, DAY = 3600, 86400
TIME_STEPS = [HOUR * n for n in (1, 2, 3, 6, 12)] + [DAY * n for n in (1, 2, 7, 14, 30, 61, 91, 182, 365)]


def time_ticks(first: datetime, last: datetime, count: int) -> list[tuple[datetime, str]]:
    """At most `count` dates at whole hours or local midnights between first and last, labelled
    "3 Nov" (or "14:00" within a day)."""
    a, b = localtime(first), localtime(last)
    span = b.timestamp() - a.timestamp()
    if span <= 0:
        return [(first, f"{a.day} {a:%b}")]
    step = next((s for s in TIME_STEPS if span / s <= count - 1), TIME_STEPS[-1])
    if step < DAY:
        hours = step // HOUR
        at = a.replace(minute=0, second=0, microsecond=0)
        while at < a or at.hour % hours:
            at = localtime(at + timedelta(hours=1))
    else:
        at = a.replace(hour=0, minute=0, second=0, microsecond=0)
        if at < a:
            at = localtime(at + timedelta(days=1))
    ticks: list[tuple[datetime, str]] = []
    while at <= b and len(ticks) < count:
        if step < DAY:
            label = f"{at:%H:%M}" if ticks and at.hour else f"{at.day} {at:%b} {at:%H:%M}"
        else:
            label = f"{at.day} {at:%b}" if step < 182 * DAY else f"{at:%b %Y}"
        ticks.append((at, label))
        # Local-time arithmetic (a day is 23 or 25 hours across a clock change), then the real offset.
        at = localtime((at.replace(tzinfo=None) + timedelta(seconds=step)).replace(tzinfo=at.tzinfo))
    return ticks


class Charted(Protocol):
    """What the chart reads of a result: a CheckResult, or a row of these columns."""

    @property
    def id(self) -> int: ...
    @property
    def data_timestamp(self) -> datetime: ...
    @property
    def outcome(self) -> str: ...
    @property
    def value(self) -> float | None: ...


def thresholds_of(results: Sequence[Charted]) -> list[Threshold]:
    """The warn and fail bounds in the newest result's diagnostics that has any (`fail: {"greaterThan":
    1000}`); a check's older thresholds are not drawn, as a line shows where the check stands now."""
    for result in sorted(results, key=lambda r: (r.data_timestamp, r.id), reverse=True):
        diagnostics = getattr(result, "diagnostics", None)
        if not isinstance(diagnostics, dict):
            continue
        found = [
            Threshold(level, comparison, float(value))
            for level in ("fail", "warn")
            if isinstance(diagnostics.get(level), dict)
            for comparison, value in diagnostics[level].items()
            if comparison in SYMBOLS
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ]
        if found:
            return found
    return []


def _zones(thresholds: list[Threshold], level: str) -> list[tuple[float, float]]:
    """The value ranges where a level applies, unbounded ends as +-inf. Two bounds make one zone
    between them (greater than 5, less than 10) or two outside them (greater than 10, less than 5)."""
    above = [t.value for t in thresholds if t.level == level and t.comparison.startswith("greater")]
    below = [t.value for t in thresholds if t.level == level and t.comparison.startswith("less")]
    if above and below:
        if above[0] < below[0]:
            return [(above[0], below[0])]
        return [(above[0], math.inf), (-math.inf, below[0])]
    if above:
        return [(above[0], math.inf)]
    if below:
        return [(-math.inf, below[0])]
    return []


def result_chart(results: Sequence[Charted], *, size: Size = FULL, key: str = "chart") -> Chart | None:
    """The chart for these results (any order), or None when none of them has a numeric value.

    Any finite values chart, up to +-1.8e308; an infinite or NaN value (ingest refuses them) is left
    out like a missing one, so no coordinate is ever `nan` or `inf`. The value axis spans the values
    and the thresholds (so a line shows how far the values are from failing), on round ticks.
    """
    ordered = sorted(results, key=lambda r: (r.data_timestamp, r.id))
    valued = [r for r in ordered if r.value is not None and math.isfinite(r.value)]
    if not valued:
        return None
    left, right = size.left, size.width - size.right
    top, bottom = size.top, size.height - size.bottom
    plot_w, plot_h = right - left, bottom - top
    values = [float(r.value) for r in valued if r.value is not None]
    thresholds = thresholds_of(ordered)
    bounds = [*values, *(t.value for t in thresholds)]
    ticks = nice_ticks(min(bounds), max(bounds), size.y_ticks)
    if ticks is not None:
        low, high = ticks[0], ticks[-1]
        step = ticks[1] - ticks[0]
    else:
        # Too wide for round ticks (values near +-1.8e308): the lowest, the middle and the highest.
        low, high = min(bounds), max(bounds)
        ticks = [high, high / 2 + low / 2, low] if high > low else [low]
        step = None
    # Halved before subtracting: the distance between two finite values may not be finite itself
    # (1.7e308 - -1.7e308 is inf, and inf / inf drew `nan` coordinates). Zero when all are equal.
    extent = high / 2 - low / 2
    first, last = valued[0].data_timestamp, valued[-1].data_timestamp
    span = last.timestamp() - first.timestamp() or 1.0

    def x_of(at: datetime) -> float:
        return left + plot_w * ((at.timestamp() - first.timestamp()) / span if len(valued) > 1 else 0.5)

    def y_of(value: float) -> float:
        share = (value / 2 - low / 2) / extent if extent > 0 else 0.5  # one value: a flat line midway
        return top + plot_h * (1 - min(max(share, 0.0), 1.0))

    points = [
        Point(x_of(r.data_timestamp), y_of(float(r.value)), r.outcome, float(r.value), r.data_timestamp)
        for r in valued
        if r.value is not None
    ]
    x_ticks = [Tick(x_of(at), label) for at, label in time_ticks(first, last, size.x_ticks)]
    counts = {
        outcome: sum(1 for r in ordered if r.outcome == outcome) for outcome in ("pass", "warn", "fail")
    }
    # Excluded and not-evaluated results rarely carry a value; when they do they share a hollow diamond.
    counts["other"] = len(ordered) - sum(counts.values())
    bands = [
        Band(level, y_of(min(hi, high)), y_of(max(lo, low)) - y_of(min(hi, high)))
        for level in ("warn", "fail")
        for lo, hi in _zones(thresholds, level)
        if min(hi, high) > max(lo, low)
    ]
    return Chart(
        key=key,
        width=size.width,
        height=size.height,
        points=points,
        line=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in points),
        y_ticks=[Tick(y_of(v), _label(v, step)) for v in ticks],
        x_ticks=x_ticks,
        plot_left=left,
        plot_right=right,
        plot_top=top,
        plot_bottom=bottom,
        without_value=len(ordered) - len(valued),
        counts=counts,
        results=len(ordered),
        first=ordered[0].data_timestamp,
        last=ordered[-1].data_timestamp,
        rules=[Rule(t.level, y_of(t.value), t.label) for t in thresholds],
        bands=bands,
        zones={
            level: phrase
            for level in ("fail", "warn")
            if (phrase := threshold_phrase({t.comparison: t.value for t in thresholds if t.level == level}))
        },
    )
