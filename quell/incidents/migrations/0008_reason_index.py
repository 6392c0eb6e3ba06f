# The resolution reason filter, newest first (issue 20). Built online, like 0003.

from django.db import migrations, models

from quell.lib.migrations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('incidents', '0007_incident_resolution_reason'),
    ]

    operations = [
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['resolution_reason', '-created_at', '-id'], name='incident_reason_created'),
        ),
    ]
