from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "quell.ops"
    label = "ops"
    verbose_name = "Operations"
