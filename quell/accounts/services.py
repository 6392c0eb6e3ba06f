"""Changes to people and the organisation: users and their global roles, groups and their members,
dataset roles, the organisation's settings, API keys, passwords and time zones.

Each checks the caller's permissions (quell.accounts.permissions; `by=None` is the operator at the
command line), validates and writes. The reads are quell.accounts.queries, which these use to find
what they change; the password checks under the log-in lockout are quell.accounts.logins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.logins import check_password_throttled, clear_login_failures
from quell.accounts.models import (
    PERMISSION_FIELDS,
    ApiKey,
    DatasetRole,
    GlobalRole,
    Organization,
    User,
    UserGroup,
)
from quell.accounts.permissions import require_admin
from quell.accounts.queries import changeable_group, get_dataset_role, get_group, get_user, list_api_keys
from quell.lib.errors import Invalid, NotFound, Taken, Unprocessable
from quell.lib.text import require_plain_text
from quell.lib.zones import is_known_zone

_Saved = TypeVar("_Saved")


def create_user(
    *,
    by: User | None,
    email: str,
    name: str = "",
    password: str | None = None,
    global_role: str = GlobalRole.USER,
) -> User:
    """Create a user. `by=None` is the operator at the command line, who may do anything."""
    if by is not None:
        require_admin(by, "create users")
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Invalid(f"{email!r} is not an email address.", code="invalid_email", field="email") from None
    if global_role not in GlobalRole.values:
        raise Invalid(f"globalRole must be one of {', '.join(GlobalRole.values)}.", field="globalRole")
    name = require_plain_text((name or "").strip(), "name", label="The name")
    if password:
        # The user-to-be, unsaved, so the similarity validator compares the password with their email and name.
        _validated_password(password, User(email=email, name=name), "password")
    taken = Taken(f"There is already a user {email}.", code="email_taken", field="email")
    if User.objects.filter(email=email).exists():
        raise taken
    try:
        # A savepoint inside a caller's transaction: the INSERT of an address someone is creating at
        # the same moment waits for them (PostgreSQL), then fails alone and leaves that transaction usable.
        with transaction.atomic():
            return User.objects.create_user(email, password, name=name, global_role=global_role)
    except IntegrityError:
        raise taken from None


def set_admin(email: str, password: str) -> User:
    """Create or promote an admin with this password (the `createadmin` command)."""
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is not None:
        _refuse_system(user, "log in")
    if user is None:
        return create_user(by=None, email=email, password=password, global_role=GlobalRole.ADMIN)
    _validated_password(password, user, "password")
    if not user.is_active:
        _revoke_api_keys(user)  # reactivated, as by set_user_active: without their old keys
    user.global_role = GlobalRole.ADMIN
    user.is_active = True
    user.set_password(password)
    user.save()
    return user


SYSTEM_EMAIL = "quell@system.invalid"  # .invalid (RFC 2606): no mail can ever reach it
SYSTEM_NAME = "Quell"


def system_user() -> User:
    """Quell itself, the actor of what the incident rules do (created on first use).

    An admin, so the incident services' permission checks pass for it as for any admin; it cannot
    log in (no usable password), gets no API keys and is left out of every list of people
    (accounts.queries). Made on first use rather than by a migration: a test database emptied
    between tests, or an organisation restored from a dump without it, gets it back.
    """
    user = User.objects.filter(is_system=True).order_by("pk").first()
    if user is not None:
        return user
    try:
        # A savepoint: two ingests creating it at once (PostgreSQL) leave one, and the loser's
        # transaction stays usable.
        with transaction.atomic():
            user = User(email=SYSTEM_EMAIL, name=SYSTEM_NAME, global_role=GlobalRole.ADMIN, is_system=True)
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        return User.objects.get(email=SYSTEM_EMAIL)


def _refuse_system(user: User, what: str) -> None:
    if user.is_system:
        raise Unprocessable(
            f"{user.display_name} is Quell itself (the actor of the incident rules): it cannot {what}.",
            code="system_user",
        )


def create_api_key(*, user: User, name: str = "") -> tuple[ApiKey, str]:
    _refuse_system(user, "have API keys")
    if not user.is_active:
        raise Invalid(f"{user.email} is deactivated and cannot get an API key.")
    name = require_plain_text((name or "").strip(), "name", label="The key's name")
    return ApiKey.issue(user, name=name[:200])


def update_organization(
    *,
    by: User,
    name: str | None = None,
    default_dataset_role_id: int | None = None,
    clear_default_role: bool = False,
    fold_results: bool | None = None,
) -> Organization:
    """Change what is given; None leaves a setting as it is. `fold_results`: whether a new warn or
    fail result of a check already in an open incident is attached to it on ingest."""
    require_admin(by, "change organisation settings")
    org = Organization.get()
    if name is not None:
        if not name.strip():
            raise Invalid("The organisation needs a name.", field="name")
        org.name = require_plain_text(name.strip(), "name", label="The organisation's name")[:200]
    if clear_default_role:
        org.default_dataset_role = None
    elif default_dataset_role_id is not None:
        role = DatasetRole.objects.filter(pk=default_dataset_role_id).first()
        if role is None:
            raise Unprocessable(
                f"There is no dataset role {default_dataset_role_id}.",
                code="unknown_role",
                field="defaultDatasetRoleId",
            )
        org.default_dataset_role = role
    if fold_results is not None:
        org.fold_results = fold_results
    org.save()
    return org


def create_dataset_role(*, by: User, name: str, permissions: set[str]) -> DatasetRole:
    require_admin(by, "define dataset roles")
    name = require_plain_text((name or "").strip(), "name", label="A role's name")
    if not name:
        raise Invalid("A role needs a name.", field="name")
    unknown = permissions - set(PERMISSION_FIELDS)
    if unknown:
        raise Invalid(f"Unknown permissions: {', '.join(sorted(unknown))}.", field="permissions")
    if DatasetRole.objects.filter(name__iexact=name).exists():
        raise _role_name_taken(name)
    # Every other permission presupposes seeing the dataset.
    flags = {field: field in permissions or field == "view_dataset" for field in PERMISSION_FIELDS}
    return _saved_unless_taken(lambda: DatasetRole.objects.create(name=name, **flags), _role_name_taken(name))


def _role_name_taken(name: str) -> Taken:
    return Taken(f"There is already a role named {name}.", code="name_taken", field="name")


# --- People ---------------------------------------------------------------------------------------


def _other_active_admins(user: User) -> bool:
    others = User.objects.filter(global_role=GlobalRole.ADMIN, is_active=True, is_system=False)
    return others.exclude(pk=user.pk).exists()


def _revoke_api_keys(user: User) -> None:
    # Revoking a key ends the Soda Core tokens logged in with it as well (ingest checks the key).
    ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def set_user_active(user_id: int, active: bool, *, by: User) -> User:
    """Deactivate (they can no longer log in; their API keys are revoked) or reactivate a user.

    Deactivation revokes the user's API keys, and with them their Soda Core tokens, for good:
    keys live on in scripts and schedulers, and reactivating someone must not quietly bring those
    back. A reactivated user makes new keys. Reactivation revokes any key still live too: those of
    users deactivated before Quell revoked keys at deactivation.
    """
    with transaction.atomic():
        user = get_user(user_id, by=by)
        if not active and user.pk == by.pk:
            raise Invalid("You cannot deactivate yourself.", code="deactivate_self", field="active")
        if not active and user.is_admin and not _other_active_admins(user):
            raise Invalid("The last active admin cannot be deactivated.", code="last_admin", field="active")
        if user.is_active != active:
            _revoke_api_keys(user)
        user.is_active = active
        user.save(update_fields=["is_active"])
    return user


def set_global_role(user_id: int, global_role: str, *, by: User) -> User:
    if global_role not in GlobalRole.values:
        raise Invalid(f"globalRole must be one of {', '.join(GlobalRole.values)}.", field="globalRole")
    with transaction.atomic():
        user = get_user(user_id, by=by)
        demoting = user.global_role == GlobalRole.ADMIN and global_role != GlobalRole.ADMIN
        # Without an admin nobody could manage users or roles any more, short of the command line.
        if demoting and user.is_active and not _other_active_admins(user):
            raise Invalid("The last active admin must stay an admin.", code="last_admin", field="globalRole")
        user.global_role = global_role
        user.save(update_fields=["global_role"])
    return user


# --- Groups ---------------------------------------------------------------------------------------


def _group_name(name: str, *, exclude_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A group needs a name.", code="name_required", field="name")
    if len(name) > 200:
        raise Invalid("A group name is at most 200 characters.", code="name_too_long", field="name")
    require_plain_text(name, "name", label="A group name")
    taken = UserGroup.objects.filter(name__iexact=name)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise _group_name_taken(name)
    return name


def _group_name_taken(name: str) -> Taken:
    return Taken(f"There is already a group named {name}.", code="name_taken", field="name")


def _saved_unless_taken(save: Callable[[], _Saved], taken: Taken) -> _Saved:
    """`save()` in a savepoint; a unique violation (someone took the name a moment ago, after our
    check: PostgreSQL makes the second INSERT wait for the first, then fail) becomes `taken`."""
    try:
        with transaction.atomic():
            return save()
    except IntegrityError:
        raise taken from None


def create_group(*, by: User, name: str) -> UserGroup:
    require_admin(by, "create groups")
    with transaction.atomic():
        name = _group_name(name)
        return _saved_unless_taken(lambda: UserGroup.objects.create(name=name), _group_name_taken(name))


def rename_group(group_id: int, name: str, *, by: User) -> UserGroup:
    require_admin(by, "rename groups")
    with transaction.atomic():
        group = get_group(group_id, by=by)
        if group.is_everyone:
            raise Invalid("The Everyone group cannot be renamed.", code="everyone_fixed", field="name")
        group.name = _group_name(name, exclude_id=group.pk)
        _saved_unless_taken(lambda: group.save(update_fields=["name"]), _group_name_taken(group.name))
    return group


def delete_group(group_id: int, *, by: User) -> None:
    """Delete a group; the responsibilities that name it go with it."""
    require_admin(by, "delete groups")
    with transaction.atomic():
        group = get_group(group_id, by=by)
        if group.is_everyone:
            raise Invalid("The Everyone group cannot be deleted.", code="everyone_fixed")
        group.delete()
        permissions.forget_groups()


def set_group_members(group_id: int, user_ids: list[int], *, by: User) -> UserGroup:
    """Replace the group's members with exactly these users."""
    require_admin(by, "change group members")
    with transaction.atomic():
        group = changeable_group(group_id, by=by)
        wanted = set(user_ids)
        users = list(User.objects.filter(pk__in=wanted, is_system=False))
        _refuse_unknown(wanted, users, "members")
        group.members.set(users)
        permissions.forget_groups()
    return group


