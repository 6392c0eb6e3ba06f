"""Badges for outcomes, severities and statuses (a symbol and a word, so colour is never the only signal);
moments and lengths of time in the reader's zone, written one way everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django import template
from django.template import Context
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

if TYPE_CHECKING:
    from quell.incidents.models import Incident, Mute

register = template.Library()

OUTCOMES = {
    "pass": ("✓", "Pass"),
    "warn": ("!", "Warn"),
    "fail": ("✕", "Fail"),
    "excluded": ("\u2013", "Excluded"),
    "unevaluated": ("?", "Not evaluated"),
}
SCAN_STATES = {
    "completed": ("✓", "Completed"),
    "completedWithWarnings": ("!", "Completed with warnings"),
    "completedWithFailures": ("✕", "Completed with failures"),
    "completedWithErrors": ("⚠", "Completed with errors"),
    "failed": ("⛔", "Failed"),
}
SEVERITIES = {"minor": ("▁", "Minor"), "major": ("▃", "Major"), "critical": ("▇", "Critical")}
STATUSES = {
    "reported": ("○", "Reported"),
    "investigating": ("◔", "Investigating"),
    "fixing": ("◑", "Fixing"),
    "resolved": ("●", "Resolved"),
}


def _badge(kind: str, value: str, known: dict[str, tuple[str, str]]) -> SafeString:
    symbol, label = known.get(value, ("", value or "none"))
    return format_html(
        '<span class="badge {}-{}"><span aria-hidden="true">{}</span> {}</span>', kind, value, symbol, label
    )


@register.simple_tag
def outcome_badge(outcome: str) -> SafeString:
    return _badge("outcome", outcome, OUTCOMES)


@register.simple_tag
def outcome_count(outcome: str, count: int) -> SafeString:
    """How many results had an outcome, as a badge: "✓ 3 Pass"."""
    symbol, label = OUTCOMES.get(outcome, ("", outcome))
    return format_html(
        '<span class="badge outcome-{}"><span aria-hidden="true">{}</span> {} {}</span>',
        outcome,
        symbol,
        count,
        label,
    )


@register.simple_tag
def scan_state_badge(state: str) -> SafeString:
    return _badge("scan", state, SCAN_STATES)


@register.simple_tag
def severity_badge(severity: str) -> SafeString:
    return _badge("severity", severity, SEVERITIES)


@register.simple_tag
def status_badge(status: str) -> SafeString:
    return _badge("status", status, STATUSES)


# Every moment on a page is written one way, ISO-like and to the minute in the reader's zone
# ("2026-12-07 14:03"); the title of its <time> gives it to the second with the zone's abbreviation
# ("2026-12-07 14:03:22 CET"). The shapes of {% when %} are parts of that title: to the minute (the
# default), to the second, the time of day alone (to the minute or second), the day alone. "ago" is
# relative ("3 h ago").
MOMENT_FORMATS = {
    "minutes": slice(0, 16),
    "seconds": slice(0, 19),
    "clock": slice(11, 16),
    "clock_seconds": slice(11, 19),
    "date": slice(0, 10),
}
AGO = "ago"
# Where {% when %} keeps the render's "now", in the reader's zone: reading the active zone costs 2.6 µs
# (a context-local lookup), more than the rest of the tag, so it is read once per template rendered.
_NOW = "quell.now"


def now_here(context: Context | None = None) -> datetime:
    """The current moment in the reader's (active) zone, read once per template render."""
    if context is None:
        return timezone.localtime()
    now = context.render_context.get(_NOW)
    if now is None:
        now = context.render_context[_NOW] = timezone.localtime()
    assert isinstance(now, datetime)
    return now


def zone_abbreviation(local: datetime) -> str:
    """The zone's abbreviation at that moment ("CET", "EDT", "UTC"), or its offset where the zone has
    none ("UTC+05:45" for Asia/Kathmandu, whose abbreviation is "+0545")."""
    name = local.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = int((local.utcoffset() or timedelta()).total_seconds()) // 60
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return f"UTC{sign}{hours:02}:{minutes:02}"


def exact(local: datetime) -> str:
    """A local moment to the second, with its zone: "2026-12-07 14:03:22 CET". The %Y of strftime
    does not pad a year to four digits, and f-strings are faster."""
    return (
        f"{local.year:04}-{local.month:02}-{local.day:02} {local.hour:02}:{local.minute:02}:{local.second:02}"
        f" {zone_abbreviation(local)}"
    )


