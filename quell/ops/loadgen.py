"""Fill a database with a realistic organisation at a chosen scale, fast, for measuring Quell.

The shape follows the scale in issue 6 (1,000,000 incidents, 20,000 checks, about 10,000,000
results): per incident there are 1/50 of a check and 1/100 of a dataset, and every check has a
result per day for `days` days. Rows are written with bulk inserts and ids chosen here, so nothing
is read back; a result's id is computed from its check and day.

The data keeps the domain's rules: incidents link only warn and fail results, each incident's
datasets are exactly those of its linked results, numbers are unique and the number sequence is
advanced past them, and leads and reporters hold Manage incidents on the datasets they handle.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice, pairwise
from typing import TypeVar

from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max
from tqdm import tqdm

from quell.accounts.models import DatasetRole, GlobalRole, Responsibility, User, UserGroup
from quell.catalog import counters
from quell.catalog.models import (
    Check,
    CheckResult,
    Dataset,
    DataSource,
    Outcome,
    Scan,
    ScanState,
)
from quell.incidents import tallies
from quell.incidents.models import (
    OPEN_STATUSES,
    EventKind,
    Incident,
    IncidentCheck,
    IncidentCheckResult,
    IncidentDataset,
    NumberSequence,
    Severity,
    Status,
    TimelineEvent,
)
from quell.lib.dbstats import refresh_planner_statistics

BATCH = 5000

# Outcome codes in the per-check outcome arrays.
PASS, WARN, FAIL, EXCLUDED = 0, 1, 2, 3
OUTCOME_OF = {PASS: Outcome.PASS, WARN: Outcome.WARN, FAIL: Outcome.FAIL, EXCLUDED: Outcome.EXCLUDED}

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Ben",
    "Bruno",
    "Chen",
    "Chloe",
    "Dara",
    "Diego",
    "Elif",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Ines",
    "Ivan",
    "Jonas",
    "Julia",
    "Kofi",
    "Lara",
    "Leo",
    "Lina",
    "Malik",
    "Maya",
    "Nadia",
    "Noah",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Sofia",
    "Tariq",
    "Uma",
    "Vera",
    "Wei",
    "Yara",
    "Zoe",
]
LAST_NAMES = [
    "Adeyemi",
    "Berg",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhou",
]
TEAM_WORDS = [
    "Analytics",
    "Billing",
    "Checkout",
    "Data-Platform",
    "Finance",
    "Growth",
    "Identity",
    "Logistics",
    "Marketing",
    "Payments",
    "Pricing",
    "Risk",
    "Search",
    "Supply-Chain",
    "Support",
]

SOURCES = [
    "snowflake_prod",
    "bigquery_analytics",
    "postgres_app",
    "redshift_finance",
    "databricks_lakehouse",
    "mysql_billing",
    "clickhouse_events",
    "duckdb_sandbox",
]
SOURCE_TYPES = {
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "postgres": "postgres",
    "redshift": "redshift",
    "databricks": "spark",
    "mysql": "mysql",
    "clickhouse": "clickhouse",
    "duckdb": "duckdb",
}
SCHEMAS = ["raw", "staging", "analytics", "finance", "marketing", "product", "ops"]
TABLES = [
    "orders",
    "order_items",
    "customers",
    "payments",
    "refunds",
    "invoices",
    "subscriptions",
    "sessions",
    "page_views",
    "events",
    "shipments",
    "inventory",
    "products",
    "suppliers",
    "campaigns",
    "ad_spend",
    "leads",
    "tickets",
    "accounts",
    "transactions",
    "ledger",
    "exchange_rates",
    "returns",
    "signups",
]
COLUMNS = [
    "id",
    "customer_id",
    "order_id",
    "created_at",
    "updated_at",
    "amount",
    "currency",
    "email",
    "status",
    "country",
]

# (check name template, check type, title templates). {col} is a column, {ds} the table name.
CHECK_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("row_count > 0", "row_count", ("Row count dropped to zero in {ds}", "No rows loaded into {ds}")),
    (
        "missing_count({col}) = 0",
        "missing",
        ("Missing {col} values in {ds}", "Null {col} spike in {ds}"),
    ),
    (
        "duplicate_count({col}) = 0",
        "duplicate",
        ("Duplicate {col} keys in {ds}", "Double-counted rows in {ds}"),
    ),
    ("freshness({col}) < 1d", "freshness", ("Stale data in {ds}", "Freshness SLA missed for {ds}")),
    (
        "invalid_percent({col}) < 1%",
        "validity",
        ("Invalid {col} values in {ds}", "Malformed {col} in {ds}"),
    ),
    ("schema", "schema", ("Schema change broke {ds}", "Unexpected column in {ds}")),
    (
        "anomaly detection for row_count",
        "anomaly",
        ("Row count anomaly in {ds}", "Unusual volume in {ds}"),
    ),
    (
        "avg({col}) between 0 and 1000",
        "metric",
        ("Average {col} out of range in {ds}", "Outlier {col} values in {ds}"),
    ),
)
# Causes in a title, most frequent first: the tail gives searches for rare words.
CAUSES = (
    "deploy",
    "backfill",
    "upstream outage",
    "schema migration",
    "vendor delay",
    "timezone change",
    "dbt refactor",
    "Kafka lag",
    "Airflow retry storm",
    "late partner file",
    "CDC connector restart",
    "holiday traffic",
    "currency conversion bug",
    "S3 permission change",
    "Fivetran resync",
    "replica failover",
    "expired credentials",
    "partition pruning regression",
    "quarantined partition",
    "leap second",
)
CAUSE_WEIGHTS = [1 / (rank + 1) ** 1.3 for rank in range(len(CAUSES))]
# What the benchmark searches for: words in many titles, and words in few.
COMMON_SEARCH = "row count"
RARE_SEARCH = "quarantined partition"

NOTES = (
    "Re-ran the load after the upstream fix; counts match the source again.",
    "Backfilled the missing partition and added an alert on the loader.",
    "False alarm: the threshold was too tight for weekend traffic; widened it.",
    "Reverted the deploy and replayed the affected hours.",
    "Vendor resent the file; reprocessed and verified totals.",
)
COMMENTS = (
    "Looking into it now.",
    "Upstream team confirmed the delay, ETA two hours.",
    "Affects the finance dashboard; flagged to the owners.",
    "Same pattern as last month's incident.",
    "Fix is merged, waiting for the next run.",
)

SEVERITIES = (Severity.MINOR, Severity.MAJOR, Severity.CRITICAL)
SEVERITY_WEIGHTS = (50, 35, 15)
OPEN_PROGRESSION = (Status.REPORTED, Status.INVESTIGATING, Status.FIXING)


class LoadgenRefused(Exception):
    pass


@dataclass(frozen=True)
class Scale:
    incidents: int
    days: int = 365

    @property
    def users(self) -> int:
        return max(12, self.incidents // 200)

    @property
    def teams(self) -> int:
        return max(3, self.users // 6)

    @property
    def data_sources(self) -> int:
        return max(2, self.incidents // 2000)

    @property
    def datasets(self) -> int:
        return max(8, self.incidents // 100)

    @property
    def checks(self) -> int:
        return max(20, self.incidents // 50)

    @property
    def results(self) -> int:
        return self.checks * self.days


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    admin_email: str = ""


@dataclass
class _DatasetInfo:
    id: int
    table: str
    source_index: int
    source_id: int
    team: list[int]  # ids of users holding Manage incidents through the team's Editor role


@dataclass
class _CheckInfo:
    id: int
    dataset_index: int
    kind: int
    column: str


M = TypeVar("M", bound=models.Model)


def _next_id(model: type[models.Model]) -> int:
    return int(model._default_manager.aggregate(m=Max("pk"))["m"] or 0) + 1


def _batched(items: Iterable[M], size: int) -> Iterator[list[M]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Writer:
    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self.summary = Summary()

    def insert(self, model: type[M], rows: Iterable[M], total: int, label: str) -> None:
        written = 0
        with tqdm(total=total, desc=f"{label:<22}", unit="row", disable=not self.progress) as bar:
            for chunk in _batched(rows, BATCH):
                _insert_rows(model, chunk)
                written += len(chunk)
                bar.update(len(chunk))
        self.summary.counts[label] = self.summary.counts.get(label, 0) + written


def _insert_rows(model: type[M], chunk: list[M]) -> None:
    """INSERT a chunk of unsaved instances in one transaction, without bulk_create's per-row work.

    bulk_create builds one multi-row statement per ~1,000 rows and runs each instance through
    pre_save; at 20 M rows that Python is what a fill spends its time on. Here the values go through
    each field's own get_db_prep_save (so JSON, dates and enums are stored exactly as the ORM stores
    them) and then executemany on SQLite or COPY on PostgreSQL, which is several times faster.
    """
    fields = [
        f for f in model._meta.concrete_fields if not (f.primary_key and getattr(chunk[0], f.attname) is None)
    ]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    rows = [tuple(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields) for obj in chunk]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(fields))
            # Table and columns come from the model's own metadata; values are parameters.
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def generate(
    scale: Scale,
    *,
    seed: int = 1,
    append: bool = False,
    progress: bool = True,
    now: dt.datetime | None = None,
) -> Summary:
    """Write an organisation of `scale` into the default database and say how many rows of each."""
    if Incident.objects.exists() and not append:
        raise LoadgenRefused(
            "This database already holds incidents; loadgen only fills empty ones. "
            "Pass --append to add a second organisation's worth of data next to them."
        )
    rng = random.Random(seed)
    # Appending must not collide with names from an earlier run.
    tag = f"-{uuid.UUID(int=rng.getrandbits(128)).hex[:6]}" if append else ""
    end = (now or dt.datetime.now(dt.UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=scale.days)
    writer = _Writer(progress)

    admin_id, user_ids, teams = _people(writer, scale, rng, tag)
    writer.summary.admin_email = User.objects.values_list("email", flat=True).get(pk=admin_id)
    datasets = _catalog(writer, scale, rng, tag, teams, user_ids)
    checks, outcomes = _checks(writer, scale, rng, datasets, start)
    result_base = _results(writer, scale, rng, datasets, checks, outcomes, start)
    _incidents(writer, scale, rng, datasets, checks, outcomes, result_base, start, end, admin_id)
    _reset_sequences()
    # Bulk inserts bypass the ingest and the incident services, which keep the status counts and
    # each dataset's counts; recount them. (The title search index is kept by triggers on SQLite and
    # by PostgreSQL itself, so it is filled.)
    tallies.rebuild()
    counters.recount_all(OPEN_STATUSES)
    # Planner statistics for the new rows, so the first queries already use the right indexes.
    refresh_planner_statistics(full=True)
    return writer.summary


# --- People ---------------------------------------------------------------------------------------


def _people(
    writer: _Writer, scale: Scale, rng: random.Random, tag: str
) -> tuple[int, list[int], list[list[int]]]:
    unusable = make_password(None)
    first_id = _next_id(User)
    users = [
        User(
            id=first_id,
            email=f"loadgen-admin{tag}@example.com",
            name="Loadgen Admin",
            global_role=GlobalRole.ADMIN,
            password=unusable,
        )
    ]
    for i in range(scale.users):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        users.append(
            User(
                id=first_id + 1 + i,
                email=f"{first}.{last}.{i}{tag}@example.com".lower(),
                name=f"{first} {last}",
                password=unusable,
            )
        )
    writer.insert(User, users, len(users), "users")
    user_ids = [u.pk for u in users[1:]]

    group_base = _next_id(UserGroup)
    groups = [
        UserGroup(
            id=group_base + t, name=f"{TEAM_WORDS[t % len(TEAM_WORDS)]} {t // len(TEAM_WORDS) + 1}{tag}"
        )
        for t in range(scale.teams)
    ]
    writer.insert(UserGroup, groups, len(groups), "teams")
    teams: list[list[int]] = [[] for _ in groups]
    for i, user_id in enumerate(user_ids):
        teams[i % len(teams)].append(user_id)
        # Some people sit in two teams, as in real organisations.
        if rng.random() < 0.2:
            teams[rng.randrange(len(teams))].append(user_id)
    teams = [sorted(set(members)) for members in teams]
    Membership = UserGroup.members.through
    memberships = [
        Membership(usergroup_id=group.pk, user_id=user_id)
        for group, members in zip(groups, teams, strict=True)
        for user_id in members
    ]
    writer.insert(Membership, memberships, len(memberships), "team memberships")
    # Teams are referred to by group id from here on; the first list element is the group id.
    return first_id, user_ids, [[group.pk, *members] for group, members in zip(groups, teams, strict=True)]


# --- Catalog --------------------------------------------------------------------------------------


def _catalog(
    writer: _Writer,
    scale: Scale,
    rng: random.Random,
    tag: str,
    teams: list[list[int]],
    user_ids: list[int],
) -> list[_DatasetInfo]:
    roles = {role.name: role.pk for role in DatasetRole.objects.filter(builtin=True)}
    everyone = UserGroup.objects.filter(is_everyone=True).values_list("pk", flat=True).first()

    source_base = _next_id(DataSource)
    sources = []
    for s in range(scale.data_sources):
        base = SOURCES[s % len(SOURCES)]
        name = base if s < len(SOURCES) else f"{base}_{s // len(SOURCES) + 1}"
        sources.append(
            DataSource(id=source_base + s, name=f"{name}{tag}", type=SOURCE_TYPES[base.split("_")[0]])
        )
    writer.insert(DataSource, sources, len(sources), "data sources")

    combos = [(schema, table) for schema in SCHEMAS for table in TABLES]
    dataset_base = _next_id(Dataset)
    used: list[set[str]] = [set() for _ in sources]
    infos: list[_DatasetInfo] = []
    datasets: list[Dataset] = []
    responsibilities: list[Responsibility] = []
    for d in range(scale.datasets):
        s = d % len(sources)
        schema, table = rng.choice(combos)
        name = f"{schema}.{table}"
        suffix = 2
        while name in used[s]:
            name = f"{schema}.{table}_v{suffix}"
            suffix += 1
        used[s].add(name)
        team = teams[rng.randrange(len(teams))]
        group_id, members = team[0], team[1:] or [rng.choice(user_ids)]
        manager = rng.choice(members)
        dataset_id = dataset_base + d
        datasets.append(
            Dataset(id=dataset_id, data_source_id=sources[s].pk, name=name, label=table, owner_id=manager)
        )
        infos.append(_DatasetInfo(dataset_id, table, s, sources[s].pk, members))
        responsibilities.append(
            Responsibility(dataset_id=dataset_id, role_id=roles["Manager"], user_id=manager)
        )
        responsibilities.append(
            Responsibility(dataset_id=dataset_id, role_id=roles["Editor"], group_id=group_id)
        )
        # Most datasets are visible to everyone; the rest only to their team and a few guests, so a
        # member's permission filter has real work to do.
        if everyone is not None and rng.random() < 0.7:
            responsibilities.append(
                Responsibility(dataset_id=dataset_id, role_id=roles["Viewer"], group_id=everyone)
            )
        elif rng.random() < 0.5:
            responsibilities.append(
                Responsibility(dataset_id=dataset_id, role_id=roles["Viewer"], user_id=rng.choice(user_ids))
            )
    writer.insert(Dataset, datasets, len(datasets), "datasets")
    writer.insert(Responsibility, responsibilities, len(responsibilities), "responsibilities")
    return infos


def _checks(
    writer: _Writer, scale: Scale, rng: random.Random, datasets: list[_DatasetInfo], start: dt.datetime
) -> tuple[list[_CheckInfo], list[bytearray]]:
    """Decide every check's outcomes day by day first, so checks carry their last outcome."""
    check_base = _next_id(Check)
    infos: list[_CheckInfo] = []
    outcomes: list[bytearray] = []
    rows: list[Check] = []
    for c in range(scale.checks):
        # Every dataset gets a check before any gets a second.
        d = c if c < len(datasets) else rng.randrange(len(datasets))
        kind = rng.randrange(len(CHECK_KINDS))
        column = rng.choice(COLUMNS)
        info = _CheckInfo(check_base + c, d, kind, column)
        infos.append(info)
        days = _outcome_days(rng, scale.days)
        outcomes.append(days)
        name_template, check_type, _ = CHECK_KINDS[kind]
        last_day = scale.days - 1
        rows.append(
            Check(
                id=info.id,
                dataset_id=datasets[d].id,
                identity=f"loadgen/{info.id}",
                name=name_template.format(col=column),
                column=column if "{col}" in name_template else "",
                check_type=check_type,
                source="soda",
                last_outcome=OUTCOME_OF[days[last_day]],
                last_result_at=_result_time(start, last_day, datasets[d].source_index),
            )
        )
    writer.insert(Check, rows, len(rows), "checks")
    return infos, outcomes


