from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "quell.incidents"
    label = "incidents"
