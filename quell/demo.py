"""A demo organisation, "Acme Data", for trying Quell out: people, datasets, four weeks of scans, incidents.

Everything goes through the service functions the API and the web UI call, so the demo holds exactly
what real use would. The one exception is time: services stamp what they write with the current time,
so a last pass moves the timestamps of scans, results and incidents back to when the story says they
happened. Values come from a seeded random generator: the same `now` gives the same demo.

It refuses to run on a database that already holds datasets or incidents, so demo data never mixes
into a real installation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from quell.accounts.models import DatasetRole, GlobalRole, User
from quell.accounts.services import create_user, everyone_group, update_organization
from quell.catalog import services as catalog
from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentCheckResult, Severity, Status, TimelineEvent

ORGANISATION_NAME = "Acme Data"
DEMO_PASSWORD = "quell-demo"
DAYS = 28
PRIVATE_DATASET = ("snowflake_prod", "payments")

# When each data source's daily scan runs (UTC).
SCAN_HOURS = {"postgres_app": 4, "snowflake_prod": 5, "bigquery_marketing": 6}
SOURCE_TYPES = {"postgres_app": "postgres", "snowflake_prod": "snowflake", "bigquery_marketing": "bigquery"}
# Story events happen at most this long after the day's last scan, and "today" is chosen so that
# this moment has passed: nothing in the demo lies in the future.
_LATEST_EVENT_HOUR = 8


class DemoRefused(Exception):
    """The database is not empty enough for the demo."""


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class DemoSummary:
    organisation: str
    password: str
    logins: list[DemoLogin]
    private_dataset: str
    data_sources: int
    datasets: int
    checks: int
    results: int
    incidents: int
    seconds: float

    def login_lines(self) -> list[str]:
        width = max(len(login.email) for login in self.logins)
        lines = [f"  {login.email:<{width}}  {login.name}: {login.role}" for login in self.logins]
        return [*lines, f"Every demo account's password is {self.password!r}."]


def load_demo(now: datetime | None = None) -> DemoSummary:
    """Build the demo organisation in an empty database; raise DemoRefused when it is not empty."""
    started = time.monotonic()
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        now = timezone.make_aware(now, UTC)
    with transaction.atomic():
        _refuse_unless_empty()
        builder = _Builder(now)
        builder.people()
        builder.scans()
        builder.responsibilities()
        builder.incidents()
        builder.backdate()
    return DemoSummary(
        organisation=ORGANISATION_NAME,
        password=DEMO_PASSWORD,
        logins=[DemoLogin(email, name, role) for _, email, name, _, role in PEOPLE],
        private_dataset="/".join(PRIVATE_DATASET),
        data_sources=len(SCAN_HOURS),
        datasets=len(DATASETS),
        checks=sum(len(spec.checks) for spec in DATASETS),
        results=len(builder.results),
        incidents=Incident.objects.count(),
        seconds=time.monotonic() - started,
    )


def _refuse_unless_empty() -> None:
    found = [
        f"{count} {what}"
        for what, count in (
            ("datasets", Dataset.objects.count()),
            ("incidents", Incident.objects.count()),
        )
        if count
    ]
    if found:
        raise DemoRefused(
            f"The database already holds {' and '.join(found)}. The demo only loads into an empty "
            "installation, so that it never mixes with real data: point QUELL_DATA_DIR (or "
            "QUELL_DATABASE_URL) at a new database to try it."
        )
    taken = sorted(
        User.objects.filter(email__in=[email for _, email, *_ in PEOPLE]).values_list("email", flat=True)
    )
    if taken:
        raise DemoRefused(f"The database already has users the demo would create: {', '.join(taken)}.")


# --- People ---------------------------------------------------------------------------------------

# (key, email, name, global role, what they may do)
PEOPLE: list[tuple[str, str, str, str, str]] = [
    ("admin", "admin@quell.example", "Ada Okafor", GlobalRole.ADMIN, "admin, sees and manages everything"),
    ("manager", "marco@quell.example", "Marco Rossi", GlobalRole.USER, "Manager of every dataset"),
    (
        "editor",
        "elena@quell.example",
        "Elena Petrova",
        GlobalRole.USER,
        "Editor of the snowflake_prod datasets",
    ),
    (
        "editor2",
        "sam@quell.example",
        "Sam Kim",
        GlobalRole.USER,
        "Editor of the postgres_app and bigquery_marketing datasets",
    ),
    (
        "viewer",
        "vera@quell.example",
        "Vera Jansen",
        GlobalRole.USER,
        "Viewer of every dataset, including the private snowflake_prod/payments",
    ),
    (
        "outsider",
        "oscar@quell.example",
        "Oscar Nilsson",
        GlobalRole.USER,
        "Viewer, but cannot see the private snowflake_prod/payments",
    ),
]


# --- Datasets and checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Day:
    days_ago: int
    at: datetime
    rows: int


# A check's behaviour: (day, random generator) -> (outcome, value, diagnostics).
_Behaviour = Callable[[_Day, random.Random], tuple[str, float | None, dict[str, Any]]]


@dataclass(frozen=True)
class _CheckSpec:
    name: str
    check_type: str
    column: str
    dimension: str
    behaviour: _Behaviour
    thresholds: str = ""  # the YAML under the check, when it has warn/fail levels


@dataclass(frozen=True)
class _Volume:
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
class _DatasetSpec:
    source: str
    name: str
    volume: _Volume
    checks: list[_CheckSpec]


def _hours(hours: float) -> str:
    days, minutes = divmod(round(hours * 60), 24 * 60)
    hrs, minutes = divmod(minutes, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hrs, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


def _row_count() -> _CheckSpec:
    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        return ("pass" if day.rows > 0 else "fail"), float(day.rows), {"value": day.rows}

    return _CheckSpec("row_count > 0", "row_count", "", "Completeness", behaviour)


def _must_be_zero(metric: str, column: str, dimension: str, bad: dict[int, int]) -> _CheckSpec:
    """missing_count(x) = 0, duplicate_count(x) = 0, ...: fails on the days in `bad`."""

    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        value = bad.get(day.days_ago, 0)
        diagnostics: dict[str, Any] = {"value": value}
        if value:
            diagnostics["failedRowsCount"] = value
        return ("fail" if value else "pass"), float(value), diagnostics

    return _CheckSpec(f"{metric}({column}) = 0", metric, column, dimension, behaviour)


def _levels(
    name: str,
    metric: str,
    column: str,
    dimension: str,
    *,
    usual: tuple[float, float],
    warn: float,
    fail: float,
    unit: str,
    special: dict[int, float] | None = None,
    mondays: float | None = None,
) -> _CheckSpec:
    """A metric with warn and fail levels (freshness in hours, percentages); higher is worse."""
    special = special or {}

    def show(value: float) -> str:
        return _hours(value) if unit == "h" else f"{value:g}{unit}"

    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
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
    return _CheckSpec(name, metric, column, dimension, behaviour, thresholds)


def _freshness(column: str, limit: str, **kwargs: Any) -> _CheckSpec:
    return _levels(f"freshness({column}) < {limit}", "freshness", column, "Timeliness", unit="h", **kwargs)


def _percent(metric: str, column: str, limit: float, dimension: str, **kwargs: Any) -> _CheckSpec:
    return _levels(
        f"{metric}({column}) < {limit:g}%", metric, column, dimension, unit="%", fail=limit, **kwargs
    )


def _between(metric: str, column: str, low: float, high: float, usual: tuple[float, float]) -> _CheckSpec:
    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        value = round(rng.uniform(*usual), 2)
        return ("pass" if low <= value <= high else "fail"), value, {"value": value}

    return _CheckSpec(
        f"{metric}({column}) between {low:g} and {high:g}", metric, column, "Accuracy", behaviour
    )


def _schema(columns: list[str], dropped: dict[int, list[str]] | None = None) -> _CheckSpec:
    dropped = dropped or {}

    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        missing = dropped.get(day.days_ago, [])
        if not missing:
            return "pass", None, {"columns": columns}
        present = [column for column in columns if column not in missing]
        return "fail", None, {"missingColumnNames": missing, "columns": present}

    return _CheckSpec("schema", "schema", "", "Consistency", behaviour)


def _anomaly(low_days: set[int]) -> _CheckSpec:
    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        low = day.days_ago in low_days
        score = round(rng.uniform(0.991, 0.998) if low else rng.uniform(0.05, 0.6), 3)
        diagnostics = {"value": day.rows, "anomalyProbability": score, "direction": "lower" if low else ""}
        return ("warn" if low else "pass"), float(day.rows), diagnostics

    return _CheckSpec("anomaly detection for row_count", "anomaly_detection", "", "Completeness", behaviour)


def _min_at_least(column: str, minimum: float, usual: tuple[float, float]) -> _CheckSpec:
    def behaviour(day: _Day, rng: random.Random) -> tuple[str, float | None, dict[str, Any]]:
        value = float(round(rng.uniform(*usual)))
        return ("pass" if value >= minimum else "fail"), value, {"value": value}

    return _CheckSpec(f"min({column}) >= {minimum:g}", "min", column, "Validity", behaviour)


# The story, by days ago (0 is today's scan), which the incidents in _tell_stories follow:
#  20    orders empty after a failed export (resolved)
#  15-14 duplicate payments from webhook retries (resolved; the private dataset)
#  11-10 sessions late, fixed, and late again from day 2 (reopened)
#  9-8   inventory stale during planned maintenance (resolved)
#  6     a backfill double-loads orders and customers (resolved, two datasets)
#  2-0   ad_spend rows lose campaign_id (fixing)
#  1-0   payments drops fee_amount (fixing), web_events volume drops (reported)
#  3-0   invalid country codes creep into customers (investigating), users lose emails (reported)
DATASETS: list[_DatasetSpec] = [
    _DatasetSpec(
        "snowflake_prod",
        "orders",
        _Volume(46_000, growth=0.004, weekend=0.75, noise=0.05, empty=frozenset({20})),
        [
            _row_count(),
            _must_be_zero("missing_count", "customer_id", "Completeness", {}),
            _must_be_zero("duplicate_count", "order_id", "Uniqueness", {6: 1284}),
            _freshness("updated_at", "1d", usual=(1.0, 3.5), warn=12, fail=24, special={20: 31.2}),
            _between("avg", "amount", 20, 200, usual=(61.0, 74.0)),
            _schema(["order_id", "customer_id", "amount", "currency", "status", "created_at", "updated_at"]),
        ],
    ),
    _DatasetSpec(
        "snowflake_prod",
        "customers",
        _Volume(1_204_000, growth=0.0015, noise=0.0005),
        [
            _row_count(),
            _must_be_zero("missing_count", "email", "Completeness", {17: 3}),
            _must_be_zero("duplicate_count", "customer_id", "Uniqueness", {6: 412}),
            _percent(
                "invalid_percent",
                "country",
                1,
                "Validity",
                usual=(0.02, 0.12),
                warn=0.5,
                special={3: 0.61, 2: 0.93, 1: 1.42, 0: 2.07},
            ),
            _schema(["customer_id", "email", "name", "country", "segment", "created_at"]),
        ],
    ),
    _DatasetSpec(
        "snowflake_prod",
        "payments",
        _Volume(51_000, growth=0.004, weekend=0.8, noise=0.05),
        [
            _row_count(),
            _must_be_zero("duplicate_count", "payment_id", "Uniqueness", {15: 37, 14: 12}),
            _must_be_zero("missing_count", "amount", "Completeness", {}),
            _percent("invalid_percent", "currency", 1, "Validity", usual=(0.0, 0.05), warn=0.5),
            _schema(
                [
                    "payment_id",
                    "order_id",
                    "amount",
                    "fee_amount",
                    "currency",
                    "psp",
                    "psp_reference",
                    "paid_at",
                ],
                dropped={1: ["fee_amount"], 0: ["fee_amount"]},
            ),
        ],
    ),
    _DatasetSpec(
        "snowflake_prod",
        "inventory",
        _Volume(84_300, noise=0.002),
        [
            _row_count(),
            _freshness("snapshot_at", "1d", usual=(2.0, 5.0), warn=12, fail=24, special={9: 29.5, 8: 14.2}),
            _must_be_zero("missing_count", "sku", "Completeness", {}),
            _min_at_least("quantity_on_hand", 0, usual=(0, 3)),
        ],
    ),
    _DatasetSpec(
        "postgres_app",
        "users",
        _Volume(2_310_000, growth=0.002, noise=0.0003),
        [
            _row_count(),
            _must_be_zero("missing_count", "email", "Completeness", {3: 2, 2: 5, 1: 9, 0: 14}),
            _must_be_zero("duplicate_count", "email", "Uniqueness", {}),
            _percent(
                "invalid_percent", "country", 1, "Validity", usual=(0.05, 0.3), warn=0.5, special={22: 0.71}
            ),
            _schema(["id", "email", "name", "country", "plan", "created_at", "updated_at"]),
        ],
    ),
    _DatasetSpec(
        "postgres_app",
        "sessions",
        _Volume(310_000, growth=0.003, weekend=0.6, noise=0.06),
        [
            _row_count(),
            _freshness(
                "started_at",
                "1d",
                usual=(0.2, 1.5),
                warn=12,
                fail=24,
                special={11: 26.4, 10: 38.1, 2: 15.3, 1: 26.0, 0: 33.7},
            ),
            _percent(
                "missing_percent",
                "user_id",
                5,
                "Completeness",
                usual=(0.8, 1.8),
                warn=2,
                special={24: 2.4, 13: 2.9},
            ),
            _between("avg", "duration_seconds", 60, 900, usual=(245.0, 310.0)),
        ],
    ),
    _DatasetSpec(
        "bigquery_marketing",
        "ad_spend",
        _Volume(4_200, weekend=1.0, noise=0.08),
        [
            _row_count(),
            _must_be_zero("missing_count", "campaign_id", "Completeness", {2: 18, 1: 64, 0: 130}),
            _freshness("spend_date", "2d", usual=(7.0, 10.0), warn=24, fail=48, mondays=33.0),
            _percent("invalid_percent", "currency", 1, "Validity", usual=(0.0, 0.1), warn=0.5),
        ],
    ),
    _DatasetSpec(
        "bigquery_marketing",
        "web_events",
        _Volume(2_100_000, growth=0.002, weekend=0.7, noise=0.04, scaled={1: 0.65, 0: 0.63}),
        [
            _row_count(),
            _anomaly({1, 0}),
            _percent("missing_percent", "session_id", 1, "Completeness", usual=(0.1, 0.4), warn=0.5),
            _must_be_zero("duplicate_count", "event_id", "Uniqueness", {}),
            _schema(["event_id", "session_id", "user_id", "event_name", "page_url", "occurred_at"]),
        ],
    ),
]


def _definition(dataset: str, check: _CheckSpec) -> str:
    if check.thresholds:
        name = check.name.split(" < ")[0]
        return f"checks for {dataset}:\n  - {name}:\n      {check.thresholds}"
    return f"checks for {dataset}:\n  - {check.name}"


# --- Building -------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, now: datetime) -> None:
        self.now = now
        # "Today" is the last day whose story (scans, then up to _LATEST_EVENT_HOUR) is over by `now`.
        self.today = (now.astimezone(UTC) - timedelta(hours=_LATEST_EVENT_HOUR)).date()
        self.users: dict[str, User] = {}
        self.results: dict[tuple[str, str, int], CheckResult] = {}
        self.scan_ids: list[int] = []
        self.datasets: dict[str, Dataset] = {}

    def at(self, days_ago: int, hour: int, minute: int = 0) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

    def people(self) -> None:
        for key, email, name, role, _ in PEOPLE:
            by = self.users.get("admin")
            self.users[key] = create_user(
                by=by, email=email, name=name, password=DEMO_PASSWORD, global_role=role
            )
        update_organization(by=self.users["admin"], name=ORGANISATION_NAME)

    def scans(self) -> None:
        admin = self.users["admin"]
        rngs = {
            (spec.name, check.name): random.Random(f"quell-demo/{spec.source}/{spec.name}/{check.name}")
            for spec in DATASETS
            for check in spec.checks
        }
        scan_rng = random.Random("quell-demo/scans")
        volume_rngs = {
            spec.name: random.Random(f"quell-demo/{spec.source}/{spec.name}/rows") for spec in DATASETS
        }
        for days_ago in range(DAYS - 1, -1, -1):
            for source, hour in sorted(SCAN_HOURS.items(), key=lambda item: item[1]):
                at = self.at(days_ago, hour)
                specs = [spec for spec in DATASETS if spec.source == source]
                inputs: list[catalog.ResultInput] = []
                keys: list[tuple[str, str, int]] = []
                measurements: list[catalog.MeasurementInput] = []
                for spec in specs:
                    rows = spec.volume.rows(DAYS - 1 - days_ago, days_ago, at.date(), volume_rngs[spec.name])
                    day = _Day(days_ago, at, rows)
                    measurements.append(
                        catalog.MeasurementInput(
                            identity=f"metric-{source}-{spec.name}-row_count",
                            metric_name="row_count",
                            value=rows,
                            data_source=source,
                            dataset=spec.name,
                        )
                    )
                    for check in spec.checks:
                        outcome, value, diagnostics = check.behaviour(day, rngs[(spec.name, check.name)])
                        inputs.append(
                            catalog.ResultInput(
                                data_source=source,
                                dataset=spec.name,
                                check=catalog.CheckInput(
                                    name=check.name,
                                    column=check.column,
                                    definition=_definition(spec.name, check),
                                    check_type=check.check_type,
                                    attributes={"dimension": check.dimension},
                                ),
                                outcome=outcome,
                                value=value,
                                diagnostics=diagnostics,
                            )
                        )
                        keys.append((spec.name, check.name, days_ago))
                seconds = 20 + len(inputs) * 3 + scan_rng.randint(0, 40)
                scan, stored = catalog.ingest_scan(
                    catalog.ScanInput(
                        data_timestamp=at,
                        results=inputs,
                        source="soda-core",
                        definition_name=f"{source}_daily",
                        started_at=at,
                        ended_at=at + timedelta(seconds=seconds),
                        measurements=measurements,
                        data_source_types={source: SOURCE_TYPES[source]},
                    ),
                    by=admin,
                )
                self.scan_ids.append(scan.pk)
                self.results.update(zip(keys, stored, strict=True))
        self.datasets = {dataset.name: dataset for dataset in Dataset.objects.all()}

    def responsibilities(self) -> None:
        """Everyone may view every dataset but payments; Marco manages all, Elena and Sam edit their own."""
        roles = {role.name: role.pk for role in DatasetRole.objects.all()}
        everyone = everyone_group().pk
        editors = {"snowflake_prod": "editor", "postgres_app": "editor2", "bigquery_marketing": "editor2"}
        for spec in DATASETS:
            dataset = self.datasets[spec.name]
            if (spec.source, spec.name) == PRIVATE_DATASET:
                named = [("manager", "Manager"), ("editor", "Editor"), ("viewer", "Viewer")]
                items = [catalog.ResponsibilityInput("user", self.users[k].pk, roles[r]) for k, r in named]
            else:
                items = [
                    catalog.ResponsibilityInput("userGroup", everyone, roles["Viewer"]),
                    catalog.ResponsibilityInput("user", self.users["manager"].pk, roles["Manager"]),
                    catalog.ResponsibilityInput("user", self.users[editors[spec.source]].pk, roles["Editor"]),
                ]
            catalog.set_responsibilities(dataset.pk, items, by=self.users["admin"])

    def result(self, dataset: str, check: str, days_ago: int) -> int:
        return self.results[(dataset, check, days_ago)].pk

    def incidents(self) -> None:
        _tell_stories(_Stories(self))

    def backdate(self) -> None:
        """Move what the services stamped with the current time back to when the story has it happen."""
        first = self.at(DAYS - 1, 0)
        Scan.objects.filter(pk__in=self.scan_ids).update(created_at=F("ended_at"))
        CheckResult.objects.filter(scan_id__in=self.scan_ids).update(created_at=F("data_timestamp"))
        demo_sources = DataSource.objects.filter(name__in=SCAN_HOURS)
        demo_sources.update(created_at=first)
        Dataset.objects.filter(data_source__in=demo_sources).update(created_at=first)
        Check.objects.filter(dataset__data_source__in=demo_sources).update(created_at=first)
        User.objects.filter(pk__in=[user.pk for user in self.users.values()]).update(
            date_joined=first - timedelta(days=3)
        )


class _Stories:
    """Tells incidents through the services, then stamps each step with the time the story gives it."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.last: dict[int, datetime] = {}
        self.event_mark = TimelineEvent.objects.aggregate(m=Max("id"))["m"] or 0
        self.link_mark = IncidentCheckResult.objects.aggregate(m=Max("id"))["m"] or 0

    def user(self, key: str) -> User:
        return self.b.users[key]

    def _stamp(
        self, incident_id: int, when: datetime, *, created: bool = False, resolved: bool = False
    ) -> None:
        previous = self.last.get(incident_id)
        if when >= self.b.now or (previous is not None and when < previous):
            raise AssertionError(f"demo story out of order for incident {incident_id} at {when}")
        self.last[incident_id] = when
        TimelineEvent.objects.filter(incident_id=incident_id, id__gt=self.event_mark).update(created_at=when)
        IncidentCheckResult.objects.filter(incident_id=incident_id, id__gt=self.link_mark).update(
            added_at=when
        )
        stamps: dict[str, datetime] = {"updated_at": when}
        if created:
            stamps["created_at"] = when
        if resolved:
            stamps["resolved_at"] = when
        Incident.objects.filter(pk=incident_id).update(**stamps)
        self.event_mark = TimelineEvent.objects.aggregate(m=Max("id"))["m"] or 0
        self.link_mark = IncidentCheckResult.objects.aggregate(m=Max("id"))["m"] or 0

    def open(
        self,
        when: datetime,
        by: str,
        title: str,
        description: str,
        severity: str,
        results: list[int],
        lead: str | None = None,
    ) -> int:
        incident = incidents.create_incident(
            by=self.user(by),
            title=title,
            description=description,
            severity=severity,
            check_result_ids=results,
            lead_id=self.user(lead).pk if lead else None,
        )
        self._stamp(incident.pk, when, created=True)
        return incident.pk

    def comment(self, incident_id: int, when: datetime, by: str, text: str) -> None:
        incidents.add_comment(incident_id, text, by=self.user(by))
        self._stamp(incident_id, when)

    def change(self, incident_id: int, when: datetime, by: str, **changes: Any) -> None:
        if "lead" in changes:
            changes["lead_id"] = self.user(changes.pop("lead")).pk
        incidents.update_incident(incident_id, by=self.user(by), **changes)
        self._stamp(incident_id, when, resolved=changes.get("status") == Status.RESOLVED)

    def attach(self, incident_id: int, when: datetime, by: str, results: list[int]) -> None:
        incidents.attach_check_results(incident_id, results, by=self.user(by))
        self._stamp(incident_id, when)


