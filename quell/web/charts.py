"""A check's result values over time as an inline SVG: a line through the values, each point marked by
its outcome with a distinct shape (circle pass, triangle warn, square fail, hollow diamond excluded or
not evaluated) so colour is not the only signal. Server-side, so the page needs no charting script."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Protocol

from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime

from quell.web.templatetags.quell_tags import num

WIDTH = 720
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 34


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


@dataclass(frozen=True)
class Chart:
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


def _label(value: float) -> str:
    if abs(value) >= 1e15:
        return f"{value:.3g}"  # 1.7e+308, not a 309-digit number
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:.3g}"


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


def result_chart(results: Sequence[Charted]) -> Chart | None:
    """The chart for these results (any order), or None when none of them has a numeric value.

    Any finite values chart, up to +-1.8e308; an infinite or NaN value (ingest refuses them) is left
    out like a missing one, so no coordinate is ever `nan` or `inf`.
    """
    ordered = sorted(results, key=lambda r: (r.data_timestamp, r.id))
    valued = [r for r in ordered if r.value is not None and math.isfinite(r.value)]
    if not valued:
        return None
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    values = [float(r.value) for r in valued if r.value is not None]
    low, high = min(values), max(values)
    # Halved before subtracting: the distance between two finite values may not be finite itself
    # (1.7e308 - -1.7e308 is inf, and inf / inf drew `nan` coordinates). Zero when all are equal.
    extent = high / 2 - low / 2
    first, last = valued[0].data_timestamp, valued[-1].data_timestamp
    span = (last - first).total_seconds() or 1.0

    def x_of(at: datetime) -> float:
        return LEFT + plot_w * ((at - first).total_seconds() / span if len(valued) > 1 else 0.5)

    def y_of(value: float) -> float:
        share = (value / 2 - low / 2) / extent if extent > 0 else 0.5  # one value: a flat line midway
        return TOP + plot_h * (1 - share)

    points = [
        Point(x_of(r.data_timestamp), y_of(float(r.value)), r.outcome, float(r.value), r.data_timestamp)
        for r in valued
        if r.value is not None
    ]
    shown = (high, high / 2 + low / 2, low) if extent > 0 else (low,)
    y_ticks = [Tick(y_of(v), _label(v)) for v in shown]
    x_ticks = [Tick(points[0].x, f"{first:%b %d}")]
    if len(points) > 1:
        x_ticks.append(Tick(points[-1].x, f"{last:%b %d}"))
    counts = {
        outcome: sum(1 for r in ordered if r.outcome == outcome) for outcome in ("pass", "warn", "fail")
    }
    # Excluded and not-evaluated results rarely carry a value; when they do they share a hollow diamond.
    counts["other"] = len(ordered) - sum(counts.values())
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        points=points,
        line=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in points),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        plot_top=TOP,
        plot_bottom=HEIGHT - BOTTOM,
        without_value=len(ordered) - len(valued),
        counts=counts,
    )
