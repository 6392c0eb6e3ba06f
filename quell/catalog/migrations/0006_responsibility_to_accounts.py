# The other half of accounts' 0008: the catalog forgets the model it no longer owns; its table stays
# (accounts.Responsibility uses it), so nothing is written to the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0005_count_datasets'),
        ('accounts', '0008_responsibility_from_catalog'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Responsibility')],
            database_operations=[],
        ),
    ]