# One change adds or removes at most this many people: the ids go into one `IN (...)`, and the
# pages offer 100 members and 50 candidates at a time.
MEMBERS_PER_CHANGE = 500


def _known_users(user_ids: Collection[int], field: str) -> list[User]:
    """The users with these ids, or Invalid naming the ids that match nobody."""
    wanted = set(user_ids)
    if len(wanted) > MEMBERS_PER_CHANGE:
        raise Invalid(
            f"Change at most {MEMBERS_PER_CHANGE} people at a time.", code="too_many_users", field=field
        )
    users = list(User.objects.filter(pk__in=wanted, is_system=False))
    _refuse_unknown(wanted, users, field)
    return users


def _refuse_unknown(wanted: set[int], found: list[User], field: str) -> None:
    missing = wanted - {user.pk for user in found}
    if missing:
        raise Invalid(
            f"Unknown users: {', '.join(str(pk) for pk in sorted(missing))}.",
            code="unknown_user",
            field=field,
        )


def change_group_members(
    group_id: int, *, add: Collection[int] = (), remove: Collection[int] = (), by: User
) -> UserGroup:
    """Add some people to the group and remove others, in one transaction, leaving every other member be.

    Never replaces the whole list, so two admins changing different people at once both keep their
    changes. Adding a member or removing a non-member does nothing (someone did it meanwhile).
    Refused as a whole, changing nothing, for an unknown user, a deactivated user to add (they
    could not use the group), one user both added and removed, or the Everyone group.
    """
    require_admin(by, "change group members")
    with transaction.atomic():
        group = changeable_group(group_id, by=by)
        adding = _known_users(add, "add")
        removing = _known_users(remove, "remove")
        inactive = sorted(user.email for user in adding if not user.is_active)
        if inactive:
            raise Invalid(
                f"Deactivated users cannot be added: {', '.join(inactive)}.",
                code="inactive_user",
                field="add",
            )
        both = {user.pk for user in adding} & {user.pk for user in removing}
        if both:
            raise Invalid(
                "A person cannot be both added and removed at once.", code="add_and_remove", field="add"
            )
        # add() inserts only the missing rows and ignores one another admin inserted meanwhile;
        # remove() deletes only these rows.
        group.members.add(*adding)
        group.members.remove(*removing)
        permissions.forget_groups()
    return group


