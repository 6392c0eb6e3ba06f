"""Settings pages for integrations (admins): list, create, edit, send a test, the delivery log, redeliver."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from quell.integrations import services
from quell.integrations.forms import DELIVERY_STATUS_CHOICES, FIELDS, CreateIntegrationForm, IntegrationForm
from quell.integrations.models import UNFINISHED, Delivery, Integration
from quell.lib.errors import Invalid
from quell.web.views.base import apply_error, form_post, page, signed_in


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, f"integrations/{template}", context, status=status)


@page
@require_GET
def integration_list(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    integrations = list(services.list_integrations(by=by))
    return _render(
        request,
        "list.html",
        {"integrations": integrations, "turned_off": services.turned_off_integrations(by=by)},
    )


@page
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    services.list_integrations(by=by)  # admins only, before anything is shown
    form = CreateIntegrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            integration, secret = services.create_integration(
                by=by,
                name=data["name"],
                kind=data["kind"],
                url=data["url"],
                events=data["events"],
                headers=data["headers"],
                dataset_ids=[int(pk) for pk in data["datasets"]],
                min_severity=data["min_severity"],
                min_outcome=data["min_outcome"],
            )
        except Invalid as error:
            apply_error(form, error, FIELDS)
        else:
            # The secret is shown in this answer only, never stored in the session or a URL.
            return _render(request, "created.html", {"integration": integration, "secret": secret})
    return _render(request, "form.html", {"form": form}, 400 if form.errors else 200)


def _log(request: HttpRequest, deliveries: QuerySet[Delivery], status_filter: str) -> dict[str, Any]:
    shown = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    # The log refreshes itself while something on it is still on its way.
    polling = any(d.status in UNFINISHED for d in shown)
    return {"deliveries": shown, "status_filter": status_filter, "polling": polling}


def _edit_form(integration: Integration, data: Any = None) -> IntegrationForm:
    initial = {
        "name": integration.name,
        "events": integration.events,
        "datasets": [str(d.pk) for d in integration.datasets.all()],
        "min_severity": integration.min_severity,
        "min_outcome": integration.min_outcome,
    }
    return IntegrationForm(data, initial=initial, editing=True)


@page
@require_http_methods(["GET", "POST"])
def detail(request: HttpRequest, integration_id: int) -> HttpResponse:
    by = signed_in(request)
    integration = services.get_integration(integration_id, by=by)
    form = _edit_form(integration, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        headers = {} if data.get("clear_headers") else (data["headers"] or None)
        try:
            services.update_integration(
                integration.pk,
                by=by,
                name=data["name"],
                url=data["url"] or None,
                events=data["events"],
                headers=headers,
                dataset_ids=[int(pk) for pk in data["datasets"]],
                min_severity=data["min_severity"],
                min_outcome=data["min_outcome"],
            )
        except Invalid as error:
            apply_error(form, error, FIELDS)
        else:
            messages.success(request, f"Saved {integration.name}.")
            return redirect("integrations:settings_integration", integration_id=integration.pk)
    status_filter = request.GET.get("status", "")
    deliveries = services.list_deliveries(integration.pk, by=by, status=status_filter or None)
    return _render(
        request,
        "detail.html",
        {
            "integration": integration,
            "form": form,
            "status_choices": DELIVERY_STATUS_CHOICES,
            **_log(request, deliveries, status_filter),
        },
        400 if form.errors else 200,
    )


@page
@require_GET
def delivery_log(request: HttpRequest, integration_id: int) -> HttpResponse:
    """The delivery table alone, which the detail page polls while deliveries are on their way."""
    by = signed_in(request)
    integration = services.get_integration(integration_id, by=by)
    status_filter = request.GET.get("status", "")
    deliveries = services.list_deliveries(integration.pk, by=by, status=status_filter or None)
    return _render(
        request,
        "_deliveries.html",
        {"integration": integration, **_log(request, deliveries, status_filter)},
    )


@page
@form_post("integrations:settings_integration", "integration_id")
def action(request: HttpRequest, integration_id: int) -> HttpResponse:
    """The buttons on an integration's page: send a test, rotate the secret, turn on or off, delete."""
    by = signed_in(request)
    which = request.POST.get("action", "")
    try:
        if which == "test":
            services.send_test(integration_id, by=by)
            messages.success(request, "Test message queued; its delivery appears below.")
        elif which == "rotate":
            integration, secret = services.rotate_secret(integration_id, by=by)
            return _render(
                request, "created.html", {"integration": integration, "secret": secret, "rotated": True}
            )
        elif which in ("enable", "disable"):
            services.update_integration(integration_id, by=by, enabled=which == "enable")
            messages.success(
                request, "Turned on." if which == "enable" else "Turned off; new events are not sent."
            )
        elif which == "delete":
            services.delete_integration(integration_id, by=by)
            messages.success(request, "Deleted the integration and its delivery log.")
            return redirect("integrations:settings_integrations")
        else:
            raise Invalid("Unknown action.")
    except Invalid as error:
        messages.error(request, error.message)
    return redirect("integrations:settings_integration", integration_id=integration_id)


@page
@require_http_methods(["GET", "POST"])
def delivery(request: HttpRequest, integration_id: int, delivery_id: int) -> HttpResponse:
    by = signed_in(request)
    if request.method == "POST":
        try:
            copy = services.redeliver(integration_id, delivery_id, by=by)
        except Invalid as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Queued again, with the same webhook-id.")
            return redirect(
                "integrations:settings_integration_delivery",
                integration_id=integration_id,
                delivery_id=copy.pk,
            )
    found = services.get_delivery(integration_id, delivery_id, by=by)
    return _render(request, "delivery.html", {"delivery": found, "integration": found.integration})
