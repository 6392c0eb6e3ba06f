from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "quell.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created
        from django_tasks.signals import task_finished, task_started

        from quell.lib import logs as ops_logging
        from quell.lib import periodic
        from quell.lib.dbstats import without_jit
        from quell.lib.network import parse_networks
        from quell.ops import heartbeat

        # A mistyped network refuses to start rather than failing each request that reads it.
        parse_networks(settings.METRICS_ALLOWED_NETWORKS, "QUELL_METRICS_ALLOWED_NETWORKS")
        parse_networks(settings.TRUSTED_PROXIES, "QUELL_TRUSTED_PROXIES")

        connection_created.connect(without_jit, dispatch_uid="quell.without_jit")
        # Registers `quell check --deploy`'s checks of file modes.
        from quell.ops import checks  # noqa: F401

        # Every worker beats for itself; web processes never start the periodic jobs, so never beat.
        periodic.register("ops.heartbeat", heartbeat.beat, interval=settings.HEARTBEAT_SECONDS, shared=True)
        task_started.connect(ops_logging.task_started, dispatch_uid="quell.ops.task_started")
        task_finished.connect(ops_logging.task_finished, dispatch_uid="quell.ops.task_finished")

        # Housekeeping is exclusive: one worker of the installation deletes at a time. A large first
        # run (a new retention setting on years of data) may outlast the interval, hence the long lease.
        from quell.ops.housekeeping import periodic_housekeeping

        periodic.register(
            "housekeeping",
            periodic_housekeeping,
            interval=settings.HOUSEKEEPING_SECONDS,
            lease_seconds=max(3600.0, settings.HOUSEKEEPING_SECONDS),
        )
