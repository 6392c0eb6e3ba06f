"""The home page answers "what needs attention"."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from quell.incidents import paging as incident_paging
from quell.incidents import queries as incident_queries
from quell.incidents.models import OPEN_STATUSES, Severity
from quell.integrations import services as integrations
from quell.web.views.base import page, signed_in

ASSIGNED_SHOWN = 10
QUIET_FAILURES_SHOWN = 15


@page
def home(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    by_severity = incident_queries.open_by_severity(by=by)
    mine = incident_queries.list_incidents(
        incident_queries.IncidentFilters(statuses=list(OPEN_STATUSES), lead_ids=[by.pk]), by=by
    )
    # The table shows number, title, severity and status: no lead, reporter or datasets to load.
    assigned = list(incident_paging.sort_incidents(mine, "severity")[:ASSIGNED_SHOWN])
    # An index-only count of (lead, status) entries (incident_lead_status).
    assigned_total = mine.count()
    quiet = list(incident_queries.datasets_needing_attention(by=by)[:QUIET_FAILURES_SHOWN])
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