def add_group_members(group_id: int, user_ids: list[int], *, by: User) -> UserGroup:
    """Add these active users to the group, keeping its other members (see change_group_members)."""
    return change_group_members(group_id, add=user_ids, by=by)


def remove_group_members(group_id: int, user_ids: list[int], *, by: User) -> UserGroup:
    """Remove these users from the group, keeping its other members (see change_group_members)."""
    return change_group_members(group_id, remove=user_ids, by=by)


# --- Dataset roles --------------------------------------------------------------------------------


def update_dataset_role(role_id: int, *, by: User, name: str, permissions: set[str]) -> DatasetRole:
    """Rename a custom role and replace its permissions. Built-in roles are fixed."""
    require_admin(by, "change dataset roles")
    with transaction.atomic():
        role = get_dataset_role(role_id, by=by)
        if role.builtin:
            raise Invalid(f"{role.name} is built in and cannot be changed.", code="builtin_role")
        name = require_plain_text((name or "").strip(), "name", label="A role's name")
        if not name:
            raise Invalid("A role needs a name.", field="name")
        unknown = permissions - set(PERMISSION_FIELDS)
        if unknown:
            raise Invalid(f"Unknown permissions: {', '.join(sorted(unknown))}.", field="permissions")
        if DatasetRole.objects.filter(name__iexact=name).exclude(pk=role.pk).exists():
            raise _role_name_taken(name)
        role.name = name[:100]
        for permission in PERMISSION_FIELDS:
            setattr(role, permission, permission in permissions or permission == "view_dataset")
        _saved_unless_taken(role.save, _role_name_taken(role.name))
    return role


