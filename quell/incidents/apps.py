from django.apps import AppConfig

# How often `quell worker` refreshes SQLite's planner statistics; as rows arrive the best index for
# a list can change, and an hourly approximate ANALYZE costs milliseconds.
SQLITE_OPTIMIZE_SECONDS = 3600.0


class IncidentsConfig(AppConfig):
    name = "quell.incidents"
    label = "incidents"

    def ready(self) -> None:
        from django.db import connection

        from quell.incidents import reactions  # noqa: F401  (subscribes the tallies to the domain events)
        from quell.lib import periodic
        from quell.lib.dbstats import refresh_planner_statistics

        if connection.vendor == "sqlite":
            # Exclusive: one worker of the installation analyses; it runs first when a worker starts.
            periodic.register("sqlite.optimize", refresh_planner_statistics, interval=SQLITE_OPTIMIZE_SECONDS)
