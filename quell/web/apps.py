from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "quell.web"
    label = "web"
