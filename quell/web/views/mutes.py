"""Muting a check or a dataset from its page, and lifting the mute; the muted badges of the lists.

The writes are quell.incidents.mute_services', which checks the permission (Manage incidents on the
dataset) and the time; the pages show the form only to those who hold it. With htmx a refused form
is swapped in place, with what was typed; a mute or an unmute reloads the page, whose lists show the
change. Without scripts the form posts as any, and a refusal is a page of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from quell.catalog import queries as catalog_queries
from quell.catalog.models import Check, Dataset
from quell.incidents import mute_services
from quell.incidents.models import Mute
from quell.incidents.mutes import mute_of_dataset, mutes_of_check, mutes_of_checks, mutes_of_datasets
from quell.lib.errors import Invalid
from quell.web.forms import MUTE_FIELDS, MuteForm
from quell.web.templatetags.quell_tags import moment
from quell.web.views.base import apply_error, form_post, page, signed_in

# --- What the pages show --------------------------------------------------------------------------


def mark_muted_checks(rows: Iterable[Any], *, check_id: str = "pk") -> None:
    """Give each row `mute`, the mute its check is under or None, in one statement for them all.

    The rows are checks, or results (`check_id="check_ref_id"`); each has `dataset_id`.
    """
    rows = list(rows)
    mutes = mutes_of_checks((getattr(row, check_id), row.dataset_id) for row in rows)
    for row in rows:
        row.mute = mutes.get(getattr(row, check_id))


def mark_muted_datasets(datasets: Iterable[Dataset]) -> None:
    """Give each dataset `mute`, its own mute or None, in one statement for them all."""
    datasets = list(datasets)
    mutes = mutes_of_datasets(ds.pk for ds in datasets)
    for ds in datasets:
        ds.mute = mutes.get(ds.pk)  # type: ignore[attr-defined]


def check_mute_context(check: Check, *, can_mute: bool, form: MuteForm | None = None) -> dict[str, Any]:
    """What the check page's mute section (web/_mute.html) shows: the check's own mute, its
    dataset's, and for those who may mute (Manage incidents on the dataset) the form."""
    mutes = mutes_of_check(check.pk, check.dataset_id)
    return {
        "mute_subject": "check",
        "own_mute": mutes.own,
        "dataset_mute": mutes.dataset,
        "can_mute": can_mute,
        "mute_form": form or MuteForm(),
        "mute_url": reverse("web:mute_check", args=[check.pk]),
        "unmute_url": reverse("web:unmute_check", args=[check.pk]),
    }


def dataset_mute_context(
    dataset: Dataset, *, can_mute: bool, form: MuteForm | None = None, mute: Mute | None = None
) -> dict[str, Any]:
    """As check_mute_context, for a dataset's pages (its header). `mute`: its mute, if already read."""
    return {
        "mute_subject": "dataset",
        "own_mute": mute if mute is not None else mute_of_dataset(dataset.pk),
        "dataset_mute": None,
        "can_mute": can_mute,
        "mute_form": form or MuteForm(),
        "mute_url": reverse("web:mute_dataset", args=[dataset.pk]),
        "unmute_url": reverse("web:unmute_dataset", args=[dataset.pk]),
    }


# --- The forms' posts -----------------------------------------------------------------------------


@page
@form_post("web:check", "check_id")
def mute_check(request: HttpRequest, check_id: int) -> HttpResponse:
    by = signed_in(request)
    check = catalog_queries.get_check(check_id, by=by)
    form = MuteForm(request.POST)
    if form.is_valid():
        try:
            mute = mute_services.mute_check(
                check.pk, by=by, until=form.until_from(timezone.now()), reason=form.cleaned_data["reason"]
            )
        except Invalid as error:
            apply_error(form, error, MUTE_FIELDS)
        else:
            messages.success(request, f"Muted this check until {moment(mute.until)}.")
            return _back_to(request, reverse("web:check", args=[check.pk]))
    context = {
        "check": check,
        "dataset": check.dataset,
        **check_mute_context(check, can_mute=True, form=form),
    }
    return _refused(request, context)


@page
@form_post("web:check", "check_id")
def unmute_check(request: HttpRequest, check_id: int) -> HttpResponse:
    by = signed_in(request)
    check = catalog_queries.get_check(check_id, by=by)
    lifted = mute_services.unmute_check(check.pk, by=by)
    messages.success(request, "Unmuted this check." if lifted else "This check was not muted.")
    return _back_to(request, reverse("web:check", args=[check.pk]))


@page
@form_post("web:dataset", "dataset_id")
def mute_dataset(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    form = MuteForm(request.POST)
    if form.is_valid():
        try:
            mute = mute_services.mute_dataset(
                dataset.pk, by=by, until=form.until_from(timezone.now()), reason=form.cleaned_data["reason"]
            )
        except Invalid as error:
            apply_error(form, error, MUTE_FIELDS)
        else:
            messages.success(request, f"Muted every check of this dataset until {moment(mute.until)}.")
            return _back_to(request, _dataset_page(request, dataset))
    context = {
        "dataset": dataset,
        "tab": request.POST.get("tab", "")[:20],
        **dataset_mute_context(dataset, can_mute=True, form=form),
    }
    return _refused(request, context)


@page
@form_post("web:dataset", "dataset_id")
def unmute_dataset(request: HttpRequest, dataset_id: int) -> HttpResponse:
    by = signed_in(request)
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    lifted = mute_services.unmute_dataset(dataset.pk, by=by)
    messages.success(request, "Unmuted this dataset." if lifted else "This dataset was not muted.")
    return _back_to(request, _dataset_page(request, dataset))


def _dataset_page(request: HttpRequest, dataset: Dataset) -> str:
    """The dataset's tab the form was sent from (its header is on each), else its checks."""
    tab = request.POST.get("tab", "")
    names = {"incidents": "web:dataset_incidents", "scans": "web:dataset_scans"}
    return reverse(names.get(tab, "web:dataset"), args=[dataset.pk])


def _back_to(request: HttpRequest, url: str) -> HttpResponse:
    """The page again after a write: every list on it shows the change (an htmx reload, or a redirect)."""
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _refused(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The mute form with the refusal: swapped into the page with htmx, else on a page of its own."""
    template = "web/_mute.html" if request.htmx else "web/mute.html"  # type: ignore[attr-defined]
    return render(request, template, context, status=400)