def _tell_stories(s: _Stories) -> None:
    b = s.b
    at = b.at
    r = b.result
    investigating, fixing, resolved = Status.INVESTIGATING, Status.FIXING, Status.RESOLVED

    # Orders empty after a failed export: critical, resolved.
    orders_empty = s.open(
        at(20, 5, 40),
        "editor",
        "Nightly orders load wrote 0 rows",
        "The 05:00 scan found no orders for yesterday and updated_at more than a day old. "
        "The revenue dashboards show nothing for yesterday.",
        Severity.CRITICAL,
        [r("orders", "row_count > 0", 20), r("orders", "freshness(updated_at) < 1d", 20)],
        lead="manager",
    )
    s.change(orders_empty, at(20, 5, 55), "manager", status=investigating)
    s.comment(
        orders_empty,
        at(20, 6, 20),
        "manager",
        "The load_orders DAG succeeded, but the Shopify export it reads was empty: the export job ran "
        "out of API quota at 01:12.",
    )
    s.change(orders_empty, at(20, 7, 5), "manager", status=fixing)
    s.comment(
        orders_empty,
        at(20, 7, 10),
        "editor",
        "Re-running the export with a raised quota, then backfilling yesterday.",
    )
    s.comment(
        orders_empty,
        at(20, 9, 30),
        "editor",
        "Backfill done: 47,912 rows. Waiting for tomorrow's scan to confirm.",
    )
    s.change(
        orders_empty,
        at(19, 5, 20),
        "manager",
        status=resolved,
        resolution_notes="The Shopify export hit its API quota and wrote an empty file, which the load "
        "accepted. Re-ran the export and backfilled the day. The DAG now fails when the export file is "
        "empty, and row_count > 0 runs right after the load.",
    )

    # Duplicate payments from webhook retries: major, resolved, on the private dataset.
    duplicate_payments = s.open(
        at(15, 5, 30),
        "manager",
        "Duplicate payment_id rows after PSP webhook retries",
        "duplicate_count(payment_id) found 37 duplicates. Finance reconciles on payment_id.",
        Severity.MAJOR,
        [r("payments", "duplicate_count(payment_id) = 0", 15)],
        lead="editor",
    )
    s.change(duplicate_payments, at(15, 6, 10), "editor", status=investigating)
    s.comment(
        duplicate_payments,
        at(15, 6, 15),
        "editor",
        "All 37 come from Adyen webhooks between 22:00 and 22:40, when their API answered 502 and retried.",
    )
    s.attach(
        duplicate_payments, at(14, 5, 25), "editor", [r("payments", "duplicate_count(payment_id) = 0", 14)]
    )
    s.comment(
        duplicate_payments, at(14, 5, 30), "editor", "12 more today: the retries went on after midnight."
    )
    s.change(duplicate_payments, at(14, 8, 0), "editor", status=fixing)
    s.comment(
        duplicate_payments,
        at(14, 8, 5),
        "editor",
        "Changing the stg_payments merge to deduplicate on psp_reference.",
    )
    s.change(
        duplicate_payments,
        at(13, 10, 0),
        "manager",
        status=resolved,
        resolution_notes="The payments merge now deduplicates on psp_reference and the 49 duplicate rows "
        "were deleted. Finance confirmed the revenue reports for both days.",
    )

    # Sessions arriving late: fixed, then back; reopened and handed over.
    late_sessions = s.open(
        at(11, 4, 30),
        "editor2",
        "Sessions data arriving late from the event collector",
        "freshness(started_at) is over a day: the newest session is from yesterday morning.",
        Severity.MAJOR,
        [r("sessions", "freshness(started_at) < 1d", 11)],
    )
    s.change(late_sessions, at(11, 5, 0), "editor2", status=investigating)
    s.comment(
        late_sessions,
        at(11, 5, 10),
        "editor2",
        "Consumer lag on the sessions topic is 26h: partition 7 stopped being consumed after a rebalance.",
    )
    s.attach(late_sessions, at(10, 4, 20), "editor2", [r("sessions", "freshness(started_at) < 1d", 10)])
    s.comment(late_sessions, at(10, 4, 25), "editor2", "Restarted the consumer group; the lag is going down.")
    s.change(
        late_sessions,
        at(9, 9, 0),
        "editor2",
        status=resolved,
        resolution_notes="Restarted the consumer group; lag is back to minutes. INFRA-2231 adds an alert "
        "on consumer lag.",
    )
    s.change(late_sessions, at(1, 4, 35), "editor2", status=investigating)
    s.attach(
        late_sessions,
        at(1, 4, 36),
        "editor2",
        [r("sessions", "freshness(started_at) < 1d", 2), r("sessions", "freshness(started_at) < 1d", 1)],
    )
    s.comment(
        late_sessions,
        at(1, 4, 40),
        "editor2",
        "It's back: a warning yesterday and a failure today. Partition 7 again?",
    )
    s.change(late_sessions, at(1, 10, 0), "editor2", lead="manager")
    s.comment(
        late_sessions,
        at(1, 10, 5),
        "manager",
        "Taking the lead: this needs the platform team. The consumer loses partition 7 after every deploy.",
    )
    s.attach(late_sessions, at(0, 4, 40), "manager", [r("sessions", "freshness(started_at) < 1d", 0)])

    # Inventory stale during planned maintenance: minor, resolved.
    stale_inventory = s.open(
        at(9, 5, 30),
        "editor",
        "Inventory snapshot stale during warehouse system maintenance",
        "The WMS is down for planned maintenance, so no snapshot was taken.",
        Severity.MINOR,
        [r("inventory", "freshness(snapshot_at) < 1d", 9)],
    )
    s.comment(stale_inventory, at(9, 5, 35), "editor", "Expected: the snapshot resumes when the WMS is back.")
    s.attach(stale_inventory, at(8, 5, 40), "editor", [r("inventory", "freshness(snapshot_at) < 1d", 8)])
    s.comment(
        stale_inventory, at(8, 5, 45), "editor", "The snapshot ran at 15:00 yesterday; still catching up."
    )
    s.change(
        stale_inventory,
        at(7, 5, 30),
        "editor",
        status=resolved,
        resolution_notes="Expected outage during the planned WMS maintenance; snapshots are back on "
        "schedule. Next time we pause the freshness check for announced maintenance windows.",
    )

    # A backfill double-loads orders and customers: critical, resolved, two datasets.
    backfill = s.open(
        at(6, 5, 30),
        "manager",
        "Backfill double-loaded orders and customers",
        "Both tables have duplicate keys since last night's backfill of March.",
        Severity.CRITICAL,
        [
            r("orders", "duplicate_count(order_id) = 0", 6),
            r("customers", "duplicate_count(customer_id) = 0", 6),
        ],
        lead="editor",
    )
    s.change(backfill, at(6, 5, 50), "editor", status=investigating)
    s.comment(
        backfill,
        at(6, 6, 0),
        "editor",
        "The backfill re-ran without truncating staging: 1,284 duplicate orders and 412 duplicate customers.",
    )
    s.change(backfill, at(6, 7, 30), "editor", status=fixing)
    s.comment(backfill, at(6, 7, 35), "manager", "Please keep the latest _loaded_at per key when deleting.")
    s.change(
        backfill,
        at(6, 11, 0),
        "editor",
        status=resolved,
        resolution_notes="Deleted the duplicates, keeping the latest _loaded_at per key. The backfill "
        "script now truncates staging first and refuses to run twice for the same window.",
    )

    # ad_spend rows without campaign_id: minor, fixing.
    campaigns = s.open(
        at(2, 7, 0),
        "manager",
        "ad_spend rows without campaign_id from the TikTok connector",
        "Spend without a campaign cannot be attributed; the marketing ROI report undercounts TikTok.",
        Severity.MINOR,
        [r("ad_spend", "missing_count(campaign_id) = 0", 2)],
        lead="editor2",
    )
    s.change(campaigns, at(2, 7, 30), "editor2", status=investigating)
    s.comment(
        campaigns,
        at(2, 7, 35),
        "editor2",
        "Every row without campaign_id comes from the TikTok Ads connector v3.2.",
    )
    s.attach(campaigns, at(1, 6, 40), "editor2", [r("ad_spend", "missing_count(campaign_id) = 0", 1)])
    s.change(campaigns, at(1, 6, 45), "editor2", status=fixing)
    s.comment(
        campaigns,
        at(1, 6, 50),
        "editor2",
        "Pinned the connector to v3.1 and started a re-sync of the last 3 days.",
    )
    s.attach(campaigns, at(0, 6, 30), "editor2", [r("ad_spend", "missing_count(campaign_id) = 0", 0)])
    s.comment(
        campaigns,
        at(0, 6, 35),
        "editor2",
        "Today's load ran before the re-sync finished; expect it to pass tomorrow.",
    )

    # payments drops fee_amount: critical, fixing, on the private dataset.
    fee_column = s.open(
        at(1, 5, 15),
        "editor",
        "fee_amount column dropped from payments",
        "The schema check reports fee_amount missing. The finance margin model reads it.",
        Severity.CRITICAL,
        [r("payments", "schema", 1)],
        lead="manager",
    )
    s.change(fee_column, at(1, 5, 45), "manager", status=investigating)
    s.comment(
        fee_column,
        at(1, 5, 50),
        "manager",
        "Migration 0142 of the payments service renamed fee_amount to fee_minor_units.",
    )
    s.change(fee_column, at(1, 8, 0), "manager", status=fixing)
    s.comment(
        fee_column,
        at(1, 8, 5),
        "editor",
        "Adding fee_amount back as fee_minor_units / 100 in the view until finance updates the model.",
    )
    s.attach(fee_column, at(0, 5, 30), "editor", [r("payments", "schema", 0)])
    s.comment(fee_column, at(0, 5, 35), "editor", "Still failing: the view deploy is scheduled for 10:00.")

    # Invalid country codes creeping into customers: major, investigating.
    countries = s.open(
        at(1, 6, 30),
        "admin",
        "Invalid country codes in customers since the CRM migration",
        "invalid_percent(country) has risen for three days and failed today.",
        Severity.MAJOR,
        [
            r("customers", "invalid_percent(country) < 1%", 3),
            r("customers", "invalid_percent(country) < 1%", 2),
            r("customers", "invalid_percent(country) < 1%", 1),
        ],
        lead="editor",
    )
    s.change(countries, at(1, 7, 15), "editor", status=investigating)
    s.comment(
        countries,
        at(1, 7, 20),
        "editor",
        "The new CRM sends country names ('Germany') instead of ISO codes for customers from the partner portal.",
    )
    s.attach(countries, at(0, 5, 20), "editor", [r("customers", "invalid_percent(country) < 1%", 0)])
    s.comment(countries, at(0, 5, 25), "editor", "2.07% today. The mapping table PR is in review.")

    # users without email: major, reported.
    emails = s.open(
        at(0, 4, 45),
        "editor2",
        "Users without email after the signup form change",
        "missing_count(email) has failed four days in a row and is growing.",
        Severity.MAJOR,
        [r("users", "missing_count(email) = 0", 1), r("users", "missing_count(email) = 0", 0)],
    )
    s.attach(
        emails,
        at(0, 5, 10),
        "editor2",
        [r("users", "missing_count(email) = 0", 3), r("users", "missing_count(email) = 0", 2)],
    )
    s.comment(emails, at(0, 7, 30), "manager", "Sign-in with Apple can hide the email. Is this expected?")

    # web_events volume drop: minor, reported, led by the admin.
    volume = s.open(
        at(0, 6, 45),
        "admin",
        "web_events volume about 35% below normal",
        "The row_count anomaly check warned two days in a row.",
        Severity.MINOR,
        [
            r("web_events", "anomaly detection for row_count", 1),
            r("web_events", "anomaly detection for row_count", 0),
        ],
    )
    s.comment(
        volume,
        at(0, 6, 50),
        "admin",
        "Possibly the new cookie banner: fewer visitors consent to tracking. Checking.",
    )
