from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "quell.integrations"
    label = "integrations"
    verbose_name = "Integrations"
