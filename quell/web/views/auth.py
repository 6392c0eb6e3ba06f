"""Log-in by email and password, throttled against guessing; log-out."""

from __future__ import annotations

import math

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from quell.accounts import logins
from quell.lib.network import client_address
from quell.web.forms import LoginForm
from quell.web.views.base import form_post

WRONG = "Email or password is wrong."


def _next_url(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return resolve_url("web:home")


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    status = 200
    retry_after: int | None = None
    if request.method == "POST":
        ip = client_address(request)
        email = request.POST.get("email", "")
        try:
            # Checked before the form too: a locked-out client gets 429 whatever it sends.
            throttle = logins.login_throttle(email, ip)
            if throttle.blocked:
                raise logins.TooManyAttempts(throttle.retry_after_seconds)
            if form.is_valid():
                user = logins.log_in(form.cleaned_data["email"], form.cleaned_data["password"], ip=ip)
                if user is not None:
                    login(request, user)
                    return redirect(_next_url(request))
                form.add_error(None, WRONG)
            status = 400
        except logins.TooManyAttempts as refused:
            minutes = math.ceil(refused.retry_after_seconds / 60)
            form.is_valid()
            form.add_error(
                None,
                f"Too many failed log-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            )
            status = 429
            retry_after = refused.retry_after_seconds
    response = render(request, "web/login.html", {"form": form, "next": _next_url(request)}, status=status)
    if retry_after is not None:
        # Until the oldest counted failure ages out of the window.
        response["Retry-After"] = str(max(1, retry_after))
    return response


# A GET (the address typed, a link) goes home and does not log out: only the form's POST, with its
# CSRF token, does.
@form_post("web:home")
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web:login")
