"""HTML pages. Each calls the same service functions as the API; none decides permissions itself."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from quell.accounts.models import User
from quell.incidents import services as incidents
from quell.lib.errors import NotFound


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    by = _user(request)
    open_incidents = incidents.with_details(
        incidents.list_incidents(
            incidents.IncidentFilters(statuses=["reported", "investigating", "fixing"]), by=by
        ),
        by,
    )[:50]
    return render(request, "web/home.html", {"incidents": open_incidents})


@login_required
def incident(request: HttpRequest, number: int) -> HttpResponse:
    by = _user(request)
    try:
        found = incidents.get_incident_by_number(number, by=by)
    except NotFound:
        raise Http404(f"Incident #{number} not found.") from None
    events = incidents.timeline(found.pk, by=by)
    return render(request, "web/incident.html", {"incident": found, "events": events})
