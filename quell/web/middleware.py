"""Pages show times in the reader's zone: the one on their profile, else their browser's."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from quell.lib.zones import is_known_zone

# quell.js writes the browser's zone here (Intl's resolvedOptions().timeZone) on every page it runs on.
ZONE_COOKIE = "quell_tz"
# The REST API and the Soda protocol answer in UTC whoever calls; they never read the signed-in user
# here (a session query for a caller that authenticates with a key).
NOT_PAGES = ("/api/",)

Handler = Callable[[HttpRequest], HttpResponse]


def browser_zone(request: HttpRequest) -> str | None:
    """The zone the browser said it is in, if it is one Quell knows; junk in the cookie is ignored."""
    name = request.COOKIES.get(ZONE_COOKIE)
    return name if name is not None and is_known_zone(name) else None


def reader_zone(request: HttpRequest) -> str:
    """The zone to show this request's times in: the user's own choice, the browser's, or UTC."""
    user = request.user
    # The user row is read whole by the session's log-in, so their zone costs no query.
    chosen = getattr(user, "time_zone", "") if user.is_authenticated else ""
    if is_known_zone(chosen):
        return str(chosen)
    return browser_zone(request) or settings.TIME_ZONE


class ReaderZoneMiddleware:
    """Activates the reader's zone for the request (after AuthenticationMiddleware, which it reads).

    The very first page a browser opens (the log-in page, as a rule) is in UTC unless the person chose
    a zone: the cookie comes with the requests after it.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(NOT_PAGES):
            return self.get_response(request)
        with timezone.override(reader_zone(request)):
            return self.get_response(request)
