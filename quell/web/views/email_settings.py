"""Settings → Email, for admins: how Quell sends email (QUELL_EMAIL_URL) and a test message."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from quell.accounts import queries as account_queries
from quell.lib.errors import Unprocessable
from quell.notifications import mail
from quell.web.views.base import page, signed_in


@page
@require_http_methods(["GET", "POST"])
def email_settings(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    if request.method == "POST":
        try:
            address = mail.send_test_email(by=by)
        except Unprocessable as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"A test email was sent to {address}. Check that it arrived.")
        return redirect("web:settings_email")
    context = {"settings_tab": "email", "email": mail.email_status(by=by)}
    return render(request, "web/settings/email.html", context)
