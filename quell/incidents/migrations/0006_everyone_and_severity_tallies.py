# Status counters per severity too, and Everyone's counters (issue 6: a member's counts summed the
# counters of every set of datasets they could see, about 110,000 rows at 1,000,000 incidents, and
# the home page counted open incidents per severity from the incidents). The counters are
# recomputed from the incidents, which also marks the sets that count for Everyone.

from django.db import migrations, models


def recount(apps, schema_editor):
    # The current module, as 0002 once did: it writes exactly the columns this migration leaves.
    from quell.incidents import tallies

    tallies.rebuild()


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0005_lead_reporter_status_indexes'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='incidenttally',
            name='incident_tally_per_set',
        ),
        migrations.RemoveConstraint(
            model_name='incidenttally',
            name='incident_tally_org_wide',
        ),
        migrations.AddField(
            model_name='datasetset',
            name='public',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='incidenttally',
            name='everyone',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='incidenttally',
            name='severity',
            field=models.CharField(choices=[('minor', 'Minor'), ('major', 'Major'), ('critical', 'Critical')], default='major', max_length=10),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name='incidenttally',
            constraint=models.UniqueConstraint(condition=models.Q(('dataset_set__isnull', False)), fields=('dataset_set', 'status', 'severity'), name='incident_tally_per_set'),
        ),
        migrations.AddConstraint(
            model_name='incidenttally',
            constraint=models.UniqueConstraint(condition=models.Q(('dataset_set__isnull', True)), fields=('everyone', 'status', 'severity'), name='incident_tally_without_set'),
        ),
        migrations.RunPython(recount, migrations.RunPython.noop),
    ]
