"""Reads of people and the organisation: users, groups and their members, dataset roles, the
caller's API keys, and the organisation's settings.

Nothing here writes. Each returns only what its caller may see: the user list, a user and a group's
members are for admins (quell.accounts.permissions); names, groups, roles and the organisation's
settings are open to every signed-in user. `user_by_email` and `everyone_group` serve the command
line and the demo loader, which act as the operator. The writes (quell.accounts.services) may use
these reads, never the reverse; logging in and its lockout are quell.accounts.logins.
"""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, QuerySet

from quell.accounts.models import ApiKey, DatasetRole, Organization, User, UserGroup
from quell.accounts.permissions import require_admin
from quell.lib.errors import Invalid, NotFound

# --- People ---------------------------------------------------------------------------------------


def list_users(*, by: User) -> QuerySet[User]:
    require_admin(by, "list users")
    return User.objects.filter(is_system=False).order_by("email", "id")


def get_user(user_id: int, *, by: User) -> User:
    require_admin(by, "manage users")
    # Quell's own actor is nobody's to manage: it is not a user an admin sees (services.system_user).
    user = User.objects.filter(pk=user_id, is_system=False).first()
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    return user


def user_by_email(email: str) -> User:
    user = User.objects.filter(email=email.strip().lower(), is_system=False).first()
    if user is None:
        raise NotFound(f"There is no user {email}.")
    return user


def list_people(*, by: User) -> QuerySet[User]:
    """Every user's name and email, for lead pickers and the lead and reporter filters.

    Open to every active user: the names are already on every incident they can see, and a filter
    by lead or reporter is useless without them. Deactivated users stay in the list because they
    may still lead or have reported old incidents.
    """
    if not by.is_active:
        return User.objects.none()
    return User.objects.filter(is_system=False).order_by("name", "email", "id")


# --- Groups ---------------------------------------------------------------------------------------


def everyone_group() -> UserGroup:
    return UserGroup.objects.get(is_everyone=True)


def list_groups(*, by: User) -> QuerySet[UserGroup]:
    """Groups with their member counts. Every active user may read them: responsibilities name them."""
    if not by.is_active:
        return UserGroup.objects.none()
    return UserGroup.objects.annotate(member_count=Count("members")).order_by("-is_everyone", "name", "id")


GROUP_SEARCH_WORDS = 10


def groups_matching(groups: QuerySet[UserGroup], search: str) -> QuerySet[UserGroup]:
    """The groups whose name contains every word of `search`, ignoring case."""
    for word in search.split()[:GROUP_SEARCH_WORDS]:
        groups = groups.filter(name__icontains=word)
    return groups


def get_group(group_id: int, *, by: User) -> UserGroup:
    group = list_groups(by=by).filter(pk=group_id).first()
    if group is None:
        raise NotFound(f"Group {group_id} not found.")
    return group


def group_members(group_id: int, *, by: User) -> QuerySet[User]:
    """The group's members by name, deactivated ones included (they can still be removed); for admins.

    Unevaluated, so a page takes a bounded slice of it. The Everyone group lists nobody: it holds
    every user without naming them.
    """
    require_admin(by, "see group members")
    group = get_group(group_id, by=by)
    return group.members.order_by("name", "email", "id")


def member_candidates(group_id: int, *, by: User) -> QuerySet[User]:
    """The active users not in the group yet, by name: whom it can add. Unevaluated, for a bounded slice.

    Members are excluded in SQL (NOT EXISTS on the membership table), never by loading them.
    """
    require_admin(by, "change group members")
    group = changeable_group(group_id, by=by)
    membership = UserGroup.members.through.objects.filter(usergroup_id=group.pk, user_id=OuterRef("pk"))
    return User.objects.filter(~Exists(membership), is_active=True, is_system=False).order_by(
        "name", "email", "id"
    )


def changeable_group(group_id: int, *, by: User) -> UserGroup:
    """The group whose members are to change: as get_group, but Invalid for Everyone, which holds every
    user without naming them."""
    group = get_group(group_id, by=by)
    if group.is_everyone:
        raise Invalid("Everyone holds every user; its members cannot be changed.", field="members")
    return group


# --- Dataset roles --------------------------------------------------------------------------------


def list_dataset_roles(*, by: User) -> QuerySet[DatasetRole]:
    return DatasetRole.objects.order_by("id")


def get_dataset_role(role_id: int, *, by: User) -> DatasetRole:
    role = list_dataset_roles(by=by).filter(pk=role_id).first()
    if role is None:
        raise NotFound(f"Dataset role {role_id} not found.")
    return role


# --- API keys -------------------------------------------------------------------------------------


def list_api_keys(*, by: User) -> QuerySet[ApiKey]:
    """The caller's own keys, live and revoked, newest first."""
    return ApiKey.objects.filter(user=by).order_by("-created_at", "-id")


# --- The organisation and the Settings pages ------------------------------------------------------


def get_organization(*, by: User) -> Organization:
    # Every signed-in user may read the organisation's name and default role; only admins change them.
    return Organization.get()


def require_settings_access(*, by: User) -> None:
    """The Settings pages are for global admins; every change there checks again."""
    require_admin(by, "open the settings")
