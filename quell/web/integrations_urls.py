"""Settings pages for integrations, mounted at /settings/integrations/ (names start with "settings" for the nav)."""

from __future__ import annotations

from django.urls import path

from quell.web.views import integrations as views

app_name = "integrations"

urlpatterns = [
    path("", views.integration_list, name="settings_integrations"),
    path("new", views.create, name="settings_integration_new"),
    path("<int:integration_id>", views.detail, name="settings_integration"),
    path("<int:integration_id>/action", views.action, name="settings_integration_action"),
    path("<int:integration_id>/deliveries", views.delivery_log, name="settings_integration_deliveries"),
    path(
        "<int:integration_id>/deliveries/<int:delivery_id>",
        views.delivery,
        name="settings_integration_delivery",
    ),
]
