# Retention settings on the organisation: days housekeeping keeps each kind of record (quell.ops.housekeeping).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_sample_settings'),
    ]

    operations = [
        migrations.AddField(
            model_name='organization',
            name='keep_check_results_days',
            field=models.PositiveIntegerField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name='organization',
            name='keep_delivery_log_days',
            field=models.PositiveIntegerField(blank=True, default=30, null=True),
        ),
        migrations.AddField(
            model_name='organization',
            name='keep_failed_rows_days',
            field=models.PositiveIntegerField(blank=True, default=30, null=True),
        ),
        migrations.AddField(
            model_name='organization',
            name='keep_scans_days',
            field=models.PositiveIntegerField(blank=True, default=90, null=True),
        ),
    ]
