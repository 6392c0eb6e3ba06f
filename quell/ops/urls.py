from __future__ import annotations

from django.urls import path

from quell.ops import views

# Mounted at the root (see quell.urls); ProbeMiddleware answers these paths before host checks.
urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
]
