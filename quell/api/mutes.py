"""REST endpoints that mute a check or a whole dataset until a time, and lift the mute; and the shape
a mute has in the checks' and datasets' representations (quell.api.catalog)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Path, Router, Status

from quell.api.base import (
    MAX_ID,
    UNPROCESSABLE,
    WRITE_ERRORS,
    Body,
    Schema,
    UserRef,
    UtcDatetime,
    caller,
    request_examples,
    text,
    user_ref,
)
from quell.incidents import mute_services
from quell.incidents.models import Mute
from quell.lib.text import TEXT_PATTERN

router = Router(tags=["datasets and checks"])

CheckId = Annotated[int, Path(ge=1, le=MAX_ID, description="The check's id.", example=1)]
DatasetId = Annotated[int, Path(ge=1, le=MAX_ID, description="The dataset's id.", example=5)]

MUTED = (
    "A muted check's results are stored and shown as any, but no incident rule opens, folds into, "
    "reopens or resolves an incident for it, and no integration hears of its results. The mute ends "
    "by itself at `until`."
)
RULES = (
    "Needs Manage incidents on the dataset (403 without; 404 if you cannot view it). `until` must be "
    f"in the future (400 `mute_until_past`) and at most {mute_services.LONGEST_MUTE.days} days ahead "
    "(400 `mute_until_too_far`)."
)


class MutedOut(Schema):
    until: datetime = Field(description="When the mute ends by itself.")
    reason: str = Field(description="Why it was muted, in the words of who muted it; may be empty.")
    scope: Literal["check", "dataset"] = Field(
        description="`check`: the check itself is muted; `dataset`: its whole dataset is."
    )


class MuteOut(MutedOut):
    createdBy: UserRef | None = Field(description="Who muted it; null once that user is deleted.")
    createdAt: datetime = Field(description="When it was muted (or last muted again).")


class MuteIn(Body):
    until: UtcDatetime = Field(
        description="When the mute ends: an ISO 8601 date-time with its offset (one without is read as "
        "UTC), in the future and at most a year ahead.",
        examples=["2026-12-08T06:00:00+01:00"],
    )
    reason: str = text(
        "",
        description="Why it is muted (a planned migration, a known upstream delay), shown with the mute; "
        "may span lines, and may be left out, though the people who see the mute will want to know.",
        max_length=mute_services.REASON_MAX,
        pattern=TEXT_PATTERN,
    )


def _scope(mute: Mute) -> str:
    return "check" if mute.check_ref_id is not None else "dataset"


def muted_out(mute: Mute | None) -> dict[str, Any] | None:
    """A check's or dataset's `muted`: null, or the mute it is under."""
    if mute is None:
        return None
    return {"until": mute.until, "reason": mute.reason, "scope": _scope(mute)}


def mute_out(mute: Mute) -> dict[str, Any]:
    return {
        **(muted_out(mute) or {}),
        "createdBy": user_ref(mute.created_by),
        "createdAt": mute.created_at,
    }


# The examples' `until`, this long after the moment the document is built (date_the_examples).
_EXAMPLE_LENGTHS = {"day": timedelta(days=1), "week": timedelta(days=7)}
_EXAMPLES = request_examples(
    day=(
        "For a day, with the reason people will see",
        {"until": "2026-12-08T06:00:00Z", "reason": "The nightly load is being migrated; expect failures."},
    ),
    week=("For a week, without a reason", {"until": "2026-12-14T06:00:00Z"}),
)
_MUTE_PATHS = ("/checks/{check_id}/mute", "/datasets/{dataset_id}/mute")


def date_the_examples(document: Mapping[str, Any]) -> None:
    """Give the mute examples' `until` a day and a week from now: a fixed time would be in the past
    (and refused) by the time someone tries it. The document is built for each request of it."""
    now = timezone.now().replace(microsecond=0)
    for path, operations in document.get("paths", {}).items():
        if not path.endswith(_MUTE_PATHS) or "post" not in operations:
            continue
        examples = operations["post"]["requestBody"]["content"]["application/json"]["examples"]
        for name, length in _EXAMPLE_LENGTHS.items():
            value = {**examples[name]["value"], "until": (now + length).isoformat().replace("+00:00", "Z")}
            examples[name] = {**examples[name], "value": value}


@router.post(
    "/checks/{check_id}/mute",
    response={200: MuteOut, **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Mute a check until a time",
    description=f"{MUTED} Muting a muted check replaces its mute. {RULES}",
    openapi_extra=_EXAMPLES,
)
def mute_check(request: HttpRequest, check_id: CheckId, payload: MuteIn) -> dict[str, Any]:
    mute = mute_services.mute_check(check_id, by=caller(request), until=payload.until, reason=payload.reason)
    return mute_out(mute)


@router.delete(
    "/checks/{check_id}/mute",
    response={204: None, **WRITE_ERRORS},
    summary="Unmute a check",
    description="Lifts the check's own mute; a mute of its whole dataset stays (unmute the dataset). A "
    "check that is not muted is left as it is (204 too). Needs Manage incidents on its dataset (403 "
    "without; 404 if you cannot view it).",
)
def unmute_check(request: HttpRequest, check_id: CheckId) -> Status[None]:
    mute_services.unmute_check(check_id, by=caller(request))
    return Status(204, None)


@router.post(
    "/datasets/{dataset_id}/mute",
    response={200: MuteOut, **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Mute every check of a dataset until a time",
    description=f"Mutes every check of the dataset, those it gets later too. {MUTED} Muting a muted "
    f"dataset replaces its mute; its checks' own mutes stay as they are. {RULES}",
    openapi_extra=_EXAMPLES,
)
def mute_dataset(request: HttpRequest, dataset_id: DatasetId, payload: MuteIn) -> dict[str, Any]:
    mute = mute_services.mute_dataset(
        dataset_id, by=caller(request), until=payload.until, reason=payload.reason
    )
    return mute_out(mute)


@router.delete(
    "/datasets/{dataset_id}/mute",
    response={204: None, **WRITE_ERRORS},
    summary="Unmute a dataset",
    description="Lifts the dataset's mute; checks muted on their own stay muted. A dataset that is not "
    "muted is left as it is (204 too). Needs Manage incidents on it (403 without; 404 if you cannot "
    "view it).",
)
def unmute_dataset(request: HttpRequest, dataset_id: DatasetId) -> Status[None]:
    mute_services.unmute_dataset(dataset_id, by=caller(request))
    return Status(204, None)