def ago(local: datetime, now: datetime) -> str | None:
    """How long before `now` a moment was, as people say it: "just now" (within a minute either way),
    "5 min ago", "3 h ago", then by days in the reader's calendar, "yesterday", "4 d ago"; "in 5 min"
    and "in 3 h" ahead. None from a week back or a day ahead: the moment itself says more.

    `local` and `now` are in the same zone, so their dates are the reader's days. quell.js repeats
    these rules each minute (agoText) so an open page stays true: change both together.
    """
    # Not now - local: between two moments of one zone Python subtracts wall clocks, an hour off
    # across a clock change.
    seconds = now.timestamp() - local.timestamp()
    if -60 < seconds < 60:
        return "just now"
    if seconds < 0:
        ahead = -seconds
        if ahead < 3600:
            return f"in {int(ahead // 60)} min"
        return f"in {int(ahead // 3600)} h" if ahead < 86400 else None
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    days = (now.date() - local.date()).days
    # The day the clocks go back has 25 hours: 24 h back may still be today.
    if seconds < 86400 or days < 1:
        return f"{int(seconds // 3600)} h ago"
    if days == 1:
        return "yesterday"
    return f"{days} d ago" if days < 7 else None


def moment_html(moment: datetime | None, shape: str, now: datetime) -> SafeString:
    """The <time> element for a moment (see `when`), given the current moment in the reader's zone."""
    if moment is None:
        return mark_safe('<time datetime=""></time>')
    zone = now.tzinfo
    local = moment.astimezone(zone) if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    title = exact(local)
    if shape == AGO:
        text = ago(local, now) or title[:16]
        # Digits, letters, " ", "-", ":", "+", "." and "T" only (zone abbreviations are letters, or
        # an offset zone_abbreviation writes): nothing to escape.
        return mark_safe(f'<time datetime="{local.isoformat()}" title="{title}" data-ago>{text}</time>')  # noqa: S308
    text = title[MOMENT_FORMATS[shape]]
    return mark_safe(f'<time datetime="{local.isoformat()}" title="{title}">{text}</time>')  # noqa: S308


@register.simple_tag(takes_context=True)
def when(context: Context, moment: datetime | None, shape: str = "minutes") -> SafeString:
    """A <time> element: the instant in ISO 8601 for machines, the reader's local time for people,
    the exact local time with the zone on hover (title).

    `shape` is one of MOMENT_FORMATS, or "ago" where recency matters (list rows, timelines): "3 h ago"
    for the past week, marked data-ago for quell.js to keep true while the page stays open.

    One tag instead of Django's `date` filter twice: that filter took 17 µs a call, 3.4 of the
    11 ms it took to render a page of 50 incidents.
    """
    return moment_html(moment, shape, now_here(context))


@register.filter
def moment(value: datetime | None) -> str:
    """A moment as plain text in the reader's zone ("2026-12-07 14:03"), where no element may go
    (a page's <title>); "" for none."""
    if value is None:
        return ""
    return exact(timezone.localtime(value))[:16]


def span(seconds: float, smallest: str = "min") -> str:
    """A length of time in its two largest units: "2 d 4 h", "5 h", "35 min", "3 min 5 s".

    Down to minutes (incident ages) or seconds (how long a scan ran); under the smallest unit it is
    "< 1 min" or "0 s".
    """
    whole = int(max(seconds, 0))
    units = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    units = units[: [name for name, _ in units].index(smallest) + 1]
    for i, (name, size) in enumerate(units):
        if whole >= size:
            first, rest = divmod(whole, size)
            if i + 1 < len(units) and rest >= units[i + 1][1]:
                following, size_after = units[i + 1]
                return f"{first} {name} {rest // size_after} {following}"
            return f"{first} {name}"
    return "0 s" if smallest == "s" else f"< 1 {smallest}"


@register.simple_tag(takes_context=True)
def incident_age(context: Context, incident: Incident) -> SafeString:
    """How long an incident has been open ("open 3 d 4 h"), or took to resolve ("resolved in 5 h").

    An open one's age grows: quell.js recounts it each minute from data-open-since.
    """
    # Digits, units and ISO 8601 only: nothing to escape (format_html was a third of the tag's time).
    if incident.resolved_at is not None:
        took = span(incident.resolved_at.timestamp() - incident.created_at.timestamp())
        return mark_safe(f'<span class="age">resolved in {took}</span>')  # noqa: S308
    now = now_here(context)
    since = incident.created_at.astimezone(now.tzinfo).isoformat()
    age = span(now.timestamp() - incident.created_at.timestamp())
    return mark_safe(f'<span class="age" data-open-since="{since}">open {age}</span>')  # noqa: S308


@register.filter
def reporter_name(incident: Incident) -> str:
    """Who opened an incident: its reporter, or for one an incident rule opened, Quell with the rule
    ("Quell, rule 'Critical tables'"; plain "Quell" once the rule is deleted).

    The rule must be loaded with the incident (incidents.details), or this reads it.
    """
    name = incident.reporter.display_name
    rule = incident.rule if incident.rule_id is not None else None
    return f"{name}, rule '{rule.name}'" if rule is not None else name


