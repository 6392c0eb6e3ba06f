from __future__ import annotations

from django.urls import include, path

from quell.api.root import build_api

api = build_api()

urlpatterns = [
    # /healthz, /readyz, /metrics (answered ahead of host checks by quell.ops.middleware.ProbeMiddleware).
    path("", include("quell.ops.urls")),
    path("api/v1/", api.urls),
    path("", include("quell.ingest.urls")),
    path("settings/integrations/", include("quell.web.integrations_urls")),
    path("", include("quell.web.urls")),
]
