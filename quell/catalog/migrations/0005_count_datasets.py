# Counts what 0004 added to each dataset from the rows, in one statement that locks the dataset rows
# (not the table: the previous release keeps reading and writing while it runs). The SQL is written
# out so that later changes to quell.catalog.counters cannot change what this migration does.

from django.db import migrations

RECOUNT = (
    "UPDATE catalog_dataset SET "
    "check_count = (SELECT COUNT(*) FROM catalog_check c WHERE c.dataset_id = catalog_dataset.id), "
    "failing_check_count = (SELECT COUNT(*) FROM catalog_check c "
    "WHERE c.dataset_id = catalog_dataset.id AND c.last_outcome IN ('warn', 'fail')), "
    "open_incident_count = (SELECT COUNT(*) FROM incidents_incidentdataset x "
    "JOIN incidents_incident i ON i.id = x.incident_id WHERE x.dataset_id = catalog_dataset.id "
    "AND i.status IN ('reported', 'investigating', 'fixing'))"
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
