from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "quell.ingest"
    label = "ingest"
