# Counts kept on each dataset (quell.catalog.counters): its checks, its checks failing now and its
# open incidents, with an index of the datasets that fail without an open incident (issue 6: the
# home page probed 2,000 failing datasets for an open incident on every view at 1,000,000
# incidents). The counts are computed from the rows here; the SQL is written out so that later
# changes to the module cannot change what this migration does.

from django.db import migrations, models

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
        ('catalog', '0003_index_results_by_arrival'),
        # The recount reads incidents and their datasets.
        ('incidents', '0006_everyone_and_severity_tallies'),
    ]

    operations = [
        migrations.AddField(
            model_name='dataset',
            name='check_count',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='dataset',
            name='failing_check_count',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='dataset',
            name='open_incident_count',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddIndex(
            model_name='dataset',
            index=models.Index(condition=models.Q(('failing_check_count__gt', 0), ('open_incident_count', 0)), fields=['-failing_check_count'], name='dataset_failing_unattended'),
        ),
        migrations.RunSQL(RECOUNT, migrations.RunSQL.noop),
    ]
