# The zone each person reads times in (issue 18, item 7); empty means their browser's. A column with a
# database default, so processes of the previous release still insert users while this one migrates.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_user_by_name'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='time_zone',
            field=models.CharField(blank=True, db_default='', default='', max_length=64),
        ),
    ]
