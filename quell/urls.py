from __future__ import annotations

from django.urls import include, path

from quell.api.base import build_api

api = build_api()

urlpatterns = [
    path("api/v1/", api.urls),
    path("", include("quell.ingest.urls")),
    path("settings/integrations/", include("quell.integrations.urls")),
    path("", include("quell.web.urls")),
]
