"""Muting checks and whole datasets until a time, and lifting a mute (the writes; the reads are in
quell.incidents.mutes).

A muted check's results are stored and shown as any, but no rule opens, folds into, reopens or
resolves an incident for it, and integrations hear nothing of its results (quell.automation and
quell.integrations ask quell.incidents.mutes). A check or dataset has one mute at most: muting it
again replaces the mute, by whoever mutes it then. A mute ends by itself when `until` passes.

Muting is part of handling incidents, so it takes Manage incidents on the dataset, as opening an
incident does; a check or dataset the caller cannot view is NotFound, as everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import User
from quell.catalog import queries as catalog_queries
from quell.catalog.models import Dataset
from quell.incidents.models import Mute
from quell.lib.errors import Invalid, Unprocessable
from quell.lib.text import require_plain_text

REASON_MAX = 2000
# Longer than this and a mute is a forgotten switch rather than a pause: a check that should stay
# quiet for good is better removed from the scan.
LONGEST_MUTE = timedelta(days=365)


def mute_check(check_id: int, *, by: User, until: datetime, reason: str = "") -> Mute:
    """Mute the check until `until` (in the future, at most LONGEST_MUTE ahead), replacing its mute
    if it has one. The reason is optional plain text, and what people see next to the mute."""
    check = catalog_queries.get_check(check_id, by=by)
    _require_manage(by, check.dataset, "mute its checks")
    until, reason = _checked(until, reason)
    mute, _ = Mute.objects.update_or_create(check_ref=check, defaults=_fields(by, until, reason))
    mute.check_ref = check
    return mute


def unmute_check(check_id: int, *, by: User) -> bool:
    """Lift the check's own mute (not its dataset's). Whether there was one to lift: a check that is
    not muted is left as it is, and that is no error."""
    check = catalog_queries.get_check(check_id, by=by)
    _require_manage(by, check.dataset, "unmute its checks")
    return _lift(Mute.objects.filter(check_ref=check))


def mute_dataset(dataset_id: int, *, by: User, until: datetime, reason: str = "") -> Mute:
    """Mute every check of the dataset, those it will have too, until `until`; as mute_check."""
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    _require_manage(by, dataset, "mute it")
    until, reason = _checked(until, reason)
    mute, _ = Mute.objects.update_or_create(dataset=dataset, defaults=_fields(by, until, reason))
    mute.dataset = dataset
    return mute


def unmute_dataset(dataset_id: int, *, by: User) -> bool:
    """Lift the dataset's mute (its checks' own mutes stay); as unmute_check."""
    dataset = catalog_queries.get_dataset(dataset_id, by=by)
    _require_manage(by, dataset, "unmute it")
    return _lift(Mute.objects.filter(dataset=dataset))


# --- Helpers --------------------------------------------------------------------------------------


def _require_manage(by: User, dataset: Dataset, action: str) -> None:
    permissions.require(by, dataset, permissions.MANAGE_INCIDENTS, action)


def _fields(by: User, until: datetime, reason: str) -> dict[str, Any]:
    # update_or_create: concurrent mutes of one check end as one row (the unique constraint turns the
    # second insert into an update), the last one's.
    return {"until": until, "reason": reason, "created_by": by, "created_at": timezone.now()}


def _lift(mutes: QuerySet[Mute]) -> bool:
    deleted, _ = mutes.delete()
    return bool(deleted)


def _checked(until: datetime, reason: str | None) -> tuple[datetime, str]:
    """`until` (in UTC; one without a zone is read as UTC) and the stripped reason, or Invalid."""
    if timezone.is_naive(until):
        until = until.replace(tzinfo=UTC)
    until = until.astimezone(UTC)
    now = timezone.now()
    if until <= now:
        raise Unprocessable(
            "A mute must end in the future: choose a later time (to lift a mute, unmute instead).",
            code="mute_until_past",
            field="until",
        )
    if until > now + LONGEST_MUTE:
        raise Unprocessable(
            f"A mute may last at most {LONGEST_MUTE.days} days: choose an earlier time.",
            code="mute_until_too_far",
            field="until",
        )
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise Invalid(f"The reason is longer than {REASON_MAX} characters.", code="too_long", field="reason")
    return until, require_plain_text(reason, "reason", label="The reason", multiline=True)
