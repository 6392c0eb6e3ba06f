"""REST endpoints for users, the organisation and dataset roles."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from django.contrib.auth import update_session_auth_hash
from django.http import HttpRequest
from ninja import Field, Query, Router, Status

from quell.accounts import services
from quell.accounts.models import DATASET_PERMISSIONS, DatasetRole, Organization, User
from quell.api.base import COMMON_ERRORS, ErrorOut, Id, Page, PageParams, Schema, caller, paginate
from quell.lib.network import client_address
from quell.ops import housekeeping

router = Router(tags=["users and roles"])


class UserOut(Schema):
    id: int
    email: str
    name: str
    globalRole: str
    active: bool


class UserIn(Schema):
    email: str
    name: str = ""
    password: str | None = None
    globalRole: Literal["admin", "user"] = "user"


class PasswordChangeIn(Schema):
    # Bounded like the web forms: hashing a megabyte-long guess is work for nothing.
    currentPassword: str = Field(..., max_length=4096)
    newPassword: str = Field(..., max_length=4096)


class OrganizationOut(Schema):
    name: str
    defaultDatasetRoleId: Id | None
    usersCanCreateDatasets: bool


class OrganizationIn(Schema):
    name: str | None = None
    defaultDatasetRoleId: Id | None = None


class DatasetRoleOut(Schema):
    id: int
    name: str
    builtin: bool
    viewDataset: bool
    viewProfilingAndSamples: bool
    viewFailedRows: bool
    configureDataset: bool
    managePermissions: bool
    createCheckProposals: bool
    manageChecks: bool
    manageIncidents: bool
    deleteDataset: bool
    manageContracts: bool
    publishContracts: bool
    executeContracts: bool


class TestLoginOut(Schema):
    organisationName: str
    userEmail: str


def user_out(users: Iterable[User]) -> list[dict[str, Any]]:
    return [
        {"id": u.pk, "email": u.email, "name": u.name, "globalRole": u.global_role, "active": u.is_active}
        for u in users
    ]


def role_out(roles: Iterable[DatasetRole]) -> list[dict[str, Any]]:
    return [
        {"id": role.pk, "name": role.name, "builtin": role.builtin}
        | {api_name: getattr(role, field) for field, api_name, _ in DATASET_PERMISSIONS}
        for role in roles
    ]


def organization_out(org: Organization) -> dict[str, Any]:
    return {
        "name": org.name,
        "defaultDatasetRoleId": org.default_dataset_role_id,
        "usersCanCreateDatasets": org.users_can_create_datasets,
    }


@router.get("/test-login", response={200: TestLoginOut, **COMMON_ERRORS}, summary="Check credentials")
def test_login(request: HttpRequest) -> dict[str, Any]:
    user = caller(request)
    return {"organisationName": services.get_organization(by=user).name, "userEmail": user.email}


@router.get(
    "/users", response={200: Page[UserOut], **COMMON_ERRORS, 403: ErrorOut}, summary="List users (admins)"
)
def list_users(request: HttpRequest, paging: Query[PageParams]) -> dict[str, Any]:
    users = services.list_users(by=caller(request))
    return paginate(users, paging.page, paging.size, user_out)


@router.post(
    "/users",
    response={201: UserOut, **COMMON_ERRORS, 403: ErrorOut, 409: ErrorOut, 413: ErrorOut},
    summary="Create a user",
)
def create_user(request: HttpRequest, payload: UserIn) -> Status[dict[str, Any]]:
    user = services.create_user(
        by=caller(request),
        email=payload.email,
        name=payload.name,
        password=payload.password,
        global_role=payload.globalRole,
    )
    return Status(201, user_out([user])[0])


@router.post(
    "/users/me/password",
    response={204: None, **COMMON_ERRORS, 403: ErrorOut, 413: ErrorOut, 429: ErrorOut},
    summary="Change your own password (give the current one)",
)
def change_own_password(request: HttpRequest, payload: PasswordChangeIn) -> Status[None]:
    """An API key may do this too: it cannot without the current password, whose wrong guesses count
    towards the log-in lockout (429 `too_many_attempts` while it lasts)."""
    user = caller(request)
    services.change_own_password(
        user, payload.currentPassword, payload.newPassword, ip=client_address(request)
    )
    signed_in = getattr(request, "user", None)
    if isinstance(signed_in, User) and signed_in.pk == user.pk:
        # A browser session of this user that called the API stays signed in; its other sessions end.
        update_session_auth_hash(request, user)
    return Status(204, None)


@router.get("/organization", response={200: OrganizationOut, **COMMON_ERRORS}, summary="The organisation")
def get_organization(request: HttpRequest) -> dict[str, Any]:
    return organization_out(services.get_organization(by=caller(request)))


@router.put(
    "/organization",
    response={200: OrganizationOut, **COMMON_ERRORS, 403: ErrorOut, 413: ErrorOut},
    summary="Change the organisation's name or the default dataset role (null: new datasets are private)",
)
def update_organization(request: HttpRequest, payload: OrganizationIn) -> dict[str, Any]:
    clear = "defaultDatasetRoleId" in payload.model_fields_set and payload.defaultDatasetRoleId is None
    org = services.update_organization(
        by=caller(request),
        name=payload.name,
        default_dataset_role_id=payload.defaultDatasetRoleId,
        clear_default_role=clear,
    )
    return organization_out(org)


class RetentionOut(Schema):
    checkResultsDays: int | None
    scansDays: int | None
    failedRowsSamplesDays: int | None
    deliveryLogDays: int | None


class RetentionIn(Schema):
    """Days to keep each kind of record; null (or 0) keeps it forever. Fields left out stay as they are."""

    checkResultsDays: int | None = None
    scansDays: int | None = None
    failedRowsSamplesDays: int | None = None
    deliveryLogDays: int | None = None


@router.get(
    "/organization/retention",
    response={200: RetentionOut, **COMMON_ERRORS},
    summary="How many days check results, scans, failed-row samples and delivery logs are kept",
)
def get_retention(request: HttpRequest) -> dict[str, Any]:
    return housekeeping.get_retention(by=caller(request))


@router.put(
    "/organization/retention",
    response={200: RetentionOut, **COMMON_ERRORS, 403: ErrorOut, 413: ErrorOut},
    summary="Change how long records are kept (admins); housekeeping applies it within the hour",
)
def update_retention(request: HttpRequest, payload: RetentionIn) -> dict[str, Any]:
    changes = {name: getattr(payload, name) for name in payload.model_fields_set}
    return housekeeping.update_retention(by=caller(request), changes=changes)


@router.get(
    "/datasets/roles", response={200: Page[DatasetRoleOut], **COMMON_ERRORS}, summary="List dataset roles"
)
def list_dataset_roles(request: HttpRequest, paging: Query[PageParams]) -> dict[str, Any]:
    return paginate(services.list_dataset_roles(by=caller(request)), paging.page, paging.size, role_out)