def delete_dataset_role(role_id: int, *, by: User) -> None:
    require_admin(by, "delete dataset roles")
    with transaction.atomic():
        role = get_dataset_role(role_id, by=by)
        if role.builtin:
            raise Invalid(f"{role.name} is built in and cannot be deleted.", code="builtin_role")
        in_use = role.responsibilities.count()
        if in_use:
            raise Invalid(
                f"{role.name} is given in {in_use} responsibilit{'y' if in_use == 1 else 'ies'}; "
                "give those people another role first.",
                code="role_in_use",
            )
        if Organization.get().default_dataset_role_id == role.pk:
            raise Invalid(
                f"{role.name} is the role Everyone gets on new datasets; choose another one first.",
                code="role_in_use",
            )
        role.delete()


# --- API keys -------------------------------------------------------------------------------------


def revoke_api_key(key_pk: int, *, by: User) -> ApiKey:
    """Revoke one of the caller's own keys; revoking twice keeps the first time."""
    with transaction.atomic():
        key = list_api_keys(by=by).select_for_update().filter(pk=key_pk).first()
        if key is None:
            raise NotFound(f"API key {key_pk} not found.")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    return key


# --- Passwords ------------------------------------------------------------------------------------


def _validated_password(new: str, user: User, field: str) -> str:
    try:
        validate_password(new, user)
    except ValidationError as error:
        raise Unprocessable(" ".join(error.messages), code="weak_password", field=field) from None
    return new


def change_own_password(user: User, current: str, new: str, *, ip: str | None = None) -> None:
    """Change the caller's own password, given the current one.

    A wrong current password counts as a failed log-in for the account and the address (`ip`, the
    client's), and the log-in lockout refuses the change too, so this form is no way around the
    log-in throttle for someone holding a session or an API key who wants to learn the password; a
    right one forgets the account's failures, as a log-in does. The new password passes the same
    validators as any other and must differ from the current one. Refused, it changes nothing but
    that failure count. Every session of the user ends with the change except
    the one the caller keeps by calling `update_session_auth_hash` (Django's session auth hash is
    derived from the password hash, so sessions made with the old one no longer validate).
    """

    def check() -> User | None:
        # Read the stored hash afresh: the caller's object may be older than a change made meanwhile.
        stored = User.objects.filter(pk=user.pk).first()
        return stored if stored is not None and stored.check_password(current or "") else None

    stored = check_password_throttled(user.email, ip, check, field="currentPassword")
    if stored is None:
        raise Unprocessable(
            "That is not your current password.", code="wrong_password", field="currentPassword"
        )
    _validated_password(new, stored, "newPassword")
    if new == current:
        raise Unprocessable(
            "The new password must differ from the current one.", code="same_password", field="newPassword"
        )
    stored.set_password(new)
    stored.save(update_fields=["password"])
    # The caller's object carries the new hash too, so update_session_auth_hash stores the right one.
    user.password = stored.password


def set_own_time_zone(user: User, time_zone: str) -> User:
    """Set the zone the caller reads times in: an IANA name this system knows ("Europe/Berlin"), or
    "" for their browser's zone. Anything else is refused and changes nothing."""
    time_zone = (time_zone or "").strip()
    if time_zone and not is_known_zone(time_zone):
        raise Invalid(
            f"{time_zone[:64]!r} is not a time zone Quell knows. Choose one from the list, "
            "such as Europe/Berlin, or your browser's zone.",
            code="unknown_time_zone",
            field="timeZone",
        )
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    return user


def set_password(user_id: int, new: str, *, by: User | None) -> User:
    """Give a user a new password (for someone who lost theirs); their existing sessions end.

    For admins; `by=None` is the operator at the command line (`quell setpassword`). A deactivated
    user may get one too: they still cannot log in until reactivated, and an admin can prepare the
    password before reactivating them. Their recent failed log-ins are forgotten so the new password
    works at once.
    """
    with transaction.atomic():
        if by is None:
            user = User.objects.filter(pk=user_id, is_system=False).first()
            if user is None:
                raise NotFound(f"User {user_id} not found.")
        else:
            user = get_user(user_id, by=by)
        user.set_password(_validated_password(new, user, "newPassword"))
        user.save(update_fields=["password"])
        clear_login_failures(user.email)
    return user
