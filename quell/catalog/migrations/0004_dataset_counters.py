# Counts kept on each dataset (quell.catalog.counters): its checks, its checks failing now and its
# open incidents, with an index of the datasets that fail without an open incident (issue 6: the
# home page probed 2,000 failing datasets for an open incident on every view at 1,000,000
# incidents). 0005 counts them, in a transaction of its own: the new columns' exclusive lock on the
# table is held only for this migration's few statements.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0003_index_results_by_arrival'),
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
    ]
