"""/healthz, /readyz and /metrics.

They are answered ahead of host-name checks, sessions and CSRF (see ProbeMiddleware), because load
balancers and Prometheus address a process by its IP, and none of the three writes anything or says
anything about the Host it was asked under.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from quell.lib.metrics import CONTENT_TYPE
from quell.lib.network import client_of, parse_networks, within
from quell.ops import health, metrics


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering; touches nothing else, so a database outage never restarts it."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    checks = health.readiness()
    body: dict[str, object] = {"checks": {name: check.as_json() for name, check in checks.items()}}
    failing = [name for name, check in checks.items() if not check.ok]
    if not failing:
        return JsonResponse({"status": "ready", **body})
    message = "Not ready: " + " ".join(checks[name].message for name in failing)
    return JsonResponse(
        {"status": "not ready", "code": "not_ready", "message": message, "failing": failing, **body},
        status=503,
    )


def _refused(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"code": code, "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="quell-metrics"'
    return response


def metrics_refusal(request: HttpRequest) -> JsonResponse | None:
    """None when the caller may read /metrics, otherwise the answer that says why not.

    A bearer token, when one is sent, must be right. Without one, the client address must be in
    QUELL_METRICS_ALLOWED_NETWORKS (loopback by default); a request relayed by a proxy that is not in
    QUELL_TRUSTED_PROXIES has no address we can believe, so it needs the token.
    """
    token = settings.METRICS_TOKEN
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _refused(401, "unauthorized", "Send the metrics token as `Authorization: Bearer <token>`.")
        if not hmac.compare_digest(presented.strip().encode(), token.encode()):
            return _refused(401, "unauthorized", "The metrics token is wrong.")
        return None
    client = client_of(request)
    allowed = parse_networks(settings.METRICS_ALLOWED_NETWORKS, "QUELL_METRICS_ALLOWED_NETWORKS")
    if client.address is not None and not client.untrusted_proxy and within(client.address, allowed):
        return None
    if token:
        return _refused(401, "unauthorized", "Send the metrics token as `Authorization: Bearer <token>`.")
    return _refused(
        403,
        "forbidden",
        "Metrics are served to QUELL_METRICS_ALLOWED_NETWORKS (loopback unless set) or with QUELL_METRICS_TOKEN.",
    )


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE)
