# Why an incident was resolved (issue 20). Incidents resolved before keep "" ("not recorded"): no
# data is guessed. A database default, so the previous release's processes, which insert without
# the column, keep working while the upgrade runs.
#
# Written as SQL rather than Django's AddField: on SQLite, AddField of a NOT NULL column rebuilds
# incidents_incident (copying every row), which also drops the title search's triggers (0004).
# ALTER TABLE ... ADD COLUMN with a constant default changes only the table's definition, on SQLite
# and on PostgreSQL (11 and newer) alike; the column is what AddField would make.

from django.db import migrations, models

from quell.lib.migrations import RunSQLFor

ADD = ['ALTER TABLE "incidents_incident" ADD COLUMN "resolution_reason" varchar(20) DEFAULT \'\' NOT NULL']
DROP = ['ALTER TABLE "incidents_incident" DROP COLUMN "resolution_reason"']


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0006_everyone_and_severity_tallies'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                RunSQLFor(
                    sqlite=ADD,
                    postgresql=ADD,
                    reverse_sqlite=DROP,
                    reverse_postgresql=DROP,
                    description="Add incidents_incident.resolution_reason",
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name='incident',
                    name='resolution_reason',
                    field=models.CharField(blank=True, choices=[('fixed', 'Fixed'), ('expected', 'Expected behaviour'), ('falsePositive', 'False positive'), ('duplicate', 'Duplicate'), ('noActionNeeded', 'No action needed'), ('recovered', 'Recovered')], db_default='', default='', max_length=20),
                ),
            ],
        ),
    ]