@register.simple_tag(takes_context=True)
def passing_badge(context: Context, incident: Incident) -> SafeString:
    """A badge "All checks passing since <time>" for an open incident whose linked checks all pass
    again (Incident.passing_since, kept by the rules); nothing otherwise."""
    if incident.passing_since is None or not incident.is_open:
        return mark_safe("")
    moment = moment_html(incident.passing_since, "minutes", now_here(context))
    return format_html(
        '<span class="badge outcome-pass passing"><span aria-hidden="true">✓</span> All checks passing since {}</span>',
        moment,
    )


@register.simple_tag(takes_context=True)
def reader_zone(context: Context) -> SafeString:
    """Names the zone the page's times are in, once per page: "Times in Europe/Berlin (CET)".

    Carries the zone and the server's "now" for quell.js, which recounts relative times by the
    reader's calendar and corrects for a browser clock that is off.
    """
    now = now_here(context)
    name = timezone.get_current_timezone_name()
    abbreviation = zone_abbreviation(now)
    label = name if abbreviation == name else f"{name} ({abbreviation})"
    return format_html(
        '<span class="reader-zone" data-time-zone="{}" data-now="{}">Times in {}</span>',
        name,
        now.isoformat(),
        label,
    )


# How much of a mute's reason a row of a list shows (all of it on hover).
MUTE_REASON_SHOWN = 80


@register.simple_tag(takes_context=True)
def muted_badge(context: Context, mute: Mute | None, of: str = "check", brief: bool = True) -> SafeString:
    """A muted check's or dataset's "Muted until <time> — reason"; nothing for `mute` None.

    `of` is what the badge stands beside: a check muted with its whole dataset reads "Dataset muted
    until". `brief`, in a row of a list: the reason on one line, cut to MUTE_REASON_SHOWN characters.
    """
    if mute is None:
        return mark_safe("")
    what = "Dataset muted" if of == "check" and mute.check_ref_id is None else "Muted"
    until = moment_html(mute.until, "minutes", now_here(context))
    reason = " ".join(mute.reason.split()) if brief else mute.reason
    if brief and len(reason) > MUTE_REASON_SHOWN:
        reason = reason[: MUTE_REASON_SHOWN - 1].rstrip() + "…"
    said = ""
    if reason:
        said = format_html(' <span class="mute-reason" title="{}">— {}</span>', mute.reason, reason)
    return format_html(
        '<span class="mute-note"><span class="badge mute"><span aria-hidden="true">⊘</span> {} until {}</span>'
        "{}</span>",
        what,
        until,
        said,
    )


@register.filter
def reason_label(value: str | None) -> str:
    """A resolution reason as people read it ("False positive"); "not recorded" for none."""
    from quell.incidents.models import ResolutionReason

    if value in ResolutionReason.values:
        return str(ResolutionReason(value).label)
    return str(value) if value else "not recorded"


@register.filter
def get_item(mapping: dict[object, object], key: object) -> object:
    return mapping.get(key)


SECTIONS = {
    "home": "home",
    "datasets": "datasets",
    "dataset": "datasets",
    "dataset_incidents": "datasets",
    "dataset_responsibilities": "datasets",
    "dataset_scans": "datasets",
    "data_source": "datasets",
    "data_source_scans": "datasets",
    "scan": "datasets",
    "checks": "checks",
    "check": "checks",
    "check_result": "checks",
    "create_incident": "checks",
    "mute_check": "checks",
    "unmute_check": "checks",
    "mute_dataset": "datasets",
    "unmute_dataset": "datasets",
    "profile": "profile",
    "create_api_key": "profile",
}


@register.filter
def section(url_name: str | None) -> str:
    """Which top navigation entry a page belongs to, by its URL name."""
    name = url_name or ""
    if name.startswith("settings"):
        return "settings"
    if name in SECTIONS:
        return SECTIONS[name]
    return "incidents" if "incident" in name or "results" in name or name == "comment" else ""


@register.filter
def num(value: float | None, missing: str = "—") -> str:
    """A result value as people write it: 46,120 rather than 46120.0, 0.93 rather than 0.9300000001."""
    if value is None:
        return missing
    if abs(value) >= 1e15:
        return f"{value:.4g}"  # 1.7e+308, not a 309-digit number
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


@register.filter
def duration(started: datetime | None, ended: datetime | None) -> str:
    """How long a scan ran, to the second: "42 s", "3 min 5 s", "2 h 1 min"; "—" when unknown."""
    if started is None or ended is None or ended < started:
        return "—"
    return span((ended - started).total_seconds(), smallest="s")
