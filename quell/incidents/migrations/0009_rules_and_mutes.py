# Incident rules and mutes (issue 20, quell.automation): the rules and mutes themselves, the rule
# that opened an incident, since when its checks pass, and the rule a timeline event was made for.
# The new columns of the big tables are nullable or have a constant default, so they change the
# tables' definitions only (no copy, no long lock) and the previous release keeps writing; the
# index on incidents_incident.rule_id follows without a write lock (0010).

import django.db.models.deletion
import django.utils.timezone
import quell.incidents.models
from django.conf import settings
from django.db import migrations, models

from quell.lib.migrations import RunSQLFor

ADD_RULE_NAME = [
    'ALTER TABLE "incidents_timelineevent" ADD COLUMN "rule_name" varchar(200) DEFAULT \'\' NOT NULL'
]
DROP_RULE_NAME = ['ALTER TABLE "incidents_timelineevent" DROP COLUMN "rule_name"']


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_responsibility_to_accounts"),
        ("incidents", "0008_reason_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="passing_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        # As 0007: SQL with a constant default, so SQLite changes the table's definition instead of
        # copying every timeline event into a new table.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                RunSQLFor(
                    sqlite=ADD_RULE_NAME,
                    postgresql=ADD_RULE_NAME,
                    reverse_sqlite=DROP_RULE_NAME,
                    reverse_postgresql=DROP_RULE_NAME,
                    description="Add incidents_timelineevent.rule_name",
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="timelineevent",
                    name="rule_name",
                    field=models.CharField(blank=True, db_default="", default="", max_length=200),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="timelineevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("changed", "Changed"),
                    ("reopened", "Reopened"),
                    ("resultAttached", "Check result attached"),
                    ("comment", "Comment"),
                    ("checkPassed", "Check passed"),
                    ("merged", "Merged"),
                ],
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="IncidentRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("enabled", models.BooleanField(default=True)),
                ("position", models.PositiveIntegerField(default=0)),
                ("dataset_scoped", models.BooleanField(default=False)),
                ("check_attributes", models.JSONField(blank=True, default=dict)),
                ("outcomes", models.JSONField(default=quell.incidents.models.default_outcomes)),
                ("consecutive", models.PositiveIntegerField(default=1)),
                (
                    "severity",
                    models.CharField(
                        choices=[("minor", "Minor"), ("major", "Major"), ("critical", "Critical")],
                        default="major",
                        max_length=10,
                    ),
                ),
                ("title_template", models.CharField(default="{check} failed on {dataset}", max_length=300)),
                ("resolve_after_passes", models.PositiveIntegerField(blank=True, null=True)),
                ("reopen_within_days", models.PositiveIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "data_sources",
                    models.ManyToManyField(
                        blank=True, related_name="incident_rules", to="catalog.datasource"
                    ),
                ),
                (
                    "datasets",
                    models.ManyToManyField(blank=True, related_name="incident_rules", to="catalog.dataset"),
                ),
                (
                    "lead",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ("position", "id"),
            },
        ),
        migrations.AddField(
            model_name="incident",
            name="rule",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="incidents",
                to="incidents.incidentrule",
            ),
        ),
        migrations.CreateModel(
            name="Mute",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("until", models.DateTimeField()),
                ("reason", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "check_ref",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="mutes",
                        to="catalog.check",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "dataset",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="mutes",
                        to="catalog.dataset",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("check_ref__isnull", False), ("dataset__isnull", True)),
                            models.Q(("check_ref__isnull", True), ("dataset__isnull", False)),
                            _connector="OR",
                        ),
                        name="mute_check_or_dataset",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("check_ref__isnull", False)),
                        fields=("check_ref",),
                        name="mute_check_once",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("dataset__isnull", False)),
                        fields=("dataset",),
                        name="mute_dataset_once",
                    ),
                ],
            },
        ),
    ]
