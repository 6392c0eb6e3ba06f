# Title search backed by each database's full-text index (issue 6).
#
# SQLite: an FTS5 table over incidents_incident.title (external content: it stores only the index),
# kept in step by triggers in the writing transaction, filled from the existing rows here.
# Beware: SQLite migrations that rebuild incidents_incident (Django's "remake table" for most
# AlterField/RemoveField) drop these triggers; such a migration must create them again.
# PostgreSQL: a GIN index on to_tsvector('simple', title), built concurrently; nothing to keep in
# step since the index is maintained by PostgreSQL itself.
# Both split titles into words, lower-cased, without stemming or accent folding, so a search
# matches the same incidents on both.

from django.db import migrations

from quell.lib.migrations import RunSQLFor

FTS = "incidents_incident_title_fts"

SQLITE = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(title, content='incidents_incident', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON incidents_incident BEGIN "
    f"INSERT INTO {FTS}(rowid, title) VALUES (new.id, new.title); END",
    f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON incidents_incident BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, title) VALUES ('delete', old.id, old.title); END",
    f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF title ON incidents_incident "
    "WHEN old.title IS NOT new.title BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, title) VALUES ('delete', old.id, old.title); "
    f"INSERT INTO {FTS}(rowid, title) VALUES (new.id, new.title); END",
    f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
]
REVERSE_SQLITE = [
    f"DROP TRIGGER IF EXISTS {FTS}_insert",
    f"DROP TRIGGER IF EXISTS {FTS}_delete",
    f"DROP TRIGGER IF EXISTS {FTS}_update",
    f"DROP TABLE IF EXISTS {FTS}",
]
POSTGRESQL = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS incident_title_search ON incidents_incident "
    "USING gin (to_tsvector('simple'::regconfig, title))",
]
REVERSE_POSTGRESQL = ["DROP INDEX CONCURRENTLY IF EXISTS incident_title_search"]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("incidents", "0003_list_indexes"),
    ]

    operations = [
        RunSQLFor(
            sqlite=SQLITE,
            postgresql=POSTGRESQL,
            reverse_sqlite=REVERSE_SQLITE,
            reverse_postgresql=REVERSE_POSTGRESQL,
            description="Full-text index of incident titles",
        ),
    ]
