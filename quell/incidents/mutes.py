"""Which checks are muted now (reads; the mutes are written by quell.incidents.mute_services).

A mute whose `until` has passed is over: every read here leaves it out, as if it had been removed
(it stays in the table until someone mutes the same check or dataset again, or unmutes it). The
callers have already checked that the caller may view the checks and datasets they ask about.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.db.models import Q, QuerySet
from django.utils import timezone

from quell.incidents.models import Mute


def muted_check_ids(checks: Iterable[tuple[int, int]], *, at: datetime | None = None) -> set[int]:
    """Of these (check id, dataset id) pairs, the ids of the checks muted at `at` (default now):
    the check itself, or its whole dataset. One statement; none for no checks."""
    pairs = list(checks)
    if not pairs:
        return set()
    moment = at or timezone.now()
    check_ids = {check_id for check_id, _ in pairs}
    dataset_ids = {dataset_id for _, dataset_id in pairs}
    muted_checks: set[int] = set()
    muted_datasets: set[int] = set()
    for check_id, dataset_id in Mute.objects.filter(
        Q(check_ref_id__in=check_ids) | Q(dataset_id__in=dataset_ids), until__gt=moment
    ).values_list("check_ref_id", "dataset_id"):
        if check_id is not None:
            muted_checks.add(check_id)
        else:
            muted_datasets.add(dataset_id)
    return {
        check_id for check_id, dataset_id in pairs if check_id in muted_checks or dataset_id in muted_datasets
    }


def _current(at: datetime | None) -> QuerySet[Mute]:
    """The mutes not over at `at` (default now)."""
    return Mute.objects.filter(until__gt=at or timezone.now())


def _longer(first: Mute | None, second: Mute | None) -> Mute | None:
    """Of two mutes of one check (its own, its dataset's), the one that ends later: the check is
    muted until then. The first on a tie."""
    if first is None or (second is not None and second.until > first.until):
        return second
    return first


def mutes_of_checks(checks: Iterable[tuple[int, int]], *, at: datetime | None = None) -> dict[int, Mute]:
    """Of these (check id, dataset id) pairs, the mute each muted check is under at `at` (default
    now): its own or its whole dataset's, whichever ends later. Checks not muted are left out. One
    statement (a page of a list); none for no checks."""
    pairs = list(checks)
    if not pairs:
        return {}
    own: dict[int, Mute] = {}
    of_dataset: dict[int, Mute] = {}
    for mute in _current(at).filter(
        Q(check_ref_id__in={check_id for check_id, _ in pairs})
        | Q(dataset_id__in={dataset_id for _, dataset_id in pairs})
    ):
        if mute.check_ref_id is not None:
            own[mute.check_ref_id] = mute
        elif mute.dataset_id is not None:
            of_dataset[mute.dataset_id] = mute
    found = {
        check_id: _longer(own.get(check_id), of_dataset.get(dataset_id)) for check_id, dataset_id in pairs
    }
    return {check_id: mute for check_id, mute in found.items() if mute is not None}


def mutes_of_datasets(dataset_ids: Iterable[int], *, at: datetime | None = None) -> dict[int, Mute]:
    """The mutes of these datasets as wholes at `at` (default now), by dataset id; the datasets not
    muted are left out. One statement; none for no datasets."""
    ids = set(dataset_ids)
    if not ids:
        return {}
    return {
        mute.dataset_id: mute
        for mute in _current(at).filter(dataset_id__in=ids)
        if mute.dataset_id is not None
    }


def mute_of_dataset(dataset_id: int, *, at: datetime | None = None) -> Mute | None:
    """The dataset's own mute at `at` (default now), with who made it; None when it is not muted."""
    return _current(at).filter(dataset_id=dataset_id).select_related("created_by").first()


class CheckMutes(NamedTuple):
    """What mutes one check: its own mute and its dataset's (either may be None)."""

    own: Mute | None
    dataset: Mute | None

    @property
    def effective(self) -> Mute | None:
        """The one the check is muted under (the later-ending, as mutes_of_checks chooses)."""
        return _longer(self.own, self.dataset)


def mutes_of_check(check_id: int, dataset_id: int, *, at: datetime | None = None) -> CheckMutes:
    """The check's own mute and its dataset's at `at` (default now), with who made them, in one
    statement (the check's page shows both: each is lifted on its own)."""
    own = dataset = None
    for mute in (
        _current(at).filter(Q(check_ref_id=check_id) | Q(dataset_id=dataset_id)).select_related("created_by")
    ):
        if mute.check_ref_id is not None:
            own = mute
        else:
            dataset = mute
    return CheckMutes(own, dataset)
