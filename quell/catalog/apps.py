from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "quell.catalog"
    label = "catalog"
