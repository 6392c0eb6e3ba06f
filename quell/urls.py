from __future__ import annotations

from django.urls import include, path

from quell.api.base import build_api

api = build_api()

urlpatterns = [
    # /healthz, /readyz, /metrics (answered ahead of host checks by quell.ops.middleware.ProbeMiddleware).
    path("", include("quell.ops.urls")),
    path("api/v1/", api.urls),
    path("", include("quell.ingest.urls")),
    path("settings/integrations/", include("quell.integrations.urls")),
    path("", include("quell.web.urls")),
]
