"""Choice lists that stay usable with thousands of choices (people, datasets).

Up to PLAIN_SELECT_MAX choices a plain <select> lists them all. Beyond that the <select> holds only
what is chosen, the few rows the caller asks to keep at hand (themselves, for a lead), and the first
PICKER_MATCHES matches of a search, and a search box narrows it: by a GET reload without scripts,
by an htmx swap of the <select> as one types.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest

PLAIN_SELECT_MAX = 100
PICKER_MATCHES = 50
# Rows kept at hand beyond the matches (what the URL or form chose, the caller): a URL may repeat a
# parameter at will, and each would be an option.
KEPT_MAX = 20
SEARCH_MAX = 200

M = TypeVar("M", bound=Model)


@dataclass
class Picker(Generic[M]):
    """The options of one <select>, and whether it needs a search box."""

    options: list[M]
    large: bool = False
    search: str = ""
    # The search (or the whole list) matched more than PICKER_MATCHES: say so, so one narrows it.
    more: bool = False


def search_term(request: HttpRequest, name: str) -> str:
    """A picker's search box from the query string, bounded like every other text input."""
    return request.GET.get(name, "")[:SEARCH_MAX].strip()


def pick(
    choices: QuerySet[M],
    *,
    search: str = "",
    matches: QuerySet[M] | None = None,
    keep: Collection[int] = (),
    first: list[M] | None = None,
) -> Picker[M]:
    """The options to offer out of `choices`, in at most three bounded queries.

    `matches` is `choices` narrowed by `search` (by the service that knows what a match is); rows
    whose ids are in `keep` come first and are offered whatever the search; `first` are rows to
    offer ahead of everything even if they are not among `choices` (an incident's current lead who
    has lost access since).
    """
    head = list(choices[: PLAIN_SELECT_MAX + 1])
    if len(head) <= PLAIN_SELECT_MAX:
        ahead = list(first or [])
        ahead_ids = {row.pk for row in ahead}
        return Picker([*ahead, *(row for row in head if row.pk not in ahead_ids)])
    found = list(matches[: PICKER_MATCHES + 1]) if search and matches is not None else head
    kept_ids = list(dict.fromkeys(keep))[:KEPT_MAX]
    kept: list[Any] = list(first or [])
    wanted = [pk for pk in kept_ids if pk not in {row.pk for row in kept}]
    if wanted:
        kept += list(choices.filter(pk__in=wanted))
    seen = {row.pk for row in kept}
    shown = [row for row in found[:PICKER_MATCHES] if row.pk not in seen]
    return Picker([*kept, *shown], large=True, search=search, more=len(found) > PICKER_MATCHES)
