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
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse

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


def form_post(page_name: str, *arguments: str, anchor: str = "") -> Callable[[View], View]:
    """A URL that only takes a form's POST, belonging to the page `page_name` (given these of the
    URL's arguments) where that form is.

    A GET of it is redirected to that page instead of answering a blank 405: the address bar shows
    this URL after a post whose refusal was rendered here, so a reload by hand, a Back, or the URL
    opened again ends up on the page. The page rendered in answer to the post names that page's URL
    (`quell_page_url`, see base.html), so the browser's reload is a GET of it too.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            url = reverse(page_name, kwargs={name: kwargs[name] for name in arguments})
            if request.method in ("GET", "HEAD"):
                return redirect(url + anchor)
            if request.method != "POST":
                return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
            request.quell_page_url = url  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def paginate(request: HttpRequest, rows: QuerySet[Any], size: int = PAGE_SIZE) -> Page[Any]:
    """One page of rows, from the `page` query parameter (out-of-range numbers give the last page)."""
    return Paginator(rows, size).get_page(request.GET.get("page"))


def apply_error(form: forms.Form, error: Invalid, fields: dict[str, str] | None = None) -> None:
    """Show a service's refusal at the form field it names (by the API's field name), else atop the form."""
    fields = fields or {}
    name = fields.get(error.field or "", error.field or "")
    form.add_error(name if name in form.fields else None, error.message)
