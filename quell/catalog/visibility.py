"""Which datasets a user may see or act on, as querysets and rows of the catalog.

Built on the checks of quell.accounts.permissions, which know datasets only by id; these are the
ones that read the datasets themselves (an admin sees every existing dataset, a fetch answers NotFound
for a dataset that is missing or hidden alike).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import OuterRef, QuerySet

from quell.accounts.models import User
from quell.accounts.permissions import (
    MANAGE_CHECKS,
    VIEW,
    can_create_datasets,
    dataset_ids_with,
    holds_on,
    permissions_on_many,
)
from quell.catalog.models import Dataset, DataSource
from quell.lib.errors import NotFound


def datasets_with(user: User, permission: str = VIEW) -> QuerySet[Dataset]:
    if not user.is_active:
        return Dataset.objects.none()
    if user.is_admin:
        return Dataset.objects.all()
    return Dataset.objects.filter(id__in=dataset_ids_with(user, permission))


def viewable_among(user: User, dataset_ids: Iterable[int]) -> list[int]:
    """Those of these datasets the user may view (existing ones only), in one query.

    For a few ids named by a filter: it reads the responsibilities of those datasets, where
    `datasets_with(user).filter(pk__in=ids)` made SQLite build the list of every dataset the user
    can view first (7,000 of them, 16 ms, at 1,000,000 incidents).
    """
    wanted = set(dataset_ids)
    if not wanted or not user.is_active:
        return []
    if user.is_admin:
        return sorted(Dataset.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    return sorted(pk for pk, perms in permissions_on_many(user, wanted).items() if VIEW in perms)


def visible_dataset(user: User, dataset_id: int) -> Dataset:
    """The dataset, or NotFound when it does not exist or the user may not see it."""
    dataset = datasets_with(user, VIEW).select_related("data_source").filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound(f"Dataset {dataset_id} not found.")
    return dataset


def can_create_datasets_in(user: User, data_source: DataSource) -> bool:
    """Whether a push by `user` may add a new dataset to this data source.

    Beyond `can_create_datasets`: an admin may; anyone else when they hold Manage checks on one of
    its datasets, or when it holds no dataset they cannot see. A push that names a dataset the
    caller cannot see is refused exactly as a creation is, so the name stays hidden from all who
    may not create there; those who may could tell (their new name is created, the hidden one
    refused), which is why they must already push to that data source.
    """
    if not can_create_datasets(user):
        return False
    if user.is_admin:
        return True
    in_source = Dataset.objects.filter(data_source=data_source)
    # Probes per dataset, stopping at the first found (see holds_on): a data source may hold thousands.
    if in_source.filter(holds_on(user, OuterRef("pk"), MANAGE_CHECKS)).exists():
        return True
    return not in_source.filter(~holds_on(user, OuterRef("pk"), VIEW)).exists()
