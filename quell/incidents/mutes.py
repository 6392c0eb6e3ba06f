"""Which checks are muted now (reads; the mutes are written by quell.incidents.mute_services)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q
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
