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
    head: list[M] | None = None,
) -> Picker[M]:
    """The options to offer out of `choices`, in at most three bounded queries.

    `matches` is `choices` narrowed by `search` (by the service that knows what a match is); rows
    whose ids are in `keep` come first and are offered whatever the search; `first` are rows to
    offer ahead of everything even if they are not among `choices` (an incident's current lead who
    has lost access since). `head`: the first PLAIN_SELECT_MAX + 1 rows of `choices`, if the caller
    has read them already.
    """
    if head is None:
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


@dataclass(frozen=True)
class Choices(Generic[M]):
    """One kind of choice in a <select> of several kinds, each an <optgroup> (groups, then users).

    `name` prefixes each option's value (`group:3`); `matches` is `choices` narrowed by a search, by
    the service that knows what a match is; rows whose ids are in `keep` are offered whatever the
    search (what a form being shown again chose).
    """

    name: str
    label: str
    choices: QuerySet[M]
    matches: QuerySet[M] | None = None
    keep: Collection[int] = ()


@dataclass
class Section:
    """One <optgroup> of a MixedPicker: its kind's name and label, and the rows it offers."""

    name: str
    label: str
    options: list[Any]


@dataclass
class MixedPicker:
    """The options of a <select> of several kinds, counted together, and whether it needs a search box."""

    sections: list[Section]
    large: bool = False
    search: str = ""
    more: bool = False
    shown_max: int = PICKER_MATCHES

    @property
    def empty(self) -> bool:
        return not any(section.options for section in self.sections)


def _shares(available: list[int], total: int) -> list[int]:
    """How many of each kind to show out of `total`: in turn, so one kind cannot crowd out another."""
    shares = [0] * len(available)
    left = total
    while left:
        before = left
        for i, count in enumerate(available):
            if left and shares[i] < count:
                shares[i] += 1
                left -= 1
        if left == before:
            break
    return shares


def pick_mixed(kinds: list[Choices[Any]], *, search: str = "") -> MixedPicker:
    """The options to offer out of several kinds of choices, counted together against the same bounds as pick().

    Up to PLAIN_SELECT_MAX choices in all, every one is offered, in one query per kind. Beyond that
    the kept rows come first, then up to PICKER_MATCHES matches (or choices, without a search) in all,
    shared in turn among the kinds, each kind's query bounded by a LIMIT.
    """
    heads: list[list[Any]] = []
    complete: list[bool] = []
    room = PLAIN_SELECT_MAX + 1
    for kind in kinds:
        head = list(kind.choices[:room]) if room else []
        complete.append(len(head) < room)
        heads.append(head)
        room -= len(head)
    if room:
        return MixedPicker(
            [Section(kind.name, kind.label, head) for kind, head in zip(kinds, heads, strict=True)]
        )
    kept: list[list[Any]] = []
    found: list[list[Any]] = []
    matched = 0
    for kind, head, whole in zip(kinds, heads, complete, strict=True):
        wanted = list(dict.fromkeys(kind.keep))[:KEPT_MAX]
        kept.append(list(kind.choices.filter(pk__in=wanted)) if wanted else [])
        if search and kind.matches is not None:
            rows = list(kind.matches[: PICKER_MATCHES + 1])
        elif whole or len(head) > PICKER_MATCHES:
            rows = head[: PICKER_MATCHES + 1]
        else:
            rows = list(kind.choices[: PICKER_MATCHES + 1])
        matched += len(rows)
        kept_ids = {row.pk for row in kept[-1]}
        found.append([row for row in rows if row.pk not in kept_ids])
    shares = _shares([len(rows) for rows in found], PICKER_MATCHES)
    sections = [
        Section(kind.name, kind.label, [*rows_kept, *rows[:share]])
        for kind, rows_kept, rows, share in zip(kinds, kept, found, shares, strict=True)
    ]
    return MixedPicker(sections, large=True, search=search, more=matched > PICKER_MATCHES)
