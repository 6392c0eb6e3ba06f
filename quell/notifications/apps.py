from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Telling people (docs/notifications.md): email, for now the organisation's settings and test message."""

    name = "quell.notifications"
    label = "notifications"
