"""Request ids, the request log line and the latency histogram; and the probes' way around host checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.functional import empty

from quell.accounts import permissions
from quell.lib import metrics
from quell.lib.logs import accept_request_id, request_context
from quell.lib.network import client_of

logger = logging.getLogger("quell.request")

# Load balancers ask every few seconds; a healthy answer is not worth a line at INFO.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Handler = Callable[[HttpRequest], HttpResponse]

# URL parameters that are credentials (incidentLinkCallbackUrl's token): such paths are logged as their pattern.
SECRET_PARAMETERS = frozenset({"token", "secret"})


def _user_id(request: HttpRequest) -> int | None:
    """The caller's id if something already looked it up; the log never costs a session query."""
    auth = getattr(request, "auth", None)  # django-ninja's authenticated API caller
    if auth is not None and getattr(auth, "pk", None) is not None:
        return int(auth.pk)
    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or wrapped is empty or not getattr(wrapped, "is_authenticated", False):
        return None
    return int(wrapped.pk)


class RequestLogMiddleware:
    """Outermost: gives each request an id (X-Request-ID in, or a new one; echoed back), times it,
    observes it in the latency histogram by URL pattern and writes one log line for it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        with request_context(request_id):
            started = time.monotonic()
            response = self.get_response(request)
            seconds = time.monotonic() - started
            response["X-Request-ID"] = request_id
            # This line replaces django.request's "Not Found: <path>" warnings, which would come after
            # the request id is gone and would write capability tokens in paths to the log.
            response._has_been_logged = True  # type: ignore[attr-defined]
            match = getattr(request, "resolver_match", None)
            route = metrics.route_label(
                match.route if match is not None else None,
                request.path,
                "/" + settings.STATIC_URL.lstrip("/"),
            )
            metrics.observe_request(route, request.method or "", response.status_code, seconds)
            path = request.path
            if match is not None and SECRET_PARAMETERS & set(match.kwargs):
                path = route
            client = client_of(request)
            quiet = request.path in QUIET_PATHS and response.status_code < 400
            logger.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "route": route,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": _user_id(request),
                    "remote_addr": str(client.address) if client.address is not None else None,
                    "peer_addr": str(client.peer) if client.peer is not None else None,
                    "request_id": request_id,
                },
            )
        return response


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before the rest of the stack.

    Load balancers and Prometheus reach a process by IP address, which ALLOWED_HOSTS rightly refuses
    for pages; these three answer the same under any Host, set no cookie and need no session.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PROBE_PATHS:
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        assert isinstance(response, HttpResponse)
        return response


class GroupsRememberedMiddleware:
    """Reads each caller's groups once per request (quell.accounts.permissions.groups_remembered)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with permissions.groups_remembered():
            return self.get_response(request)