def _outcome_days(rng: random.Random, days: int) -> bytearray:
    """A check's outcome per day: mostly passing, failing in streaks, at a rate that varies by check."""
    p_break = rng.choices((0.01, 0.03, 0.08, 0.2), weights=(40, 30, 20, 10))[0]
    out = bytearray(days)
    day = 0
    while day < days:
        if rng.random() < p_break:
            bad = WARN if rng.random() < 0.45 else FAIL
            for _ in range(rng.randint(1, 4)):
                if day >= days:
                    break
                out[day] = bad
                day += 1
            continue
        out[day] = EXCLUDED if rng.random() < 0.005 else PASS
        day += 1
    return out


def _result_time(start: dt.datetime, day: int, source_index: int) -> dt.datetime:
    # Each data source scans at its own hour of the night.
    return start + dt.timedelta(days=day, hours=1 + source_index % 6, minutes=(source_index * 7) % 60)


def _results(
    writer: _Writer,
    scale: Scale,
    rng: random.Random,
    datasets: list[_DatasetInfo],
    checks: list[_CheckInfo],
    outcomes: list[bytearray],
    start: dt.datetime,
) -> int:
    """One scan per data source per day and one result per check per day; returns the first result id."""
    source_ids = {d.source_index: d.source_id for d in datasets}
    sources = sorted(source_ids)
    position = {s: p for p, s in enumerate(sources)}
    worst: dict[tuple[int, int], int] = {}
    for check, days in zip(checks, outcomes, strict=True):
        s = datasets[check.dataset_index].source_index
        for day, code in enumerate(days):
            if code in (WARN, FAIL) and worst.get((s, day), PASS) < code:
                worst[(s, day)] = code
    scan_base = _next_id(Scan)

    def scan_id(s: int, day: int) -> int:
        return scan_base + position[s] * scale.days + day

    def scans() -> Iterator[Scan]:
        for s in sources:
            for day in range(scale.days):
                at = _result_time(start, day, s)
                code = worst.get((s, day), PASS)
                yield Scan(
                    id=scan_id(s, day),
                    definition_name=f"{SOURCES[s % len(SOURCES)]}_nightly",
                    data_source_id=source_ids[s],
                    source="soda",
                    data_timestamp=at,
                    started_at=at,
                    ended_at=at + dt.timedelta(minutes=3),
                    has_warnings=code == WARN,
                    has_failures=code == FAIL,
                    state={
                        PASS: ScanState.COMPLETED,
                        WARN: ScanState.COMPLETED_WITH_WARNINGS,
                        FAIL: ScanState.COMPLETED_WITH_FAILURES,
                    }[code],
                    client="SodaCore/3.5.6",
                    created_at=at + dt.timedelta(minutes=3),
                )

    writer.insert(Scan, scans(), len(sources) * scale.days, "scans")
    ScanDataset = Scan.datasets.through
    writer.insert(
        ScanDataset,
        (
            ScanDataset(scan_id=scan_id(d.source_index, day), dataset_id=d.id)
            for d in datasets
            for day in range(scale.days)
        ),
        len(datasets) * scale.days,
        "scan datasets",
    )

    result_base = _next_id(CheckResult)

    def results() -> Iterator[CheckResult]:
        for c, (check, days) in enumerate(zip(checks, outcomes, strict=True)):
            dataset = datasets[check.dataset_index]
            for day, code in enumerate(days):
                at = _result_time(start, day, dataset.source_index)
                yield CheckResult(
                    id=result_base + c * scale.days + day,
                    check_ref_id=check.id,
                    dataset_id=dataset.id,
                    scan_id=scan_id(dataset.source_index, day),
                    outcome=OUTCOME_OF[code],
                    value=None
                    if code == EXCLUDED
                    else round(rng.uniform(0, 5) if code == PASS else rng.uniform(5, 500), 2),
                    data_timestamp=at,
                    created_at=at + dt.timedelta(minutes=3),
                )

    writer.insert(CheckResult, results(), scale.results, "check results")
    return result_base


