"""Migrations added since the last release run while that release's processes are still serving.

An upgrade runs `quell migrate` first and restarts web and worker processes afterwards (docs/upgrades.md),
so every migration must leave a schema the previous release can still read and write (expand now,
contract a release later), and must not hold a long lock on a big table on PostgreSQL. The checker
below reads each new migration's operations against the project state before it; a rule may be
waived for one migration only by an entry in ALLOWED that says why it is safe.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.models import ModelOperation
from django.db.migrations.state import ModelState, ProjectState
from django.db.models.fields import NOT_PROVIDED

from quell.lib.migrations import AddIndexOnline, RunSQLFor

# The migration files of release 0.1.0 (git commit 02eeb6e): a database upgraded from it has exactly
# these applied. Hard-coded so the test needs no git; add the next release's files when it is cut.
RELEASE_MIGRATIONS: dict[str, list[str]] = {
    "accounts": ["0001_initial", "0002_builtins", "0003_login_failure", "0004_sample_settings"],
    "catalog": ["0001_initial", "0002_scans_samples_contracts_attributes"],
    "incidents": ["0001_initial"],
    "ingest": ["0001_initial"],
    "integrations": ["0001_initial"],
}
RELEASE = "0.1.0"

# Tables that grow with use (a row per result, event, task, ...): an index built or a constraint
# validated under lock there blocks writers for as long as the build takes.
BIG_TABLE_PREFIXES = ("incidents_", "django_tasks_database_")
BIG_TABLES = {
    "catalog_checkresult",
    "catalog_measurement",
    "catalog_scan",
    "catalog_scan_datasets",
    "catalog_failedrowssample",
    "integrations_event",
    "integrations_delivery",
    "integrations_deliveryattempt",
}

# Operations that change indexes and constraints without blocking writes on PostgreSQL.
ONLINE_ADD_INDEX = {"AddIndexOnline", "AddIndexConcurrently"}
ONLINE_REMOVE_INDEX = {"RemoveIndexOnline", "RemoveIndexConcurrently"}
ONLINE_ADD_CONSTRAINT = {"AddConstraintNotValid"}

# (app, migration, rule) -> why that migration may break the rule. Every entry needs its reason:
# e.g. a column dropped in the release AFTER the one that stopped reading it.
ALLOWED: dict[tuple[str, str, str], str] = {}


def is_big(table: str) -> bool:
    return table in BIG_TABLES or table.startswith(BIG_TABLE_PREFIXES)


@dataclass(frozen=True)
class Problem:
    app: str
    migration: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.app}.{self.migration}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Release:
    """What the previous release's code reads: its tables, and the columns of each."""

    tables: dict[str, set[str]]

    @classmethod
    def from_state(cls, state: ProjectState) -> Release:
        tables: dict[str, set[str]] = {}
        for (app, _), model in state.models.items():
            if model.options.get("proxy") or not model.options.get("managed", True):
                continue
            tables[table_of(app, model)] = {
                c for name, f in model.fields.items() if (c := column_of(name, f))
            }
            for name, f in model.fields.items():
                if f.many_to_many and not f.remote_field.through:
                    tables[f"{table_of(app, model)}_{name}"] = set()
        return cls(tables)

    def reads(self, table: str, column: str | None = None) -> bool:
        return table in self.tables and (column is None or column in self.tables[table])


def table_of(app: str, model: ModelState) -> str:
    return str(model.options.get("db_table") or f"{app}_{model.name_lower}")


def column_of(name: str, field: models.Field[Any, Any]) -> str | None:
    if field.many_to_many:
        return None
    if field.db_column:
        return str(field.db_column)
    return f"{name}_id" if field.many_to_one or field.one_to_one else name


def _check_constraint(name: str, field: models.Field[Any, Any]) -> str | None:
    """The CHECK a column of this field carries (PositiveIntegerField's `>= 0`, ...), if any."""
    bound = copy.copy(field)
    bound.set_attributes_from_name(name)
    return bound.db_check(connection)


def _model(state: ProjectState, app: str, model_name: str) -> ModelState:
    return state.models[app, model_name.lower()]


