"""Every user's profile: who they are, the time zone they read times in, their password (change it) and
their API keys (create, name, revoke; the secret shown once)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET

from quell.accounts import queries as account_queries
from quell.accounts import services as accounts
from quell.accounts.models import User
from quell.lib.errors import Invalid
from quell.lib.network import client_address
from quell.web.forms import ApiKeyForm, ChangePasswordForm, TimeZoneForm
from quell.web.middleware import browser_zone
from quell.web.views.base import apply_error, form_post, page, signed_in

PASSWORD_FIELDS = {"currentPassword": "current_password", "newPassword": "new_password"}


def _render(request: HttpRequest, by: User, status: int = 200, **context: Any) -> HttpResponse:
    """The profile page, with fresh forms where the context brings none."""
    context = {
        "form": ApiKeyForm(),
        "password_form": ChangePasswordForm(),
        "zone_form": TimeZoneForm(initial={"time_zone": by.time_zone}, browser_zone=browser_zone(request)),
        **context,
    }
    return render(
        request, "web/profile.html", {"keys": account_queries.list_api_keys(by=by), **context}, status=status
    )


@page
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    return _render(request, signed_in(request))


@page
@form_post("web:profile", anchor="#time-zone-heading")
def set_time_zone(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    form = TimeZoneForm(request.POST, browser_zone=browser_zone(request))
    if form.is_valid():
        try:
            accounts.set_own_time_zone(by, form.cleaned_data["time_zone"])
        except Invalid as error:
            apply_error(form, error, {"timeZone": "time_zone"})
        else:
            browser = browser_zone(request)
            chosen = by.time_zone or (f"your browser's zone, {browser}" if browser else "your browser's zone")
            messages.success(request, f"Times are now shown in {chosen}.")
            return redirect("web:profile")
    return _render(request, by, 400, zone_form=form)


@page
@never_cache
@sensitive_post_parameters("current_password", "new_password", "new_password_again")
@form_post("web:profile", anchor="#password-heading")
def change_password(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    form = ChangePasswordForm(request.POST)
    status = 400
    retry_after: int | None = None
    if form.is_valid():
        try:
            accounts.change_own_password(
                by,
                form.cleaned_data["current_password"],
                form.cleaned_data["new_password"],
                ip=client_address(request),
            )
        except Invalid as error:
            apply_error(form, error, PASSWORD_FIELDS)
            status = error.status
            retry_after = getattr(error, "retry_after_seconds", None)
        else:
            # This session stays signed in; every other one ends with the old password's hash.
            update_session_auth_hash(request, by)
            messages.success(request, "Your password is changed. Your other sessions are signed out.")
            return redirect("web:profile")
    response = _render(request, by, status, password_form=form)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, retry_after))
    return response


@page
@never_cache
@form_post("web:profile", anchor="#keys-heading")
def create_api_key(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, secret = accounts.create_api_key(user=by, name=form.cleaned_data["name"])
        except Invalid as error:
            apply_error(form, error)
        else:
            # Rendered, not redirected: the secret is in this one answer and stored nowhere.
            return _render(request, by, new_key=key, secret=secret)
    return _render(request, by, 400, form=form)


@page
@form_post("web:profile", anchor="#keys-heading")
def revoke_api_key(request: HttpRequest, key_pk: int) -> HttpResponse:
    by = signed_in(request)
    key = accounts.revoke_api_key(key_pk, by=by)
    messages.success(request, f"Revoked the API key {key.name or key.key_id}.")
    return redirect("web:profile")