# --- Incidents ------------------------------------------------------------------------------------


@dataclass
class _Planned:
    created_at: dt.datetime
    links: list[tuple[int, int]]  # (check index, day)


def _incidents(
    writer: _Writer,
    scale: Scale,
    rng: random.Random,
    datasets: list[_DatasetInfo],
    checks: list[_CheckInfo],
    outcomes: list[bytearray],
    result_base: int,
    start: dt.datetime,
    end: dt.datetime,
    admin_id: int,
) -> None:
    failing: list[tuple[int, int]] = []
    failing_by_day: dict[int, list[int]] = {}
    for c, days in enumerate(outcomes):
        for day, code in enumerate(days):
            if code in (WARN, FAIL):
                failing.append((c, day))
                failing_by_day.setdefault(day, []).append(c)
    if not failing:
        raise LoadgenRefused("No check failed at this scale; raise --days or --incidents.")

    # Each failure starts at most one incident until there are more incidents than failures.
    rng.shuffle(failing)
    plans: list[_Planned] = []
    for n in range(scale.incidents):
        c, day = failing[n % len(failing)]
        links = [(c, day)]
        # Carry on through the rest of the streak: later failures of the same check join the incident.
        for later in range(day + 1, min(day + rng.randint(1, 3), scale.days)):
            if outcomes[c][later] in (WARN, FAIL):
                links.append((c, later))
        # Some incidents span datasets: another check failing the same day elsewhere.
        if rng.random() < 0.12:
            other = rng.choice(failing_by_day[day])
            if checks[other].dataset_index != checks[c].dataset_index:
                links.append((other, day))
        first = _result_time(start, day, datasets[checks[c].dataset_index].source_index)
        created = min(first + dt.timedelta(minutes=rng.randint(10, 240)), end)
        plans.append(_Planned(created, links))
    plans.sort(key=lambda p: p.created_at)

    incident_base = _next_id(Incident)
    number_base = max(
        int(Incident.objects.aggregate(m=Max("number"))["m"] or 0),
        int(NumberSequence.objects.filter(name="incident").values_list("last_value", flat=True).first() or 0),
    )
    incident_rows: list[Incident] = []
    dataset_rows: list[IncidentDataset] = []
    link_rows: list[IncidentCheckResult] = []
    covered_rows: list[IncidentCheck] = []
    events: list[TimelineEvent] = []
    for i, plan in enumerate(plans):
        incident_id = incident_base + i
        first_check = checks[plan.links[0][0]]
        dataset = datasets[first_check.dataset_index]
        reporter = rng.choice(dataset.team) if rng.random() < 0.9 else admin_id
        lead = rng.choice(dataset.team)
        title = _title(rng, first_check, dataset)
        severity = rng.choices(SEVERITIES, weights=SEVERITY_WEIGHTS)[0]
        age = end - plan.created_at
        if age > dt.timedelta(days=14):
            status = Status.RESOLVED if rng.random() < 0.93 else rng.choice(OPEN_PROGRESSION)
        else:
            status = rng.choices((*OPEN_PROGRESSION, Status.RESOLVED), weights=(35, 25, 15, 25))[0]
        at = plan.created_at
        events.append(
            TimelineEvent(
                incident_id=incident_id, kind=EventKind.CREATED, actor_id=reporter, created_at=at, text=title
            )
        )
        seen_datasets: set[int] = set()
        covered: set[int] = set()
        for c, day in plan.links:
            result_id = result_base + c * scale.days + day
            link_rows.append(
                IncidentCheckResult(
                    incident_id=incident_id, check_result_id=result_id, added_by_id=reporter, added_at=at
                )
            )
            events.append(
                TimelineEvent(
                    incident_id=incident_id,
                    kind=EventKind.RESULT_ATTACHED,
                    actor_id=reporter,
                    created_at=at,
                    check_result_id=result_id,
                )
            )
            if checks[c].id not in covered:
                covered.add(checks[c].id)
                covered_rows.append(IncidentCheck(incident_id=incident_id, check_ref_id=checks[c].id))
            dataset_id = datasets[checks[c].dataset_index].id
            if dataset_id not in seen_datasets:
                seen_datasets.add(dataset_id)
                dataset_rows.append(IncidentDataset(incident_id=incident_id, dataset_id=dataset_id))
        version = 1
        path = (
            list(OPEN_PROGRESSION[: OPEN_PROGRESSION.index(status) + 1])
            if status != Status.RESOLVED
            else [
                *OPEN_PROGRESSION[: rng.randint(1, 3)],
                Status.RESOLVED,
            ]
        )
        notes = rng.choice(NOTES) if status == Status.RESOLVED else ""
        span = max((end - at).total_seconds(), 60.0)
        for old, new in pairwise(path):
            at = min(at + dt.timedelta(seconds=rng.uniform(0.02, 0.3) * span), end)
            span = max((end - at).total_seconds(), 60.0)
            if new == Status.RESOLVED:
                events.append(
                    TimelineEvent(
                        incident_id=incident_id,
                        kind=EventKind.CHANGED,
                        actor_id=lead,
                        created_at=at,
                        field="resolutionNotes",
                        old_value="",
                        new_value=notes,
                    )
                )
                version += 1
            events.append(
                TimelineEvent(
                    incident_id=incident_id,
                    kind=EventKind.CHANGED,
                    actor_id=lead,
                    created_at=at,
                    field="status",
                    old_value=str(old),
                    new_value=str(new),
                )
            )
            version += 1
        if rng.random() < 0.3:
            events.append(
                TimelineEvent(
                    incident_id=incident_id,
                    kind=EventKind.COMMENT,
                    actor_id=lead,
                    created_at=at,
                    text=rng.choice(COMMENTS),
                )
            )
        incident_rows.append(
            Incident(
                id=incident_id,
                number=number_base + 1 + i,
                title=title,
                description=f"{CHECK_KINDS[first_check.kind][0].format(col=first_check.column)} "
                f"failed on {dataset.table}.",
                severity=severity,
                status=status,
                lead_id=lead,
                reporter_id=reporter,
                created_at=plan.created_at,
                updated_at=at,
                resolved_at=at if status == Status.RESOLVED else None,
                resolution_notes=notes,
                version=version,
            )
        )
    writer.insert(Incident, incident_rows, len(incident_rows), "incidents")
    writer.insert(IncidentDataset, dataset_rows, len(dataset_rows), "incident datasets")
    writer.insert(IncidentCheckResult, link_rows, len(link_rows), "incident results")
    writer.insert(IncidentCheck, covered_rows, len(covered_rows), "incident checks")
    writer.insert(TimelineEvent, events, len(events), "timeline events")
    last = number_base + len(plans)
    NumberSequence.objects.update_or_create(name="incident", defaults={"last_value": last})


def _title(rng: random.Random, check: _CheckInfo, dataset: _DatasetInfo) -> str:
    title = rng.choice(CHECK_KINDS[check.kind][2]).format(col=check.column, ds=dataset.table)
    if rng.random() < 0.4:
        title += f" after {rng.choices(CAUSES, weights=CAUSE_WEIGHTS)[0]}"
    return title


def _reset_sequences() -> None:
    """Ids were chosen here; move PostgreSQL's sequences past them (SQLite tracks the maximum itself)."""
    written: list[type[models.Model]] = [
        User,
        UserGroup,
        UserGroup.members.through,
        DataSource,
        Dataset,
        Responsibility,
        Check,
        Scan,
        Scan.datasets.through,
        CheckResult,
        Incident,
        IncidentDataset,
        IncidentCheckResult,
        IncidentCheck,
        TimelineEvent,
    ]
    statements = connection.ops.sequence_reset_sql(no_style(), written)
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def describe(scale: Scale) -> str:
    return (
        f"{scale.incidents:,} incidents, {scale.users:,} users in {scale.teams:,} teams, "
        f"{scale.data_sources:,} data sources, {scale.datasets:,} datasets, {scale.checks:,} checks, "
        f"{scale.results:,} results over {scale.days} days"
    )
