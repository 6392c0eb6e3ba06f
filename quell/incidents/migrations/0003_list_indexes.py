# Indexes for the incident list's filter combinations and sorts (issue 6). Built online: on
# PostgreSQL CREATE INDEX CONCURRENTLY keeps the table writable while running processes serve.

from django.db import migrations, models

from quell.lib.migrations import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('incidents', '0002_status_counters'),
    ]

    # New indexes first, so the list is never without one; then drop those they supersede.
    operations = [
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['status', '-created_at', '-id'], name='incident_status_created'),
        ),
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['severity', '-created_at', '-id'], name='incident_severity_created'),
        ),
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['status', 'severity', '-created_at', '-id'], name='incident_status_sev_created'),
        ),
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['lead', '-created_at', '-id'], name='incident_lead_created'),
        ),
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['reporter', '-created_at', '-id'], name='incident_reporter_created'),
        ),
        AddIndexOnline(
            model_name='incident',
            index=models.Index(fields=['-updated_at', '-id'], name='incident_updated'),
        ),
        RemoveIndexOnline(
            model_name='incident',
            name='incident_status_newest',
        ),
        RemoveIndexOnline(
            model_name='incident',
            name='incident_lead_newest',
        ),
        RemoveIndexOnline(
            model_name='incident',
            name='incident_reporter_newest',
        ),
    ]
