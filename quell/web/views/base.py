"""What every page shares: the signed-in user, error mapping, pagination."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from quell.accounts.models import User
from quell.lib.errors import Forbidden, Invalid, NotFound

PAGE_SIZE = 50
T = TypeVar("T")
View = Callable[..., HttpResponse]


def signed_in(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def page(view: View) -> View:
    """A page for signed-in users: anonymous visitors go to the log-in page.

    What a service refuses becomes the matching HTTP answer: NotFound 404 (so ids do not reveal what
    is private), Forbidden 403, and an Invalid that no form caught a 400 page with its message.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            raise Http404("Not found.") from None
        except Forbidden as error:
            raise PermissionDenied(error.message) from None
        except Invalid as error:
            return render(request, "400.html", {"message": error.message}, status=400)

    return login_required(wrapper)


def paginate(request: HttpRequest, rows: QuerySet[Any], size: int = PAGE_SIZE) -> Page[Any]:
    """One page of rows, from the `page` query parameter (out-of-range numbers give the last page)."""
    return Paginator(rows, size).get_page(request.GET.get("page"))


def apply_error(form: forms.Form, error: Invalid, fields: dict[str, str] | None = None) -> None:
    """Show a service's refusal at the form field it names (by the API's field name), else atop the form."""
    fields = fields or {}
    name = fields.get(error.field or "", error.field or "")
    form.add_error(name if name in form.fields else None, error.message)
