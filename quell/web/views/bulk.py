"""The incident lists' bulk actions: set the lead, status or severity of the chosen incidents, or merge
them into one (quell.incidents.merging). One form around the list posts here, with or without scripts;
the answer goes back to the list with a message saying what changed and what was refused, and why."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from quell.accounts import permissions
from quell.accounts.models import User
from quell.incidents import merging
from quell.incidents import queries as incident_queries
from quell.incidents.models import PERSON_REASONS, Incident, Severity, Status
from quell.lib.errors import Invalid, QuellError
from quell.web.forms import as_id
from quell.web.pickers import pick
from quell.web.views.base import form_post, page, signed_in

# Refusals listed one message each; beyond, one more message says how many more.
REFUSALS_SHOWN = 20
PERSON_SHOWN = ("pk", "name", "email")


def bulk_bar(request: HttpRequest, by: User, incidents: list[Incident]) -> dict[str, Any]:
    """The context of a list's bulk form (`bulk`, None when there is nothing to offer): for someone
    who may manage incidents on some dataset, a list that shows incidents.

    The lead choices are the people who may lead an incident of the datasets on the page (each
    incident then checks its own lead); the merge choices are the page's open incidents.
    """
    if not incidents or not _manages_some_incidents(by):
        return {"bulk": None}
    dataset_ids = {dataset.pk for incident in incidents for dataset in incident.visible_datasets}  # type: ignore[attr-defined]
    leads = incident_queries.lead_candidates(dataset_ids, by=by).only(*PERSON_SHOWN)
    return {
        "bulk": {
            "leads": pick(leads, keep=[by.pk]).options,
            "targets": [incident for incident in incidents if incident.is_open],
            "statuses": Status.choices,
            "severities": Severity.choices,
            "reasons": [(reason.value, reason.label) for reason in PERSON_REASONS],
            "next": request.get_full_path(),
        }
    }


def _manages_some_incidents(by: User) -> bool:
    # Only whether to offer the form: each incident is checked again by the service.
    return by.is_admin or permissions.dataset_ids_with(by, permissions.MANAGE_INCIDENTS).exists()


@page
@form_post("web:incidents")
def bulk_incidents(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    back = _back(request)
    chosen = _chosen(request)
    action = request.POST.get("action", "")
    try:
        if not chosen:
            raise Invalid("Choose at least one incident first: tick it in the list.")
        if action == "merge":
            _merge(request, by, chosen)
        elif action in ("lead", "status", "severity"):
            _change(request, by, chosen, **_changes(request, action))
        else:
            raise Invalid("Choose what to do with the chosen incidents.")
    except QuellError as error:
        # A refusal of the whole request (a merge is all or nothing): said atop the list.
        messages.error(request, error.message)
    return redirect(back)


def _back(request: HttpRequest) -> str:
    """The list the form was on (its filters and page), or the Incidents page."""
    url = request.POST.get("next", "")
    if url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return url
    return reverse("web:incidents")


def _chosen(request: HttpRequest) -> list[int]:
    """The ticked incidents, or every incident of the page when "All on this page" is ticked (which
    without scripts ticks nothing else)."""
    name = "on_page" if request.POST.get("all") else "incident"
    ids = [as_id(value) for value in request.POST.getlist(name)]
    return list(dict.fromkeys(pk for pk in ids if pk is not None))


def _changes(request: HttpRequest, action: str) -> dict[str, Any]:
    post = request.POST
    if action == "lead":
        lead_id = as_id(post.get("lead", ""))
        if lead_id is None:
            raise Invalid("Choose the lead to give the chosen incidents.")
        return {"lead_id": lead_id}
    if action == "severity":
        return {"severity": post.get("severity", "")}
    status = post.get("status", "")
    if status != Status.RESOLVED:
        # The reason and note fields are for resolving; changing to an open status ignores them.
        return {"status": status}
    reason = post.get("resolution_reason", "")
    if not reason:
        # As the incident page's form: people say why they resolve (the API records `fixed`).
        raise Invalid("Choose a resolution reason to resolve the chosen incidents, and write the note.")
    return {
        "status": status,
        "resolution_reason": reason,
        "resolution_notes": post.get("resolution_notes", "") or None,
    }


def _change(request: HttpRequest, by: User, chosen: list[int], **changes: Any) -> None:
    outcome = merging.change_incidents(chosen, by=by, **changes)
    if outcome.changed:
        count = len(outcome.changed)
        numbers = ", ".join(f"#{incident.number}" for incident in outcome.changed)
        messages.success(request, f"Changed {count} incident{'s' if count != 1 else ''}: {numbers}.")
    for refusal in outcome.refused[:REFUSALS_SHOWN]:
        # An incident the caller cannot see has no number to show; its message says "not found".
        who = f"#{refusal['number']}" if "number" in refusal else f"Incident {refusal['id']}"
        messages.error(request, f"{who} not changed: {refusal['message']}")
    more = len(outcome.refused) - REFUSALS_SHOWN
    if more > 0:
        messages.error(request, f"{more} more incident{'s' if more != 1 else ''} not changed.")


def _merge(request: HttpRequest, by: User, chosen: list[int]) -> None:
    target_id = as_id(request.POST.get("target", "")) or _by_number(request.POST.get("target_number", ""), by)
    if target_id is None:
        raise Invalid("Choose the incident to merge the chosen ones into.")
    merged_ids = [pk for pk in chosen if pk != target_id]
    if not merged_ids:
        raise Invalid("Choose the incidents to merge besides the one they merge into.")
    numbers = sorted(
        incident_queries.visible_incidents(by).filter(pk__in=merged_ids).values_list("number", flat=True)
    )
    target = merging.merge_incidents(target_id, merged_ids, by=by)
    listed = ", ".join(f"#{number}" for number in numbers)
    messages.success(request, f"Merged {listed} into #{target.number} {target.title}.")


def _by_number(number: str, by: User) -> int | None:
    """The id of the incident with this number (the incident page's "Merge into another incident"
    asks for the number people know), or None when the field is empty; Invalid when they cannot see one."""
    if not number.strip():
        return None
    wanted = as_id(number.strip().removeprefix("#"))
    found = (
        incident_queries.visible_incidents(by).filter(number=wanted).values_list("pk", flat=True).first()
        if wanted is not None
        else None
    )
    if found is None:
        raise Invalid(f"There is no incident #{number.strip().removeprefix('#')} you can see to merge into.")
    return found