def _model_name_of(op: Operation) -> str | None:
    """The existing model an operation changes (None for CreateModel and model-less operations)."""
    if isinstance(op, migrations.CreateModel):
        return None
    if isinstance(op, migrations.RenameModel):
        return str(op.old_name)
    if isinstance(op, ModelOperation):
        return str(op.name)
    name = getattr(op, "model_name", None)
    return str(name) if name else None


class Checker:
    """The rules, applied to one migration's operations in order, each against the state before it."""

    def __init__(self, release: Release, allowed: dict[tuple[str, str, str], str] | None = None) -> None:
        self.release = release
        self.allowed = ALLOWED if allowed is None else allowed

    def check(self, migration: migrations.Migration, state: ProjectState) -> list[Problem]:
        """Problems of `migration` applied to `state` (which this advances past the migration)."""
        found: list[Problem] = []
        for operation in migration.operations:
            for rule, message in self._operation(migration, operation, state):
                if (migration.app_label, migration.name, rule) not in self.allowed:
                    found.append(Problem(migration.app_label, migration.name, rule, message))
            operation.state_forwards(migration.app_label, state)
        return found

    def _operation(
        self, migration: migrations.Migration, op: Operation, state: ProjectState
    ) -> Iterable[tuple[str, str]]:
        app = migration.app_label
        kind = type(op).__name__
        if isinstance(op, migrations.SeparateDatabaseAndState):
            # Only the database operations touch the schema; their state is the migration's own.
            scratch = state.clone()
            for inner in op.database_operations:
                yield from self._operation(migration, inner, scratch)
                inner.state_forwards(app, scratch)
            return
        if isinstance(op, migrations.RunSQL):
            yield from self._sql(op)
            return
        name = _model_name_of(op)
        if name is None or (app, name.lower()) not in state.models:
            return
        model = _model(state, app, name)
        table = table_of(app, model)
        released = self.release.reads(table)
        big = released and is_big(table)

        if isinstance(op, migrations.AddIndex) and big:
            if kind not in ONLINE_ADD_INDEX:
                yield (
                    "index-under-lock",
                    f"{kind} {op.index.name} on {table} builds the index under a lock that blocks writes "
                    "on PostgreSQL: use quell.lib.migrations.AddIndexOnline in a migration with atomic = False.",
                )
            elif migration.atomic:
                yield (
                    "concurrent-index-in-transaction",
                    f"{kind} {op.index.name} needs atomic = False: CREATE INDEX CONCURRENTLY cannot run in a transaction.",
                )
        elif isinstance(op, migrations.RemoveIndex) and big:
            if kind not in ONLINE_REMOVE_INDEX:
                yield (
                    "drop-index-under-lock",
                    f"{kind} {op.name} on {table} takes an exclusive lock on PostgreSQL: use "
                    "quell.lib.migrations.RemoveIndexOnline in a migration with atomic = False.",
                )
            elif migration.atomic:
                yield (
                    "concurrent-index-in-transaction",
                    f"{kind} {op.name} needs atomic = False: DROP INDEX CONCURRENTLY cannot run in a transaction.",
                )
        elif isinstance(op, migrations.AddConstraint) and big and kind not in ONLINE_ADD_CONSTRAINT:
            constraint = op.deconstruct()[2]["constraint"]
            yield (
                "constraint-under-lock",
                f"{kind} {constraint.name} on {table} builds or validates it under a lock that blocks "
                "writes: add a unique index with AddIndexOnline, or a check with AddConstraintNotValid.",
            )
        elif isinstance(op, migrations.AlterUniqueTogether | migrations.AlterIndexTogether) and big:
            yield ("index-under-lock", f"{kind} on {table} builds indexes under lock: use AddIndexOnline.")
        elif isinstance(op, migrations.AddField):
            yield from self._add_field(op, table, released, big)
        elif isinstance(op, migrations.RemoveField) and released:
            column = column_of(op.name, model.fields[op.name])
            through = f"{table}_{op.name}"
            if (column and self.release.reads(table, column)) or (
                column is None and self.release.reads(through)
            ):
                yield (
                    "drops-released-column",
                    f"RemoveField {model.name}.{op.name}: release {RELEASE} still reads "
                    f"{table}.{column or op.name}; stop reading it in one release and drop it in the next.",
                )
        elif isinstance(op, migrations.RenameField) and released:
            old = column_of(op.old_name, model.fields[op.old_name])
            new = column_of(op.new_name, model.fields[op.old_name])
            if old and old != new and self.release.reads(table, old):
                yield (
                    "renames-released-column",
                    f"RenameField {model.name}.{op.old_name}: release {RELEASE} reads {table}.{old}; "
                    "add the new field, write both, and drop the old one a release later (or keep db_column).",
                )
        elif isinstance(op, migrations.AlterField) and released:
            yield from self._alter_field(app, model, op, table, state, big)
        elif isinstance(op, migrations.DeleteModel) and released:
            yield ("drops-released-table", f"DeleteModel {op.name}: release {RELEASE} reads {table}.")
        elif isinstance(op, migrations.RenameModel) and released:
            if not model.options.get("db_table"):
                yield (
                    "renames-released-table",
                    f"RenameModel {op.old_name}: its table {table} is renamed, which release {RELEASE} "
                    "reads; set Meta.db_table to keep it.",
                )
        elif isinstance(op, migrations.AlterModelTable) and released and (op.table or "") != table:
            yield ("renames-released-table", f"AlterModelTable {op.name}: release {RELEASE} reads {table}.")

    def _add_field(
        self, op: migrations.AddField, table: str, released: bool, big: bool
    ) -> Iterable[tuple[str, str]]:
        field = op.field
        if field.many_to_many or not released:
            return
        if not field.null and field.db_default is NOT_PROVIDED:
            yield (
                "not-null-without-db-default",
                f"AddField {op.model_name}.{op.name} is NOT NULL without db_default: release {RELEASE} "
                f"inserts into {table} without it and fails. Give it db_default= (or null=True).",
            )
        if big and _check_constraint(op.name, field):
            yield (
                "constraint-under-lock",
                f"AddField {op.model_name}.{op.name} on {table} adds a CHECK constraint, which PostgreSQL "
                "verifies by scanning the table under an exclusive lock: use a field without one "
                "(IntegerField with a validator instead of PositiveIntegerField).",
            )
        # A foreign key without a database constraint (db_constraint=False) and without an index
        # is a plain column: nothing to validate or build.
        validated = field.is_relation and getattr(field, "db_constraint", True)
        if big and (getattr(field, "db_index", False) or field.unique or validated):
            yield (
                "index-under-lock",
                f"AddField {op.model_name}.{op.name} on {table} builds an index (or validates a foreign "
                "key) under lock: add the plain column, then its index with AddIndexOnline.",
            )

    def _alter_field(
        self,
        app: str,
        model: ModelState,
        op: migrations.AlterField,
        table: str,
        state: ProjectState,
        big: bool,
    ) -> Iterable[tuple[str, str]]:
        before = model.fields[op.name]
        old_column = column_of(op.name, before)
        if old_column is None or not self.release.reads(table, old_column):
            return
        new_column = column_of(op.name, op.field)
        if new_column != old_column:
            yield (
                "renames-released-column",
                f"AlterField {model.name}.{op.name} renames {table}.{old_column}, which release {RELEASE} reads.",
            )
        after_state = state.clone()
        op.state_forwards(app, after_state)
        old_type = state.apps.get_model(app, model.name)._meta.get_field(op.name).db_parameters(connection)
        new_type = (
            after_state.apps.get_model(app, model.name)._meta.get_field(op.name).db_parameters(connection)
        )
        if old_type["type"] != new_type["type"]:
            yield (
                "changes-released-column-type",
                f"AlterField {model.name}.{op.name} changes {table}.{old_column} from {old_type['type']} to "
                f"{new_type['type']}: old processes read the old type, and PostgreSQL may rewrite the table "
                "under lock. Add a new column instead.",
            )
        if before.null and not op.field.null:
            yield (
                "makes-released-column-not-null",
                f"AlterField {model.name}.{op.name} makes {table}.{old_column} NOT NULL: release {RELEASE} "
                "may still write NULL, and PostgreSQL scans the table under lock to check.",
            )
        if big and (
            (getattr(op.field, "db_index", False) and not getattr(before, "db_index", False))
            or (op.field.unique and not before.unique)
        ):
            yield (
                "index-under-lock",
                f"AlterField {model.name}.{op.name} adds an index on {table} under lock: use AddIndexOnline.",
            )

    def _sql(self, op: migrations.RunSQL) -> Iterable[tuple[str, str]]:
        if isinstance(op, RunSQLFor):
            statements = [s for vendor in op.per_vendor.values() for s in vendor]
        else:
            statements = _statements(op.sql)
        for statement in statements:
            for rule, message in self.sql_problems(statement):
                yield rule, f"RunSQL: {message}"

    def sql_problems(self, sql: str) -> Iterable[tuple[str, str]]:
        """What a SQL statement does that old processes or writers on a big table would suffer from."""
        lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
        text = " ".join(" ".join(lines).split())
        for statement in filter(None, (s.strip() for s in text.split(";"))):
            index = CREATE_INDEX.search(statement)
            if index and not index.group("concurrently") and self._big_released(index.group("table")):
                yield "index-under-lock", f"`{statement}` builds an index without CONCURRENTLY."
            alter = ALTER_TABLE.search(statement)
            if alter and self.release.reads(table := _unquote(alter.group("table"))):
                action = alter.group("action")
                # Columns added since the release (earlier in the same migration, say) are free to change.
                retyped, dropped = ALTER_TYPE.search(action), DROP_COLUMN.search(action)
                made_not_null = SET_NOT_NULL.search(action)
                if retyped and self.release.reads(table, _unquote(retyped.group("column"))):
                    yield "changes-released-column-type", f"`{statement}` changes a column's type."
                elif made_not_null and self.release.reads(table, _unquote(made_not_null.group("column"))):
                    yield "makes-released-column-not-null", f"`{statement}` makes a released column NOT NULL."
                elif dropped and self.release.reads(table, _unquote(dropped.group("column"))):
                    yield "drops-released-column", f"`{statement}` drops a column release {RELEASE} reads."
                elif RENAME.search(action):
                    yield "renames-released-column", f"`{statement}` renames what release {RELEASE} reads."
                elif is_big(table) and ADD_CONSTRAINT.search(action) and "NOT VALID" not in action.upper():
                    yield "constraint-under-lock", f"`{statement}` validates a constraint under lock."
                elif is_big(table) and ADD_COLUMN_CHECK.search(action):
                    yield (
                        "constraint-under-lock",
                        f"`{statement}` adds a CHECK, verified by a scan under lock.",
                    )

    def _big_released(self, quoted: str) -> bool:
        table = _unquote(quoted)
        return self.release.reads(table) and is_big(table)


