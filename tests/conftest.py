"""Shared fixtures: a small organisation with one user per role, and HTTP clients against a live server.

The world, by name:
- alice: global admin
- mallory? no: roles are named for what they do: `manager`, `editor`, `viewer` on the private dataset
  `warehouse/orders`; `outsider` holds nothing on it; everyone may view `warehouse/customers`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from django.conf import LazySettings
from django.db import connection

from quell.accounts import builtins
from quell.accounts.models import (
    ApiKey,
    DatasetRole,
    GlobalRole,
    Organization,
    Responsibility,
    User,
    UserGroup,
)
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult, Dataset

T0 = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True, scope="session")
def _check_api_responses() -> None:
    """Every answer built from rows (quell.api.base.rows_response) is checked against its schema,
    in this process and in the server processes tests start."""
    from django.conf import settings

    os.environ["QUELL_API_CHECK_RESPONSES"] = "1"
    settings.API_CHECK_RESPONSES = True


@pytest.fixture(autouse=True)
def _fast_passwords(settings: LazySettings) -> None:
    # Argon2 is right for real logins and needlessly slow for hundreds of test users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _empty_postgresql_tables_by_delete() -> Iterator[None]:
    """After each live-server test Django empties every table. On PostgreSQL it does so with one TRUNCATE,
    which gives each table and index new files: 0.2 s a test, over ~800 tests. A DELETE per table takes
    a few milliseconds on a test's rows and leaves the same empty tables, as long as no trigger fires on
    a delete and every foreign key is checked at commit, as Django makes them; where the schema says
    otherwise, the TRUNCATE stays."""
    if connection.vendor != "postgresql":
        yield
        return
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations,
        style: Any,
        tables: Sequence[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if reset_sequences or allow_cascade or not _deletes_in_any_order(self.connection):
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(t))};" for t in tables]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


def _deletes_in_any_order(db: Any) -> bool:
    """No trigger of ours in the schema, and no foreign key checked before the commit."""
    with db.cursor() as cursor:
        cursor.execute(
            """
            SELECT
                (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace)
              + (SELECT count(*) FROM pg_constraint k
                 WHERE k.contype = 'f' AND NOT k.condeferred
                   AND k.connamespace = current_schema()::regnamespace)
            """
        )
        (blocking,) = cursor.fetchone()
    return blocking == 0


@pytest.fixture
def builtin_rows(db: None) -> None:
    """The rows the data migration makes; a flush by an earlier live-server test removes them."""
    builtins.ensure(DatasetRole, UserGroup, Organization)


@dataclass
class World:
    admin: User
    manager: User
    editor: User
    viewer: User
    outsider: User
    orders: Dataset
    customers: Dataset
    orders_fail: CheckResult
    orders_warn: CheckResult
    orders_pass: CheckResult
    orders_fail_2: CheckResult
    customers_fail: CheckResult
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def role(self, name: str) -> DatasetRole:
        return DatasetRole.objects.get(name=name)

    def user(self, name: str) -> User:
        user = getattr(self, name)
        assert isinstance(user, User)
        return user


def make_user(email: str, *, admin: bool = False) -> User:
    role = GlobalRole.ADMIN if admin else GlobalRole.USER
    return User.objects.create_user(email, "pw-for-tests", name=email.split("@")[0].title(), global_role=role)


def push(
    by: User, data_source: str, dataset: str, *results: tuple[str, str, float | None], at: dt.datetime = T0
) -> list[CheckResult]:
    """Ingest one scan of (check name, outcome, value) results, of data time `at`, and return them in order."""
    _, stored = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=at,
            results=[
                catalog_ingest.ResultInput(
                    data_source=data_source,
                    dataset=dataset,
                    check=catalog_ingest.CheckInput(name=name),
                    outcome=outcome,
                    value=value,
                )
                for name, outcome, value in results
            ],
        ),
        by=by,
    )
    return stored


@pytest.fixture
def world(builtin_rows: None) -> World:
    admin = make_user("alice@example.com", admin=True)
    manager = make_user("manager@example.com")
    editor = make_user("editor@example.com")
    viewer = make_user("viewer@example.com")
    outsider = make_user("outsider@example.com")

    orders_fail, orders_warn, orders_pass, orders_fail_2 = push(
        admin,
        "warehouse",
        "orders",
        ("row_count > 0", "fail", 0),
        ("missing_count(id) = 0", "warn", 3),
        ("duplicate_count(id) = 0", "pass", 0),
        ("freshness(updated_at) < 1d", "fail", 30),
    )
    (customers_fail,) = push(admin, "warehouse", "customers", ("row_count > 10", "fail", 2))
    orders = orders_fail.dataset
    # orders is private: only the three named users hold roles on it.
    Responsibility.objects.filter(dataset=orders).delete()
    for user, role in ((manager, "Manager"), (editor, "Editor"), (viewer, "Viewer")):
        Responsibility.objects.create(dataset=orders, user=user, role=DatasetRole.objects.get(name=role))

    w = World(
        admin=admin,
        manager=manager,
        editor=editor,
        viewer=viewer,
        outsider=outsider,
        orders=orders,
        customers=customers_fail.dataset,
        orders_fail=orders_fail,
        orders_warn=orders_warn,
        orders_pass=orders_pass,
        orders_fail_2=orders_fail_2,
        customers_fail=customers_fail,
    )
    for name in ("admin", "manager", "editor", "viewer", "outsider"):
        key, secret = ApiKey.issue(w.user(name))
        w.keys[name] = (key.key_id, secret)
    return w


ClientFor = Callable[[str], httpx.Client]


@pytest.fixture
def client_for(live_server: object, world: World) -> Iterator[ClientFor]:
    """`client_for("editor")` is an httpx client for the live server, authenticated with that user's key.

    "anonymous" sends no credentials and "badkey" sends a key that does not exist.
    """
    clients: list[httpx.Client] = []
    base = f"{live_server.url}/api/v1"  # type: ignore[attr-defined]

    def make(name: str) -> httpx.Client:
        if name == "anonymous":
            auth = None
        elif name == "badkey":
            auth = httpx.BasicAuth("no-such-key", "no-such-secret")
        else:
            auth = httpx.BasicAuth(*world.keys[name])
        client = httpx.Client(base_url=base, auth=auth, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- Tests that run on SQLite only ------------------------------------------------------------------

# Why a test marked `one_database` runs on SQLite alone: the default (a browser test), or one of these.
BROWSER_ADDS_NOTHING = "runs on SQLite only: the browser path adds nothing on PostgreSQL"
OWN_SQLITE_DATA_DIR = (
    "runs on SQLite only: its `quell` processes use a SQLite data directory of their own, "
    "whichever database the suite uses"
)
COMMAND_LINE_ONLY = (
    "runs on SQLite only: a command's options, help and settings checks add nothing on PostgreSQL"
)
_LEFT_OUT = pytest.StashKey[dict[str, int]]()


# Last, so the count is of the tests -k and -m left.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Away from SQLite, deselect the tests marked `one_database`: what they check does not depend on the
    database (a page's layout or focus in a browser, a command's help, `quell` processes on a SQLite
    data directory of their own), and SQLite, the default installation, runs them. Deselected rather than
    skipped, so a run says so in one line per reason instead of one line per test; `-m one_database`
    (or any -m naming the marker) leaves the choice to the caller."""
    if connection.vendor == "sqlite" or "one_database" in (config.option.markexpr or ""):
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    reasons: dict[str, int] = {}
    for item in items:
        marker = item.get_closest_marker("one_database")
        if marker is None:
            kept.append(item)
            continue
        left_out.append(item)
        reason = str(marker.kwargs.get("reason", BROWSER_ADDS_NOTHING))
        reasons[reason] = reasons.get(reason, 0) + 1
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
        config.stash[_LEFT_OUT] = reasons


# Last, so the lines stand next to the run's summary rather than above the slowest durations.
@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for reason, count in sorted(config.stash.get(_LEFT_OUT, {}).items()):
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"one_database: {count} {tests} deselected on {connection.display_name} ({reason})"
        )
