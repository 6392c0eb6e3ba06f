"""What the incident rules cost a Soda ingest (issue 20), measured side by side with the rules off.

The scene: the 1,000 checks of the harness's Soda scan (bench_soda, 20 tables), 20 enabled incident
rules of varied scope, and 200 open incidents, each covering one of the scan's checks (a fifth
opened by hand, the rest by the rules: prepare). The scan timed is a night of that scan with
190 failures: 150 of the 200 incident checks (folded into their incidents), 40 new failures
(the rules open incidents for those they match), and the other 50 incident checks passing after a
failure (passes recorded; a rule-opened incident whose rule resolves after one pass recovers).

"Rules on" is the 20 rules enabled and the organisation folding results; "rules off" is no enabled
rule and no folding: the same database, the same scan. The two are measured in interleaved rounds
(on, off, off, on, ...), two ways:

- rolled back: every round ingests the same night into the same state, in a transaction rolled
  back after the clock stops. Nothing drifts between rounds; the commit is not in the figure.
- committed: every round is the next night, committed as Soda Core's ingest is. The nights rotate
  which incident checks fail and which other checks newly fail (one night in 20 each, never two
  nights in a row), and after a round the harness puts back, through the incident services as a
  person would and outside the clock, what the rules changed: it resolves (as fixed) the incidents
  they opened and reopens those they resolved as recovered. Every round so starts from the same 200
  open incidents, whichever way the round before it ran.

On PostgreSQL the tables the ingest writes are vacuumed before every round, off the clock: the
rounds write (and roll back) thousands of row versions a minute, which autovacuum would clear in a
real installation, and which, left alone (on a server with autovacuum off, or between its runs),
slowed each round's index scans and updates more than the one before (the open incidents' status
index held 33,681 entries for 934 rows after a run). Both ways get the same.

Each round's wall time and this process's CPU time are kept, with the time spent in the rules
engine and in each of its steps (STEPS); one more rolled-back ingest each way counts the
statements, by step and by kind. Only timings and counts are reported; nothing here asserts how
fast anything must be.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from django.db import connection, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import harness
from quell.accounts import services as account_services
from quell.accounts.models import Organization, User
from quell.automation import engine, reactions
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from quell.incidents import rules as rule_services
from quell.incidents import services as incident_services
from quell.incidents.models import (
    OPEN_STATUSES,
    EventKind,
    Incident,
    IncidentCheck,
    IncidentCheckResult,
    IncidentDataset,
    IncidentRule,
    IncidentTally,
    ResolutionReason,
    Severity,
    Status,
    TimelineEvent,
)
from quell.ingest import soda

RULE_PREFIX = "Bench rule"
INCIDENT_TITLE = "Bench rules:"
TEAMS = ("core", "growth", "finance", "ops")
# Nights before this are left alone; a database the harness already ingested into starts after it.
FIRST_NIGHT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
# Nights 0-2 set the scene (prepare); the rounds ingest this night and the ones after it.
FIRST_TIMED_NIGHT = 3


# --- The scene ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Which checks of the scan are in open incidents, and how many newly fail each night.

    At 1,000 checks: 200 incident checks (the checks 0-19, 100-119, ...: ten per table) and 40 new
    failures a night among the other 800."""

    checks: int = harness.SODA_CHECKS
    # New failures a night; None: one check in 25.
    new_failures_per_night: int | None = None

    @property
    def incident_checks(self) -> list[int]:
        return [c for c in range(self.checks) if (c // harness.SODA_TABLES) % 5 == 0]

    @property
    def other_checks(self) -> list[int]:
        return [c for c in range(self.checks) if (c // harness.SODA_TABLES) % 5 != 0]

    @property
    def new_failures(self) -> int:
        if self.new_failures_per_night is not None:
            return self.new_failures_per_night
        return max(1, self.checks // 25)

    @property
    def by_hand(self) -> list[int]:
        """The incident checks whose incidents the admin opens by hand: every fifth."""
        return self.incident_checks[::5]

    def failing(self, night: int) -> set[int]:
        """The checks that fail on a night. Night 0: none; night 1: those of the incidents opened
        by hand; night 2: every incident check (the rules open the others' incidents); later
        nights: three incident checks in four, a different quarter passing each night (each of them
        failed the night before), and a window of new failures that moves on by its own width each
        night."""
        if night == 0:
            return set()
        if night == 1:
            return set(self.by_hand)
        incident = self.incident_checks
        if night == 2:
            return set(incident)
        failing = {c for j, c in enumerate(incident) if (j + night) % 4 != 0}
        others = self.other_checks
        start = night * self.new_failures
        failing |= {others[(start + i) % len(others)] for i in range(self.new_failures)}
        return failing


def attributes(check: int) -> dict[str, str]:
    """The attributes Soda Core sends with a check (resourceAttributes): a team and a tier."""
    return {"team": TEAMS[check % len(TEAMS)], "tier": "gold" if check % 7 == 0 else "silver"}


def night_scan(shape: Shape, at: dt.datetime, failing: set[int]) -> dict[str, Any]:
    """The harness's 1,000-check Soda scan (the same checks) of one night, with these failures."""
    body = harness.soda_scan(0)
    checks = body["checks"][: shape.checks]
    for c, check in enumerate(checks):
        check["outcome"] = "fail" if c in failing else "pass"
        check["resourceAttributes"] = [{"name": k, "value": v} for k, v in attributes(c).items()]
    moment = at.isoformat()
    body.update(
        definitionName="bench rules nightly",
        checks=checks,
        dataTimestamp=moment,
        scanStartTimestamp=moment,
        scanEndTimestamp=moment,
        hasFailures=bool(failing),
    )
    return body


@dataclass(frozen=True)
class RuleSpec:
    """One of the 20 rules. `tables` are indexes of the scan's tables (bench_table_N)."""

    name: str
    tables: tuple[int, ...] = ()
    # "bench": scoped to the scan's data source; "other": to another one (matches none of its checks).
    data_source: str | None = None
    check_attributes: dict[str, str] = field(default_factory=dict)
    outcomes: tuple[str, ...] = ("fail",)
    consecutive: int = 1
    severity: str = Severity.MAJOR
    with_lead: bool = False
    resolve_after_passes: int | None = None
    reopen_within_days: int | None = None


# The incidents the rules open are titled like the bench's others, so bench/run.py's targets (which
# leave out titles starting "Bench") stay those of loadgen's incidents.
TITLE_TEMPLATE = "Bench rules: {check} failed on {dataset}"

# In the order they are tried. Some scoped to the scan's tables, some to check attributes, some
# organisation-wide with outcomes or a count in a row that the scan does not give; the last match.
RULES = (
    RuleSpec("01 warehouse warnings", tables=(0, 1), outcomes=("warn",)),
    RuleSpec("02 orders, three in a row", tables=(2,), consecutive=3),
    RuleSpec("03 payments", tables=(3,), severity=Severity.CRITICAL, with_lead=True),
    RuleSpec("04 growth tables", tables=(4, 5, 6), check_attributes={"team": "growth"}),
    RuleSpec("05 sessions warn twice", tables=(7,), outcomes=("warn",), consecutive=2),
    RuleSpec("06 events recover", tables=(8, 9), resolve_after_passes=1, reopen_within_days=7),
    RuleSpec("07 gold checks", data_source="bench", check_attributes={"tier": "gold"}),
    RuleSpec("08 nobody's checks", check_attributes={"team": "nobody"}),
    RuleSpec(
        "09 gold finance warnings", outcomes=("warn",), check_attributes={"team": "finance", "tier": "gold"}
    ),
    RuleSpec("10 another source", data_source="other"),
    RuleSpec("11 marts", tables=(10, 11, 12), outcomes=("warn", "fail"), resolve_after_passes=2),
    RuleSpec("12 ops, twice in a row", check_attributes={"team": "ops"}, consecutive=2),
    RuleSpec("13 finance table", tables=(13,), severity=Severity.CRITICAL),
    RuleSpec("14 any warning", outcomes=("warn",)),
    RuleSpec("15 warnings three nights", outcomes=("warn",), consecutive=3),
    RuleSpec("16 bronze checks", check_attributes={"tier": "bronze"}),
    RuleSpec("17 staging recovers", tables=(14, 15, 16), resolve_after_passes=1),
    RuleSpec("18 archive warnings", tables=(17, 18, 19), outcomes=("warn",)),
    RuleSpec(
        "19 core checks", check_attributes={"team": "core"}, resolve_after_passes=1, reopen_within_days=7
    ),
    RuleSpec("20 every failure", severity=Severity.MINOR, resolve_after_passes=3, reopen_within_days=7),
)


@dataclass
class Scene:
    admin: User
    shape: Shape
    rule_ids: list[int]
    first_night: dt.datetime
    # The night the next committed round ingests (the rolled-back rounds all ingest this one).
    night: int
    fold_results_before: bool
    opened_by_rules: int
    opened_by_hand: int

    def at(self, night: int) -> dt.datetime:
        return self.first_night + dt.timedelta(days=night)

    def scan(self, night: int) -> dict[str, Any]:
        return night_scan(self.shape, self.at(night), self.shape.failing(night))


def ingest(body: dict[str, Any], by: User) -> None:
    """What the Soda endpoint does with sodaCoreInsertScanResults, in this process."""
    scan_input = soda.scan_input(soda.parse_scan_results(body), idempotency_key=None, client="bench")
    catalog_ingest.ingest_scan(scan_input, by=by)


def switch(scene: Scene, on: bool) -> None:
    """Rules on: the bench's rules enabled and the organisation folding; off: neither. Through the
    services an admin's settings page uses."""
    for rule_id, enabled in IncidentRule.objects.filter(pk__in=scene.rule_ids).values_list("pk", "enabled"):
        if enabled != on:
            rule_services.update_rule(rule_id, by=scene.admin, enabled=on)
    if Organization.get().fold_results != on:
        account_services.update_organization(by=scene.admin, fold_results=on)


def _bench_checks_open_incidents() -> list[int]:
    return list(
        Incident.objects.filter(
            status__in=OPEN_STATUSES,
            covered_checks__check_ref__dataset__data_source__name=harness.BENCH_DATA_SOURCE,
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _ensure_rules(admin: User) -> list[int]:
    """The 20 rules, made where missing (found by name); left disabled."""
    source = DataSource.objects.get(name=harness.BENCH_DATA_SOURCE)
    other = DataSource.objects.exclude(pk=source.pk).order_by("pk").first()
    tables = dict(
        Dataset.objects.filter(data_source=source, name__startswith="bench_table_").values_list("name", "pk")
    )
    existing = dict(IncidentRule.objects.filter(name__startswith=RULE_PREFIX).values_list("name", "pk"))
    ids = []
    for spec in RULES:
        name = f"{RULE_PREFIX} {spec.name}"
        if name in existing:
            ids.append(existing[name])
            continue
        sources = {"bench": [source.pk], "other": [other.pk] if other else [], None: []}[spec.data_source]
        wanted = dict(spec.check_attributes)
        if spec.data_source == "other" and other is None:
            # No other source to scope it to: an attribute no check has keeps it matching nothing.
            wanted["source"] = "other"
        made = rule_services.create_rule(
            by=admin,
            name=name,
            enabled=False,
            dataset_ids=[tables[f"bench_table_{t}"] for t in spec.tables],
            data_source_ids=sources,
            check_attributes=wanted,
            outcomes=spec.outcomes,
            consecutive=spec.consecutive,
            severity=spec.severity,
            lead_id=admin.pk if spec.with_lead else None,
            resolve_after_passes=spec.resolve_after_passes,
            reopen_within_days=spec.reopen_within_days,
            title_template=TITLE_TEMPLATE,
        )
        ids.append(made.rule.pk)
    return ids


def prepare(admin: User, shape: Shape, say: Callable[[str], None] = lambda _: None) -> Scene:
    """Set the scene (module docstring) on this database, whatever earlier runs left.

    Open incidents of the scan's checks from earlier runs are resolved first; three nights are then
    ingested after the newest one stored: one where every check passes (so the checks exist); one,
    with the rules off, where a fifth of the incident checks fail, for which the admin opens
    incidents by hand; and one where every incident check fails, with the rules on: those opened by
    hand fold, and the rules open incidents for the others (any a rule could not open is opened by
    hand too)."""
    others = IncidentRule.objects.filter(enabled=True).exclude(name__startswith=RULE_PREFIX)
    if others.exists():
        raise RuntimeError(
            f"{others.count()} enabled incident rules are not the bench's: run this on a bench database."
        )
    fold_before = Organization.get().fold_results
    scene = Scene(
        admin=admin,
        shape=shape,
        rule_ids=list(IncidentRule.objects.filter(name__startswith=RULE_PREFIX).values_list("pk", flat=True)),
        first_night=FIRST_NIGHT,
        night=FIRST_TIMED_NIGHT,
        fold_results_before=fold_before,
        opened_by_rules=0,
        opened_by_hand=0,
    )
    switch(scene, False)
    leftovers = _resolve_open_incidents(admin, "Bench: reset before a run of bench/rules.py.")
    if leftovers:
        say(f"  resolved {leftovers} open incidents an earlier run left")
    newest = CheckResult.objects.filter(dataset__data_source__name=harness.BENCH_DATA_SOURCE).aggregate(
        at=Max("data_timestamp")
    )["at"]
    if newest is not None and newest >= FIRST_NIGHT:
        scene.first_night = newest + dt.timedelta(days=1)
    ingest(scene.scan(0), admin)
    scene.rule_ids = _ensure_rules(admin)
    ingest(scene.scan(1), admin)
    scene.opened_by_hand += _open_by_hand(scene, 1)
    switch(scene, True)
    last_incident = Incident.objects.aggregate(last=Max("pk"))["last"] or 0
    ingest(scene.scan(2), admin)
    scene.opened_by_rules = Incident.objects.filter(pk__gt=last_incident).count()
    switch(scene, False)
    scene.opened_by_hand += _open_by_hand(scene, 2)
    return scene


def _open_by_hand(scene: Scene, night: int) -> int:
    """Open an incident, as the admin, for each incident check that failed on the night and no
    open incident covers; how many."""
    covered = IncidentCheck.objects.filter(incident__status__in=OPEN_STATUSES).values("check_ref_id")
    failures = (
        CheckResult.objects.filter(
            dataset__data_source__name=harness.BENCH_DATA_SOURCE,
            check_ref__identity__in=[f"bench-{c:04d}" for c in scene.shape.incident_checks],
            data_timestamp=scene.at(night),
            outcome="fail",
        )
        .exclude(check_ref_id__in=covered)
        .select_related("check_ref", "dataset")
        .order_by("pk")
    )
    opened = 0
    for result in failures:
        incident_services.create_incident(
            by=scene.admin,
            title=f"{INCIDENT_TITLE} {result.check_ref.name} on {result.dataset.name}",
            check_result_ids=[result.pk],
            allow_duplicate=True,
        )
        opened += 1
    return opened


def _resolve_open_incidents(admin: User, note: str) -> int:
    """Resolve, as the admin and fixed, every open incident of the scan's checks; how many."""
    open_ids = _bench_checks_open_incidents()
    for incident_id in open_ids:
        incident_services.update_incident(
            incident_id,
            by=admin,
            status=Status.RESOLVED,
            resolution_reason=ResolutionReason.FIXED,
            resolution_notes=note,
        )
    return len(open_ids)


def finish(scene: Scene) -> None:
    """Leave the database as bench/run.py expects it: the rules disabled, the folding setting as it
    was, and no open incident of the scan's checks (its own Soda ingest would fold into them)."""
    switch(scene, False)
    _resolve_open_incidents(scene.admin, "Bench: resolved at the end of a run of bench/rules.py.")
    if Organization.get().fold_results != scene.fold_results_before:
        account_services.update_organization(by=scene.admin, fold_results=scene.fold_results_before)


# --- Measuring ------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One way of measuring, rules on and off: the times of the timed rounds, in ms."""

    on_ms: list[float] = field(default_factory=list)
    off_ms: list[float] = field(default_factory=list)
    # This process's CPU time in the same rounds: steadier than wall time on a busy machine, and on
    # SQLite (in this process) all of it; PostgreSQL's own work is not in it.
    on_cpu_ms: list[float] = field(default_factory=list)
    off_cpu_ms: list[float] = field(default_factory=list)
    # The time of the rules engine and of each of its steps (STEPS) in the same rounds, in ms.
    on_steps_ms: dict[str, list[float]] = field(default_factory=dict)
    off_steps_ms: dict[str, list[float]] = field(default_factory=dict)

    def of(self, on: bool) -> list[float]:
        return self.on_ms if on else self.off_ms

    def cpu(self, on: bool) -> list[float]:
        return self.on_cpu_ms if on else self.off_cpu_ms

    def steps(self, on: bool) -> dict[str, list[float]]:
        return self.on_steps_ms if on else self.off_steps_ms


def trimmed_mean(values: Sequence[float]) -> float:
    """The mean without the fastest and slowest tenth (at least one each from five values on)."""
    ordered = sorted(values)
    cut = max(1, len(ordered) // 10) if len(ordered) >= 5 else 0
    kept = ordered[cut : len(ordered) - cut]
    return statistics.fmean(kept)


def _order(rounds: int) -> Iterator[bool]:
    """on, off, off, on, on, off, ...: each mode as often first as second."""
    for n in range(rounds):
        yield from (True, False) if n % 2 == 0 else (False, True)


@dataclass
class RoundMarks:
    """Where the database stood before a round: what the round added is after these."""

    incident: int
    event: int
    started: dt.datetime

    @classmethod
    def now(cls) -> RoundMarks:
        return cls(
            incident=Incident.objects.aggregate(last=Max("pk"))["last"] or 0,
            event=TimelineEvent.objects.aggregate(last=Max("pk"))["last"] or 0,
            started=timezone.now(),
        )


def effects(marks: RoundMarks) -> dict[str, int]:
    """What a round did to the incidents (read before it is rolled back or put back)."""
    events = TimelineEvent.objects.filter(pk__gt=marks.event)
    attached = events.filter(kind=EventKind.RESULT_ATTACHED, incident_id__lte=marks.incident)
    return {
        "resultsFolded": attached.count(),
        "incidentsFoldedInto": attached.values("incident_id").distinct().count(),
        "incidentsOpened": Incident.objects.filter(pk__gt=marks.incident).count(),
        "passesRecorded": events.filter(kind=EventKind.CHECK_PASSED).count(),
        "incidentsRecovered": Incident.objects.filter(
            pk__lte=marks.incident,
            status=Status.RESOLVED,
            resolution_reason=ResolutionReason.RECOVERED,
            resolved_at__gte=marks.started,
        ).count(),
        "incidentsReopened": events.filter(kind=EventKind.REOPENED).count(),
        "openIncidentsOfTheChecks": len(_bench_checks_open_incidents()),
    }


def put_back(scene: Scene, marks: RoundMarks) -> None:
    """Undo, as the admin, what the rules changed in a committed round: resolve the incidents they
    opened, reopen those they resolved as recovered."""
    opened = Incident.objects.filter(pk__gt=marks.incident, status__in=OPEN_STATUSES).order_by("pk")
    for incident_id in opened.values_list("pk", flat=True):
        incident_services.update_incident(
            incident_id,
            by=scene.admin,
            status=Status.RESOLVED,
            resolution_reason=ResolutionReason.FIXED,
            resolution_notes="Bench: put back after a round of bench/rules.py.",
        )
    recovered = Incident.objects.filter(
        pk__lte=marks.incident,
        status=Status.RESOLVED,
        resolution_reason=ResolutionReason.RECOVERED,
        resolved_at__gte=marks.started,
    ).order_by("pk")
    for incident_id in recovered.values_list("pk", flat=True):
        incident_services.update_incident(incident_id, by=scene.admin, status=Status.REPORTED)


def _timed_ingest(scene: Scene, body: dict[str, Any]) -> tuple[float, float]:
    """Wall and CPU ms of one ingest."""
    started, cpu = time.perf_counter(), time.process_time()
    ingest(body, scene.admin)
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def _rolled_back_round(scene: Scene, body: dict[str, Any]) -> tuple[float, float]:
    with transaction.atomic():
        took = _timed_ingest(scene, body)
        transaction.set_rollback(True)
    return took


def _committed_round(scene: Scene) -> tuple[float, float]:
    body = scene.scan(scene.night)
    marks = RoundMarks.now()
    took = _timed_ingest(scene, body)
    scene.night += 1
    put_back(scene, marks)
    return took


def measure(
    scene: Scene,
    rounds: int,
    warmup: int,
    *,
    committed: bool,
    progress: Callable[[str], None] = lambda _: None,
) -> Figure:
    """`rounds` timed ingests each way, interleaved, after `warmup` untimed ones each way."""
    figure = Figure()
    body = scene.scan(scene.night)
    vacuum(analyze=True)
    for n, on in enumerate([*_order(warmup), *_order(rounds)]):
        switch(scene, on)
        vacuum()
        with _watching(_step_targets()) as watched:
            ms, cpu_ms = _committed_round(scene) if committed else _rolled_back_round(scene, body)
        if n >= 2 * warmup:
            figure.of(on).append(ms)
            figure.cpu(on).append(cpu_ms)
            for name in _step_targets():
                seconds = watched[name].seconds if name in watched else 0.0
                figure.steps(on).setdefault(name, []).append(seconds * 1000)
    progress(f"  {'committed' if committed else 'rolled back'}: {2 * rounds} rounds timed")
    return figure


# The tables an ingest with the rules writes to (module docstring: vacuumed before every round).
WRITTEN = (
    Incident,
    IncidentCheck,
    IncidentCheckResult,
    IncidentDataset,
    IncidentTally,
    TimelineEvent,
    CheckResult,
    Check,
    Dataset,
    Scan,
)


def vacuum(*, analyze: bool = False) -> None:
    """VACUUM (and ANALYZE) the tables an ingest writes, on PostgreSQL (see the module docstring)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return  # (in a transaction: a test's run of the harness, where there is nothing to clear)
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in WRITTEN)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'(ANALYZE) ' if analyze else ''}{tables}")


# --- Statements -----------------------------------------------------------------------------------


@dataclass
class Statements:
    """The statements of one ingest: in all, of the rules engine (apply_rules), of each of its
    steps, and of the engine by kind; and what the ingest did."""

    ingest: int
    engine: int
    engine_by_step: dict[str, int]
    engine_by_kind: dict[str, int]
    effects: dict[str, int]


_VERB_TABLE = re.compile(
    r"^\s*(?P<verb>SELECT|INSERT|UPDATE|DELETE|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b"
    r'(?:.*?\b(?:FROM|INTO)\s+"?(?P<table>\w+))?',
    re.IGNORECASE | re.DOTALL,
)


def kind_of(sql: str) -> str:
    """A statement's verb and first table: `SELECT incidents_incident`, `SAVEPOINT`."""
    sql = re.sub(r"^\d+ times: ", "", sql.lstrip())
    match = _VERB_TABLE.match(sql)
    if match is None:
        return sql.split(None, 1)[0].upper() if sql.strip() else "?"
    verb = match.group("verb").upper()
    if verb == "UPDATE":
        table = re.match(r'\s*UPDATE\s+"?(\w+)', sql, re.IGNORECASE)
        return f"UPDATE {table.group(1)}" if table else "UPDATE"
    return f"{verb} {match.group('table')}" if match.group("table") else verb


# The engine's steps (quell.automation.engine's module docstring), counted apart where the engine
# still has them by these names; "recovering" is part of "passes".
STEPS = {
    "folding": "_fold",
    "opening and reopening": "_open_or_reopen",
    "passes": "_note_passes",
    "recovering": "_recover",
}


def _step_targets() -> dict[str, tuple[Any, str]]:
    return {"rules engine": (reactions, "apply_rules")} | {
        step: (engine, function) for step, function in STEPS.items()
    }


@dataclass
class Watched:
    """What happened inside one watched function: its seconds, and the statements it issued (as
    index ranges into the capture, when there is one)."""

    seconds: float = 0.0
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def statements(self) -> int:
        return sum(end - start for start, end in self.spans)


@contextmanager
def _watching(
    targets: dict[str, tuple[Any, str]], captured: CaptureQueriesContext | None = None
) -> Iterator[dict[str, Watched]]:
    """Time each of these functions (name -> (module, attribute)) and, with a capture, note which of
    its statements each issued. The wrappers cost a few microseconds a call; a function the engine
    no longer has is left out."""
    watched: dict[str, Watched] = {}

    def wrapped(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            entry = watched.setdefault(name, Watched())
            first = len(captured.captured_queries) if captured is not None else 0
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                entry.seconds += time.perf_counter() - started
                if captured is not None:
                    entry.spans.append((first, len(captured.captured_queries)))

        return call

    with ExitStack() as stack:
        for name, (module, attribute) in targets.items():
            if hasattr(module, attribute):
                stack.enter_context(
                    mock.patch.object(module, attribute, wrapped(name, getattr(module, attribute)))
                )
        yield watched


def count_statements(scene: Scene, on: bool) -> Statements:
    """The rolled-back round's ingest once more, its statements captured, and what it did."""
    switch(scene, on)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        marks = RoundMarks.now()
        before = len(captured.captured_queries)
        with _watching(_step_targets(), captured) as watched:
            ingest(scene.scan(scene.night), scene.admin)
        total = len(captured.captured_queries) - before
        did = effects(marks)
        transaction.set_rollback(True)
    engine_run = watched.get("rules engine", Watched())
    engine_sql = [q["sql"] for start, end in engine_run.spans for q in captured.captured_queries[start:end]]
    steps = {step: watched[step].statements if step in watched else 0 for step in STEPS}
    steps["the rest (mutes, locks, coverage, rules)"] = len(engine_sql) - sum(
        n for step, n in steps.items() if step != "recovering"
    )
    return Statements(
        ingest=total,
        engine=len(engine_sql),
        engine_by_step=steps,
        engine_by_kind=dict(Counter(kind_of(sql) for sql in engine_sql).most_common()),
        effects=did,
    )


# --- Running and reporting ------------------------------------------------------------------------


@dataclass
class Report:
    database: str
    version: str
    shape: Shape
    rules: int
    opened_by_rules: int
    opened_by_hand: int
    rounds: int
    figures: dict[str, Figure]
    statements: dict[str, Statements]
    incidents: int = 0
    # Open incidents of the scan's checks after the committed rounds (before the bench resolved them).
    open_after_rounds: int = 0
    # The machine's 1-minute load average before and after the timed rounds.
    load_average: tuple[float, float] = (0.0, 0.0)

    def to_json(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, Any]:
            return {
                "median_ms": statistics.median(values),
                "trimmed_mean_ms": trimmed_mean(values),
                "samples_ms": values,
            }

        return {
            "database": self.database,
            "version": self.version,
            "incidents": self.incidents,
            "checks": self.shape.checks,
            "incidentChecks": len(self.shape.incident_checks),
            "newFailuresPerNight": self.shape.new_failures,
            "rules": self.rules,
            "openedByRules": self.opened_by_rules,
            "openedByHand": self.opened_by_hand,
            "openIncidentsAfterRounds": self.open_after_rounds,
            "loadAverage": list(self.load_average),
            "rounds": self.rounds,
            "figures": {
                name: {
                    "on": stats(figure.on_ms),
                    "off": stats(figure.off_ms),
                    "ratio_of_medians": ratio(figure, statistics.median),
                    "ratio_of_trimmed_means": ratio(figure, trimmed_mean),
                    "cpu_on": stats(figure.on_cpu_ms),
                    "cpu_off": stats(figure.off_cpu_ms),
                    "cpu_ratio_of_medians": statistics.median(figure.on_cpu_ms)
                    / statistics.median(figure.off_cpu_ms),
                    "steps_median_ms": {
                        "on": {step: statistics.median(ms) for step, ms in figure.on_steps_ms.items()},
                        "off": {step: statistics.median(ms) for step, ms in figure.off_steps_ms.items()},
                    },
                }
                for name, figure in self.figures.items()
            },
            "statements": {
                mode: {
                    "ingest": s.ingest,
                    "engine": s.engine,
                    "engineByStep": s.engine_by_step,
                    "engineByKind": s.engine_by_kind,
                    "effects": s.effects,
                }
                for mode, s in self.statements.items()
            },
        }


def ratio(figure: Figure, average: Callable[[list[float]], float]) -> float:
    return average(figure.on_ms) / average(figure.off_ms)


def run(
    admin: User,
    *,
    shape: Shape | None = None,
    rounds: int = 15,
    warmup: int = 2,
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    """Set the scene, count the statements each way, then time both ways (module docstring)."""
    shape = shape or Shape()
    progress("Setting the scene")
    scene = prepare(admin, shape, progress)
    # As the server does before it forks its workers (quell/web/gunicorn_conf.py, pre_fork): what
    # is loaded by now (Django, Quell, the scene) goes into the collector's permanent generation, so
    # a full collection set off by an ingest's allocations walks the ingest's objects, not all of
    # this process's. Without it, such collections added 10-15 ms at random to the rounds of
    # whichever way allocates more.
    gc.collect()
    gc.freeze()
    try:
        progress("Counting statements")
        statements = {mode: count_statements(scene, mode == "on") for mode in ("on", "off")}
        load_before = os.getloadavg()[0]
        figures = {
            "rolled back": measure(scene, rounds, warmup, committed=False, progress=progress),
            "committed": measure(scene, rounds, warmup, committed=True, progress=progress),
        }
        # The steady state the committed rounds keep (module docstring): as many as before them.
        open_after = len(_bench_checks_open_incidents())
        load_after = os.getloadavg()[0]
    finally:
        gc.unfreeze()
        finish(scene)
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
        version = str(cursor.fetchone()[0])
    return Report(
        database=connection.vendor,
        version=version,
        shape=shape,
        rules=len(scene.rule_ids),
        opened_by_rules=scene.opened_by_rules,
        opened_by_hand=scene.opened_by_hand,
        rounds=rounds,
        figures=figures,
        statements=statements,
        incidents=Incident.objects.count(),
        open_after_rounds=open_after,
        load_average=(load_before, load_after),
    )


def _step_median(figure: Figure, on: bool, step: str) -> float:
    """The median of a step's time over the rounds; "ingest": of the round less the engine."""
    steps = figure.steps(on)
    if step == "ingest":
        engine_ms = steps.get("rules engine", [0.0] * len(figure.of(on)))
        return statistics.median(total - e for total, e in zip(figure.of(on), engine_ms, strict=True))
    return statistics.median(steps.get(step, [0.0]))


def markdown(report: Report) -> str:
    shape = report.shape
    lines = [
        f"{report.database} {report.version}, {report.incidents:,} incidents in the database; a scan of "
        f"{shape.checks:,} checks, {report.rules} rules, {len(shape.incident_checks)} open incidents "
        f"({report.opened_by_rules} opened by the rules, {report.opened_by_hand} by hand), "
        f"{shape.new_failures} new failures a night; "
        f"{report.rounds} rounds each way, interleaved; {report.open_after_rounds} open after the "
        f"committed rounds; load average {report.load_average[0]:.1f} before the rounds, "
        f"{report.load_average[1]:.1f} after",
        "",
        "| Rounds | Rules on ms (median / trimmed mean) | Rules off ms | On ÷ off (medians) "
        "| On ÷ off (trimmed means) | CPU ms on / off (medians) | On ÷ off (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figure in report.figures.items():
        cpu_on, cpu_off = statistics.median(figure.on_cpu_ms), statistics.median(figure.off_cpu_ms)
        lines.append(
            f"| {name} | {statistics.median(figure.on_ms):.1f} / {trimmed_mean(figure.on_ms):.1f} "
            f"| {statistics.median(figure.off_ms):.1f} / {trimmed_mean(figure.off_ms):.1f} "
            f"| {ratio(figure, statistics.median):.2f} | {ratio(figure, trimmed_mean):.2f} "
            f"| {cpu_on:.1f} / {cpu_off:.1f} | {cpu_on / cpu_off:.2f} |"
        )
    lines += [
        "",
        "| Where the time goes, ms (medians) | "
        + " | ".join(f"{name}: on | {name}: off" for name in report.figures)
        + " |",
        "|---|" + "---:|" * (2 * len(report.figures)),
    ]
    for step, label in [("ingest", "the rest of the ingest"), ("rules engine", "the rules engine")] + [
        (step, f"… {step}") for step in STEPS
    ]:
        cells = [
            f"{_step_median(figure, on, step):.1f}"
            for figure in report.figures.values()
            for on in (True, False)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    on, off = report.statements["on"], report.statements["off"]
    lines += [
        "",
        "| Statements | Rules on | Rules off |",
        "|---|---:|---:|",
        f"| the whole ingest | {on.ingest} | {off.ingest} |",
        f"| of them the rules engine's | {on.engine} | {off.engine} |",
    ]
    for step in on.engine_by_step:
        lines.append(f"| … {step} | {on.engine_by_step[step]} | {off.engine_by_step.get(step, 0)} |")
    lines += ["", "| The engine's statements by kind | Rules on | Rules off |", "|---|---:|---:|"]
    kinds = sorted(
        set(on.engine_by_kind) | set(off.engine_by_kind), key=lambda k: -on.engine_by_kind.get(k, 0)
    )
    for kind in kinds:
        lines.append(f"| {kind} | {on.engine_by_kind.get(kind, 0)} | {off.engine_by_kind.get(kind, 0)} |")
    lines += ["", "| What the scan did | Rules on | Rules off |", "|---|---:|---:|"]
    for key in on.effects:
        lines.append(f"| {key} | {on.effects[key]} | {off.effects[key]} |")
    return "\n".join(lines) + "\n"
