"""Domain operations on people and the organisation: users, groups, roles, API keys."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet

from quell.accounts.models import (
    PERMISSION_FIELDS,
    ApiKey,
    DatasetRole,
    GlobalRole,
    Organization,
    User,
    UserGroup,
)
from quell.catalog.access import require_admin
from quell.lib.errors import Invalid, NotFound


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
    if password:
        try:
            validate_password(password)
        except ValidationError as error:
            raise Invalid(" ".join(error.messages), code="weak_password", field="password") from None
    with transaction.atomic():
        if User.objects.filter(email=email).exists():
            raise Invalid(f"There is already a user {email}.", code="email_taken", field="email")
        return User.objects.create_user(email, password, name=(name or "").strip(), global_role=global_role)


def set_admin(email: str, password: str) -> User:
    """Create or promote an admin with this password (the `createadmin` command)."""
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is None:
        return create_user(by=None, email=email, password=password, global_role=GlobalRole.ADMIN)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise Invalid(" ".join(error.messages), code="weak_password", field="password") from None
    user.global_role = GlobalRole.ADMIN
    user.is_active = True
    user.set_password(password)
    user.save()
    return user


def list_users(*, by: User) -> QuerySet[User]:
    require_admin(by, "list users")
    return User.objects.order_by("email", "id")


def create_api_key(*, user: User, name: str = "") -> tuple[ApiKey, str]:
    if not user.is_active:
        raise Invalid(f"{user.email} is deactivated and cannot get an API key.")
    return ApiKey.issue(user, name=(name or "").strip()[:200])


def user_by_email(email: str) -> User:
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is None:
        raise NotFound(f"There is no user {email}.")
    return user


def get_organization(*, by: User) -> Organization:
    # Every signed-in user may read the organisation's name and default role; only admins change them.
    return Organization.get()


def update_organization(
    *,
    by: User,
    name: str | None = None,
    default_dataset_role_id: int | None = None,
    clear_default_role: bool = False,
) -> Organization:
    require_admin(by, "change organisation settings")
    org = Organization.get()
    if name is not None:
        if not name.strip():
            raise Invalid("The organisation needs a name.", field="name")
        org.name = name.strip()[:200]
    if clear_default_role:
        org.default_dataset_role = None
    elif default_dataset_role_id is not None:
        role = DatasetRole.objects.filter(pk=default_dataset_role_id).first()
        if role is None:
            raise Invalid(
                f"There is no dataset role {default_dataset_role_id}.", field="defaultDatasetRoleId"
            )
        org.default_dataset_role = role
    org.save()
    return org


def list_dataset_roles(*, by: User) -> QuerySet[DatasetRole]:
    return DatasetRole.objects.order_by("id")


def create_dataset_role(*, by: User, name: str, permissions: set[str]) -> DatasetRole:
    require_admin(by, "define dataset roles")
    name = (name or "").strip()
    if not name:
        raise Invalid("A role needs a name.", field="name")
    unknown = permissions - set(PERMISSION_FIELDS)
    if unknown:
        raise Invalid(f"Unknown permissions: {', '.join(sorted(unknown))}.", field="permissions")
    if DatasetRole.objects.filter(name__iexact=name).exists():
        raise Invalid(f"There is already a role named {name}.", code="name_taken", field="name")
    # Every other permission presupposes seeing the dataset.
    flags = {field: field in permissions or field == "view_dataset" for field in PERMISSION_FIELDS}
    return DatasetRole.objects.create(name=name, **flags)


def everyone_group() -> UserGroup:
    return UserGroup.objects.get(is_everyone=True)
