"""Every user's profile: who they are and their API keys (create, name, revoke; the secret shown once)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from quell.accounts import services as accounts
from quell.lib.errors import Invalid
from quell.web.forms import ApiKeyForm
from quell.web.views.base import apply_error, page, signed_in


@page
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    return render(request, "web/profile.html", {"keys": accounts.list_api_keys(by=by), "form": ApiKeyForm()})


@page
@never_cache
@require_POST
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
            return render(
                request,
                "web/profile.html",
                {
                    "keys": accounts.list_api_keys(by=by),
                    "form": ApiKeyForm(),
                    "new_key": key,
                    "secret": secret,
                },
            )
    return render(
        request, "web/profile.html", {"keys": accounts.list_api_keys(by=by), "form": form}, status=400
    )


@page
@require_POST
def revoke_api_key(request: HttpRequest, key_pk: int) -> HttpResponse:
    by = signed_in(request)
    key = accounts.revoke_api_key(key_pk, by=by)
    messages.success(request, f"Revoked the API key {key.name or key.key_id}.")
    return redirect("web:profile")
