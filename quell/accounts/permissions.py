"""Who may do what to which dataset: the permission vocabulary and every check of it.

A user's permissions on a dataset are the union of the roles held through responsibilities: their
own, their groups', and the Everyone group's. Global admins hold every permission everywhere.
Every service function asks here; nothing else decides.

At the bottom of the domain apps (accounts, catalog and incidents all import it), so it reads only
the models accounts owns: datasets are known by id here (a responsibility names its dataset by id),
and the catalog builds its querysets of datasets on these checks (quell.catalog.visibility).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from quell.accounts.models import (
    DATASET_PERMISSIONS,
    PERMISSION_FIELDS,
    Organization,
    Responsibility,
    User,
    UserGroup,
)
from quell.lib.errors import Forbidden

M = TypeVar("M", bound=Model)


class OnDataset(Protocol):
    """A dataset as a refusal names it: its key, and its name as people read it."""

    @property
    def pk(self) -> Any: ...


VIEW = "view_dataset"
MANAGE_INCIDENTS = "manage_incidents"
MANAGE_CHECKS = "manage_checks"
MANAGE_PERMISSIONS = "manage_permissions"
VIEW_FAILED_ROWS = "view_failed_rows"
# Change a dataset's settings; also what makes an incident rule for it (quell.incidents.rules).
CONFIGURE_DATASET = "configure_dataset"


# The groups of each user asked about, while a request is answered: a member's incidents page asked
# up to five times (the tallies, each probe of a page's datasets), each a statement of its own.
_remembered: ContextVar[dict[int, list[tuple[int, bool]]] | None] = ContextVar(
    "quell_remembered_groups", default=None
)


@contextmanager
def groups_remembered() -> Iterator[None]:
    """Within this block a user's groups are read once (the web and API requests run in one)."""
    token = _remembered.set({})
    try:
        yield
    finally:
        _remembered.reset(token)


def forget_groups() -> None:
    """Read the groups again from here on: a service changed who is in which group."""
    memo = _remembered.get()
    if memo is not None:
        memo.clear()


def _groups_of(user: User) -> list[tuple[int, bool]]:
    """(id, is Everyone) of the Everyone group and of every group the user is in."""
    memo = _remembered.get()
    if memo is not None and user.pk in memo:
        return memo[user.pk]
    groups = list(
        UserGroup.objects.filter(Q(members=user) | Q(is_everyone=True))
        .order_by()
        .values_list("pk", "is_everyone")
        .distinct()
    )
    if memo is not None:
        memo[user.pk] = groups
    return groups


def _held_by(user: User) -> Q:
    return Q(user=user) | Q(group__members=user) | Q(group__is_everyone=True)


def dataset_ids_with(user: User, permission: str = VIEW) -> QuerySet[Responsibility, int]:
    """A subquery of the ids of datasets on which `user` holds `permission` (not for admins)."""
    assert permission in PERMISSION_FIELDS, permission
    return (
        Responsibility.objects.filter(_held_by(user), **{f"role__{permission}": True})
        .values_list("dataset_id", flat=True)
        .distinct()
    )


def dataset_ids_held_in_person(user: User, permission: str = VIEW) -> QuerySet[Responsibility, int]:
    """A subquery of the datasets on which `user` holds `permission` through their own or their
    groups' responsibilities, leaving out what the Everyone group holds (not for admins).

    The groups are read first, so each side of the OR is an index lookup; joined through the
    memberships, PostgreSQL scanned every responsibility (40 ms with 28,000).
    """
    assert permission in PERMISSION_FIELDS, permission
    groups = [pk for pk, everyone in _groups_of(user) if not everyone]
    return Responsibility.objects.filter(
        Q(user=user) | Q(group_id__in=groups), **{f"role__{permission}": True}
    ).values_list("dataset_id", flat=True)