CREATE_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?P<concurrently>CONCURRENTLY\s+)?.*?\bON\s+(?:ONLY\s+)?(?P<table>[\w.\"]+)",
    re.IGNORECASE,
)
ALTER_TABLE = re.compile(
    r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<table>[\w.\"]+)\s+(?P<action>.*)", re.IGNORECASE
)
ALTER_TYPE = re.compile(
    r"\bALTER\s+(?:COLUMN\s+)?(?P<column>[\w\"]+)\s+(?:SET\s+DATA\s+)?TYPE\b", re.IGNORECASE
)
SET_NOT_NULL = re.compile(r"\bALTER\s+(?:COLUMN\s+)?(?P<column>[\w\"]+)\s+SET\s+NOT\s+NULL\b", re.IGNORECASE)
# Actions of their own (at the start or after a comma), not ALTER COLUMN x DROP DEFAULT / DROP NOT NULL.
DROP_COLUMN = re.compile(
    r"(?:^|,)\s*DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?"
    r"(?!CONSTRAINT\b|DEFAULT\b|NOT\b|EXPRESSION\b|IDENTITY\b)(?P<column>[\w\"]+)",
    re.IGNORECASE,
)
RENAME = re.compile(r"(?:^|,)\s*RENAME\b(?!\s+CONSTRAINT\b)", re.IGNORECASE)
ADD_CONSTRAINT = re.compile(
    r"\bADD\s+CONSTRAINT\b.*\b(?:UNIQUE|FOREIGN\s+KEY|CHECK|PRIMARY\s+KEY)\b", re.IGNORECASE
)


ADD_COLUMN_CHECK = re.compile(r"\bADD\s+(?:COLUMN\s+)?.*\bCHECK\s*\(", re.IGNORECASE)


def _unquote(name: str) -> str:
    return name.split(".")[-1].strip('"')


def _statements(sql: Any) -> list[str]:
    if sql is migrations.RunSQL.noop or sql is None:
        return []
    if isinstance(sql, str):
        return [sql]
    return [item[0] if isinstance(item, list | tuple) else item for item in sql]


# --- The project's migrations ---------------------------------------------------------------------


def release_nodes() -> list[tuple[str, str]]:
    return [(app, names[-1]) for app, names in RELEASE_MIGRATIONS.items()]


def quell_apps(loader: MigrationLoader) -> set[str]:
    return {
        app for app, _ in loader.disk_migrations if django_apps.get_app_config(app).name.startswith("quell.")
    }


def new_migrations(loader: MigrationLoader) -> list[migrations.Migration]:
    """Quell's migrations an upgrade from the release applies, in the order `migrate` runs them."""
    released = {(app, name) for app, names in RELEASE_MIGRATIONS.items() for name in names}
    apps = quell_apps(loader)
    leaves = [node for node in loader.graph.leaf_nodes() if node[0] in apps]
    plan: list[tuple[str, str]] = []
    for leaf in leaves:
        plan += [n for n in loader.graph.forwards_plan(leaf) if n not in plan]
    return [loader.graph.nodes[n] for n in plan if n[0] in apps and n not in released]


@pytest.fixture(scope="module")
def loader() -> MigrationLoader:
    return MigrationLoader(None, ignore_no_migrations=True)


@pytest.fixture(scope="module")
def release(loader: MigrationLoader) -> Release:
    return Release.from_state(loader.project_state(release_nodes(), at_end=True))


def test_the_release_list_names_migrations_that_exist(loader: MigrationLoader) -> None:
    missing = [
        f"{app}.{name}"
        for app, names in RELEASE_MIGRATIONS.items()
        for name in names
        if (app, name) not in loader.disk_migrations
    ]
    assert not missing, f"release {RELEASE}'s migrations were renamed or removed: {missing}"


def test_the_release_reads_the_tables_upgrades_must_keep(release: Release) -> None:
    assert release.reads("incidents_incident", "number")
    assert release.reads("catalog_checkresult", "check_id")
    assert release.reads("catalog_scan_datasets")
    assert not release.reads("ops_workerheartbeat")


def test_every_migration_since_the_release_is_safe_while_the_release_serves(
    loader: MigrationLoader, release: Release
) -> None:
    checker = Checker(release)
    problems: list[Problem] = []
    for migration in new_migrations(loader):
        state = loader.project_state((migration.app_label, migration.name), at_end=False)
        problems += checker.check(migration, state)
    assert not problems, (
        "Migrations that are not safe during an upgrade (see docs/upgrades.md):\n"
        + "\n".join(str(p) for p in problems)
    )


def test_allowances_name_migrations_that_exist_and_say_why(loader: MigrationLoader) -> None:
    for (app, name, rule), why in ALLOWED.items():
        assert (app, name) in loader.disk_migrations, f"ALLOWED names a missing migration {app}.{name}"
        assert len(why.split()) >= 5, f"ALLOWED[{app}, {name}, {rule}] must say why it is safe"


def test_the_models_need_no_migration_that_is_not_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUELL_")}
    env["QUELL_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "quell", "makemigrations", "--check", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"makemigrations would write:\n{done.stdout}{done.stderr}"


# --- The checker itself, on migrations made up for the purpose -------------------------------------


def fake(app: str, *operations: Operation, atomic: bool = True) -> migrations.Migration:
    made_up = type("Migration", (migrations.Migration,), {"operations": list(operations), "atomic": atomic})
    return made_up("0999_fake", app)


@pytest.fixture
def at_release(loader: MigrationLoader) -> ProjectState:
    return loader.project_state(release_nodes(), at_end=True)


def rules(release: Release, migration: migrations.Migration, state: ProjectState, **kw: Any) -> list[str]:
    return [p.rule for p in Checker(release, **kw).check(migration, state)]


def test_a_plain_add_index_on_a_big_table_is_refused(release: Release, at_release: ProjectState) -> None:
    index = models.Index(fields=["title"], name="incident_title")
    migration = fake("incidents", migrations.AddIndex("incident", index))
    assert rules(release, migration, at_release) == ["index-under-lock"]


def test_an_online_add_index_in_a_non_atomic_migration_passes(
    release: Release, at_release: ProjectState
) -> None:
    index = models.Index(fields=["title"], name="incident_title")
    migration = fake("incidents", AddIndexOnline("incident", index), atomic=False)
    assert rules(release, migration, at_release) == []


def test_an_online_add_index_inside_a_transaction_is_refused(
    release: Release, at_release: ProjectState
) -> None:
    index = models.Index(fields=["title"], name="incident_title")
    migration = fake("incidents", AddIndexOnline("incident", index))
    assert rules(release, migration, at_release) == ["concurrent-index-in-transaction"]


def test_a_plain_add_index_on_a_small_table_passes(release: Release, at_release: ProjectState) -> None:
    index = models.Index(fields=["name"], name="datasource_by_name")
    migration = fake("catalog", migrations.AddIndex("datasource", index))
    assert rules(release, migration, at_release) == []


def test_a_unique_constraint_on_a_big_table_is_refused(release: Release, at_release: ProjectState) -> None:
    constraint = models.UniqueConstraint(fields=["title"], name="incident_title_once")
    migration = fake("incidents", migrations.AddConstraint("incident", constraint))
    assert rules(release, migration, at_release) == ["constraint-under-lock"]


def test_a_not_null_field_needs_a_database_default(release: Release, at_release: ProjectState) -> None:
    without = fake(
        "accounts", migrations.AddField("organization", "motto", models.CharField(max_length=50, default=""))
    )
    with_db_default = fake(
        "accounts",
        migrations.AddField("organization", "motto", models.CharField(max_length=50, db_default="")),
    )
    nullable = fake(
        "accounts", migrations.AddField("organization", "motto", models.CharField(max_length=50, null=True))
    )
    assert rules(release, without, at_release.clone()) == ["not-null-without-db-default"]
    assert rules(release, with_db_default, at_release.clone()) == []
    assert rules(release, nullable, at_release.clone()) == []


def test_a_checked_column_added_to_a_big_table_is_refused(release: Release, at_release: ProjectState) -> None:
    checked = fake(
        "incidents", migrations.AddField("incident", "reopened", models.PositiveIntegerField(null=True))
    )
    plain = fake("incidents", migrations.AddField("incident", "reopened", models.IntegerField(null=True)))
    on_small = fake(
        "accounts", migrations.AddField("organization", "seats", models.PositiveIntegerField(null=True))
    )
    assert rules(release, checked, at_release.clone()) == ["constraint-under-lock"]
    assert rules(release, plain, at_release.clone()) == []
    assert rules(release, on_small, at_release.clone()) == []
    sql = 'ALTER TABLE "incidents_incident" ADD COLUMN "reopened" integer NULL CHECK ("reopened" >= 0)'
    assert [rule for rule, _ in Checker(release).sql_problems(sql)] == ["constraint-under-lock"]


def test_a_foreign_key_added_to_a_big_table_is_refused(release: Release, at_release: ProjectState) -> None:
    field: models.ForeignKey[Any, Any] = models.ForeignKey(
        "catalog.Dataset", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    migration = fake("incidents", migrations.AddField("incident", "primary_dataset", field))
    assert rules(release, migration, at_release) == ["index-under-lock"]


def test_dropping_or_renaming_what_the_release_reads_is_refused(
    release: Release, at_release: ProjectState
) -> None:
    assert rules(
        release, fake("incidents", migrations.RemoveField("incident", "title")), at_release.clone()
    ) == ["drops-released-column"]
    assert rules(
        release,
        fake("incidents", migrations.RenameField("incident", "title", "headline")),
        at_release.clone(),
    ) == ["renames-released-column"]
    assert rules(release, fake("ingest", migrations.DeleteModel("sodatoken")), at_release.clone()) == [
        "drops-released-table"
    ]
    assert rules(
        release, fake("ingest", migrations.RenameModel("SodaToken", "Token")), at_release.clone()
    ) == ["renames-released-table"]


def test_dropping_a_field_from_the_models_only_passes(release: Release, at_release: ProjectState) -> None:
    # The first half of a contract: the column stays for the release that still reads it (a real
    # migration also makes it nullable first, so that this release's inserts may leave it out).
    migration = fake(
        "incidents",
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField("incident", "description")]
        ),
    )
    assert rules(release, migration, at_release) == []


def test_dropping_a_field_added_since_the_release_passes(release: Release, at_release: ProjectState) -> None:
    migration = fake(
        "accounts",
        migrations.AddField("organization", "motto", models.CharField(max_length=50, null=True)),
        migrations.RemoveField("organization", "motto"),
    )
    assert rules(release, migration, at_release) == []


def test_changing_a_released_columns_type_is_refused(release: Release, at_release: ProjectState) -> None:
    migration = fake("incidents", migrations.AlterField("incident", "title", models.TextField()))
    assert "changes-released-column-type" in rules(release, migration, at_release)


def test_indexing_a_released_column_of_a_big_table_in_place_is_refused(
    release: Release, at_release: ProjectState
) -> None:
    migration = fake(
        "incidents",
        migrations.AlterField("incident", "title", models.CharField(max_length=300, db_index=True)),
    )
    assert rules(release, migration, at_release) == ["index-under-lock"]


def test_an_allowance_waives_one_rule_of_one_migration(release: Release, at_release: ProjectState) -> None:
    migration = fake("incidents", migrations.RemoveField("incident", "title"))
    allowed = {("incidents", "0999_fake", "drops-released-column"): "release 0.1.0 stopped reading it"}
    assert rules(release, migration, at_release, allowed=allowed) == []


def test_raw_sql_is_read_for_locking_index_builds_and_type_changes(
    release: Release, at_release: ProjectState
) -> None:
    locking = fake("incidents", migrations.RunSQL('CREATE INDEX "i_title" ON "incidents_incident" ("title")'))
    online = fake(
        "incidents",
        migrations.RunSQL('CREATE INDEX CONCURRENTLY "i_title" ON "incidents_incident" ("title")'),
        atomic=False,
    )
    retyping = fake(
        "incidents",
        RunSQLFor(postgresql=['ALTER TABLE "incidents_incident" ALTER COLUMN "title" TYPE text']),
    )
    assert rules(release, locking, at_release.clone()) == ["index-under-lock"]
    assert rules(release, online, at_release.clone()) == []
    assert rules(release, retyping, at_release.clone()) == ["changes-released-column-type"]


def test_raw_sql_may_change_columns_added_since_the_release_but_not_released_ones(
    release: Release, at_release: ProjectState
) -> None:
    checker = Checker(release)
    new_column = 'ALTER TABLE "incidents_incident" ALTER COLUMN "triage_note" SET NOT NULL'
    released = 'ALTER TABLE "incidents_incident" ALTER COLUMN "title" SET NOT NULL'
    dropped = 'ALTER TABLE "incidents_incident" DROP COLUMN "title" CASCADE'
    default_dropped = 'ALTER TABLE "incidents_incident" ALTER COLUMN "title" DROP DEFAULT'
    assert [rule for rule, _ in checker.sql_problems(new_column)] == []
    assert [rule for rule, _ in checker.sql_problems(released)] == ["makes-released-column-not-null"]
    assert [rule for rule, _ in checker.sql_problems(dropped)] == ["drops-released-column"]
    assert [rule for rule, _ in checker.sql_problems(default_dropped)] == []


# --- PostgreSQL: the SQL `migrate` would run --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_new_migrations_sql_takes_no_long_locks(
    loader: MigrationLoader, release: Release
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the SQL of concurrent index builds is PostgreSQL's; this suite runs on SQLite")
    checker = Checker(release)
    problems: list[str] = []
    for migration in new_migrations(loader):
        out = StringIO()
        call_command("sqlmigrate", migration.app_label, migration.name, stdout=out)
        for rule, message in checker.sql_problems(out.getvalue()):
            if (migration.app_label, migration.name, rule) not in ALLOWED:
                problems.append(f"{migration.app_label}.{migration.name}: [{rule}] {message}")
    assert not problems, "\n".join(problems)
