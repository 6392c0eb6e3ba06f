"""The built-in dataset roles, the Everyone group and the organisation row."""

from django.db import migrations

from quell.accounts import builtins


def create(apps, schema_editor):
    builtins.ensure(
        apps.get_model("accounts", "DatasetRole"),
        apps.get_model("accounts", "UserGroup"),
        apps.get_model("accounts", "Organization"),
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
