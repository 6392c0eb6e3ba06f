from django.apps import AppConfig


class AutomationConfig(AppConfig):
    """The incident rules at work (quell.automation.engine): a consumer of the catalog's events."""

    name = "quell.automation"
    label = "automation"

    def ready(self) -> None:
        from quell.automation import reactions  # noqa: F401  (subscribes the engine to ResultsIngested)
