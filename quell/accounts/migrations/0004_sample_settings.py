# Failed-row sample settings on the organisation (owned by the ingest work: Soda protocol, issue 4).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_login_failure'),
    ]

    operations = [
        migrations.AddField(
            model_name='organization',
            name='collect_failed_rows',
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name='organization',
            name='failed_rows_max_bytes',
            field=models.PositiveIntegerField(default=1048576),
        ),
    ]
