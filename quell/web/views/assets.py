"""Files browsers ask for at fixed addresses."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, which browsers ask for whatever the page links: the icon among the static files.

    A temporary redirect, because the static file's (hashed) name changes with its content.
    """
    return HttpResponseRedirect(static("quell/favicon.svg"))
