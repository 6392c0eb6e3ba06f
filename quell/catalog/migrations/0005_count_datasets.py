# Counts what 0004 added to each dataset from the rows, in one statement that locks the dataset rows
# (not the table: the previous release keeps reading and writing while it runs). The SQL is written
# out so that later changes to quell.catalog.counters cannot change what this migration does.

from django.db import migrations

# Each count grouped once over its table and joined to the datasets (a subquery per dataset had
# PostgreSQL scan every open incident once per dataset).
RECOUNT = (
    "UPDATE catalog_dataset SET check_count = v.checks, failing_check_count = v.failing, "
    "open_incident_count = v.open_incidents FROM ("
    "SELECT d.id AS id, COALESCE(c.checks, 0) AS checks, COALESCE(c.failing, 0) AS failing, "
    "COALESCE(o.n, 0) AS open_incidents FROM catalog_dataset d "
    "LEFT JOIN (SELECT dataset_id, COUNT(*) AS checks, "
    "SUM(CASE WHEN last_outcome IN ('warn', 'fail') THEN 1 ELSE 0 END) AS failing "
    "FROM catalog_check GROUP BY dataset_id) c ON c.dataset_id = d.id "
    "LEFT JOIN (SELECT x.dataset_id, COUNT(*) AS n FROM incidents_incidentdataset x "
    "JOIN incidents_incident i ON i.id = x.incident_id "
    "WHERE i.status IN ('reported', 'investigating', 'fixing') GROUP BY x.dataset_id) o ON o.dataset_id = d.id"
    ") v WHERE catalog_dataset.id = v.id"
)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0004_dataset_counters'),
        # The recount reads incidents and their datasets.
        ('incidents', '0006_everyone_and_severity_tallies'),
    ]

    operations = [
        migrations.RunSQL(RECOUNT, migrations.RunSQL.noop),
    ]
