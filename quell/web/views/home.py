"""The home page answers "what needs attention"."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from quell.incidents import services as incidents
from quell.incidents.models import OPEN_STATUSES, Severity
from quell.integrations import services as integrations
from quell.web.views.base import page, signed_in

ASSIGNED_SHOWN = 10
QUIET_FAILURES_SHOWN = 15


@page
def home(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    by_severity = incidents.open_by_severity(by=by)
    mine = incidents.list_incidents(
        incidents.IncidentFilters(statuses=list(OPEN_STATUSES), lead_ids=[by.pk]), by=by
    )
    # The table shows number, title, severity and status: no lead, reporter or datasets to load.
    assigned = list(incidents.sort_incidents(mine, "severity")[:ASSIGNED_SHOWN])
    # An index-only count of (lead, status) entries (incident_lead_status).
    assigned_total = mine.count()
    quiet = list(incidents.datasets_needing_attention(by=by)[:QUIET_FAILURES_SHOWN])
    return render(
        request,
        "web/home.html",
        {
            "severities": [
                (value, label, by_severity.get(value, 0)) for value, label in reversed(Severity.choices)
            ],
            "open_total": sum(by_severity.values()),
            "assigned": assigned,
            "assigned_total": assigned_total,
            "quiet": quiet,
            # Integrations turned off because their receiver answered 410 Gone: only admins are told.
            "turned_off": integrations.turned_off_integrations(by=by),
        },
    )
