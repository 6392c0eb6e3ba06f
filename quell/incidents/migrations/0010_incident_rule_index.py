# Incidents by the rule that opened them (a rule's page, the insights' breakdown by rule, and the
# SET NULL when a rule is deleted), built without blocking writes on PostgreSQL.

from django.db import migrations, models

from quell.lib.migrations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("incidents", "0009_rules_and_mutes"),
    ]

    operations = [
        AddIndexOnline(
            model_name="incident",
            index=models.Index(fields=["rule", "-created_at", "-id"], name="incident_rule_created"),
        ),
    ]
