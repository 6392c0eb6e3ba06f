# Responsibilities move from the catalog to accounts, with the permission checks that read them
# (issue 19, item 3). Only Django's idea of which app owns the model changes: the table keeps its
# name (db_table), its columns, constraint and indexes, so nothing is written to the database.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0007_user_time_zone'),
        ('catalog', '0005_count_datasets'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Responsibility',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='responsibilities', to='catalog.dataset')),
                        ('group', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='responsibilities', to='accounts.usergroup')),
                        ('role', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='responsibilities', to='accounts.datasetrole')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='responsibilities', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'catalog_responsibility',
                        'ordering': ('id',),
                        'indexes': [models.Index(fields=['user', 'dataset'], name='resp_user_dataset'), models.Index(fields=['group', 'dataset'], name='resp_group_dataset')],
                        'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('group__isnull', True), ('user__isnull', False)), models.Q(('group__isnull', False), ('user__isnull', True)), _connector='OR'), name='responsibility_names_user_or_group')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
