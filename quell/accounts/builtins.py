"""The rows every installation starts with: built-in dataset roles, the Everyone group, the organisation.

Written against model classes passed in, so the data migration can call it with its historical
models and tests can call it after a flush with the current ones.
"""

from __future__ import annotations

from typing import Any

ALL_PERMISSIONS = [
    "view_dataset",
    "view_profiling_and_samples",
    "view_failed_rows",
    "configure_dataset",
    "manage_permissions",
    "create_check_proposals",
    "manage_checks",
    "manage_incidents",
    "delete_dataset",
    "manage_contracts",
    "publish_contracts",
    "execute_contracts",
]

BUILTIN_ROLES: dict[str, list[str]] = {
    "Admin": ALL_PERMISSIONS,
    "Manager": [p for p in ALL_PERMISSIONS if p != "publish_contracts"],
    "Editor": [
        "view_dataset",
        "view_profiling_and_samples",
        "view_failed_rows",
        "configure_dataset",
        "create_check_proposals",
        "manage_checks",
        "manage_incidents",
        "execute_contracts",
    ],
    # Unlike Soda's Viewer, Quell's is read-only: no Manage incidents, no proposing checks.
    "Viewer": ["view_dataset", "view_profiling_and_samples", "view_failed_rows"],
}


def ensure(dataset_role: Any, user_group: Any, organization: Any) -> None:
    roles = {}
    for name, perms in BUILTIN_ROLES.items():
        roles[name], _ = dataset_role.objects.get_or_create(
            name=name, defaults={"builtin": True, **{p: p in perms for p in ALL_PERMISSIONS}}
        )
    if not user_group.objects.filter(is_everyone=True).exists():
        user_group.objects.create(name="Everyone", is_everyone=True)
    organization.objects.get_or_create(
        pk=1, defaults={"name": "My organisation", "default_dataset_role": roles["Viewer"]}
    )
