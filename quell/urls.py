from __future__ import annotations

from django.urls import include, path

from quell.api.base import build_api
from quell.lib.env import envbool

api = build_api()

urlpatterns = [
    # /healthz, /readyz, /metrics (answered ahead of host checks by quell.ops.middleware.ProbeMiddleware).
    path("", include("quell.ops.urls")),
    path("api/v1/", api.urls),
    path("", include("quell.ingest.urls")),
    path("settings/integrations/", include("quell.integrations.urls")),
    path("", include("quell.web.urls")),
]

# The benchmark's hand-written-SQL endpoint (issue 6); never on unless a benchmark asks for it.
if envbool("QUELL_BENCH_FLOOR", False):
    urlpatterns.insert(0, path("bench/floor/", include("quell.bench.floor")))
