from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "quell.integrations"
    label = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from django.conf import settings

        from quell.integrations import reactions  # noqa: F401  (subscribes the outbox to the domain events)
        from quell.integrations.delivery import sweep
        from quell.lib import periodic

        # One worker of the installation sweeps at a time; the lease outlives a slow sweep but not by
        # much, so a worker killed mid-sweep holds up the next one only briefly.
        interval = settings.WEBHOOK_SWEEP_SECONDS
        periodic.register("deliveries.sweep", sweep, interval=interval, lease_seconds=max(60.0, 4 * interval))