def holds_on(user: User, dataset: OuterRef, permission: str = VIEW) -> Exists:
    """A per-row condition: `user` (not an admin) holds `permission` on the dataset `dataset` names.

    For filters evaluated row by row, such as "incidents the user can see": it probes the
    responsibilities of that one dataset, where `dataset_id IN dataset_ids_with(user)` made SQLite
    re-run the whole subquery of the user's datasets for every row (minutes at 1,000,000 incidents).
    """
    assert permission in PERMISSION_FIELDS, permission
    groups = [pk for pk, _ in _groups_of(user)]
    return Exists(
        Responsibility.objects.filter(Q(user=user) | Q(group_id__in=groups), dataset_id=dataset).filter(
            **{f"role__{permission}": True}
        )
    )


def permissions_on(user: User, dataset_id: int) -> frozenset[str]:
    if not user.is_active:
        return frozenset()
    if user.is_admin:
        return frozenset(PERMISSION_FIELDS)
    held: set[str] = set()
    for resp in Responsibility.objects.filter(_held_by(user), dataset_id=dataset_id).select_related("role"):
        held |= resp.role.permissions()
    # A role without "view dataset" grants nothing: the other permissions presuppose seeing it.
    return frozenset(held) if VIEW in held else frozenset()


def permissions_on_many(user: User, dataset_ids: set[int]) -> dict[int, frozenset[str]]:
    """Permissions on several datasets in one query."""
    if not user.is_active:
        return {dataset_id: frozenset() for dataset_id in dataset_ids}
    if user.is_admin:
        return {dataset_id: frozenset(PERMISSION_FIELDS) for dataset_id in dataset_ids}
    held: dict[int, set[str]] = {dataset_id: set() for dataset_id in dataset_ids}
    rows = Responsibility.objects.filter(_held_by(user), dataset_id__in=dataset_ids).select_related("role")
    for resp in rows:
        held[resp.dataset_id] |= resp.role.permissions()
    return {ds: frozenset(perms) if VIEW in perms else frozenset() for ds, perms in held.items()}


def only_viewable(rows: QuerySet[M], user: User, dataset: str = "dataset_id") -> QuerySet[M]:
    """These rows (a page's, a request's: a few hundred at most) whose dataset the user may view.

    All of them for an admin; otherwise a probe of each row's dataset (`dataset` names its column),
    where `dataset IN (datasets the user can view)` made SQLite list every one of those first: 16-44
    ms per statement for a member who sees 7,000 datasets, at 1,000,000 incidents.
    """
    if not user.is_active:
        return rows.none()
    if user.is_admin:
        return rows
    return rows.filter(holds_on(user, OuterRef(dataset), VIEW))


def require(user: User, dataset: OnDataset, permission: str, action: str) -> None:
    if permission not in permissions_on(user, dataset.pk):
        raise Forbidden(f"You need the {_label(permission)} permission on dataset {dataset} to {action}.")


def require_on_each(user: User, datasets: Sequence[OnDataset], permission: str, action: str) -> None:
    """`require` for several datasets in one query; the first one lacking names the refusal."""
    held = permissions_on_many(user, {dataset.pk for dataset in datasets})
    for dataset in datasets:
        if permission not in held[dataset.pk]:
            raise Forbidden(f"You need the {_label(permission)} permission on dataset {dataset} to {action}.")


def holds_anywhere(user: User, permission: str) -> bool:
    """Whether `user` holds `permission` (with View dataset, as everywhere) on some dataset: an
    admin always. One probe of the responsibilities, the groups read first as in holds_on."""
    assert permission in PERMISSION_FIELDS, permission
    if not user.is_active:
        return False
    if user.is_admin:
        return True
    groups = [pk for pk, _ in _groups_of(user)]
    return (
        Responsibility.objects.filter(Q(user=user) | Q(group_id__in=groups), role__view_dataset=True)
        .filter(**{f"role__{permission}": True})
        .order_by()
        .exists()
    )


def can_create_datasets(user: User) -> bool:
    if not user.is_active:
        return False
    return user.is_admin or Organization.get().users_can_create_datasets


def require_admin(user: User, action: str) -> None:
    if not user.is_admin:
        raise Forbidden(f"Only an admin can {action}.")


def _label(permission: str) -> str:
    """The permission's name as the role editor shows it, so a refusal names what an admin can grant."""
    labels = {field: label for field, _, label in DATASET_PERMISSIONS}
    return '"' + labels.get(permission, permission.replace("_", " ").capitalize()) + '"'
