"""REST endpoints for users, the organisation and dataset roles."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal, cast

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.http import HttpRequest
from ninja import Field, Query, Router, Status

from quell.accounts import queries, services
from quell.accounts.models import DATASET_PERMISSIONS, DatasetRole, Organization, User
from quell.api.base import (
    COMMON_ERRORS,
    UNPROCESSABLE,
    Body,
    ErrorOut,
    Id,
    Page,
    PageParams,
    Schema,
    SchemaExtra,
    WholeNumber,
    caller,
    paginate,
    request_examples,
    text,
)
from quell.lib.network import client_address
from quell.lib.text import NON_BLANK_ONE_LINE_PATTERN
from quell.ops import housekeeping

router = Router(tags=["users and roles"])

# The column sizes of User.name, User.email (Django's EmailField) and Organization.name.
NAME_MAX = User._meta.get_field("name").max_length or 200
EMAIL_MAX = User._meta.get_field("email").max_length or 254
ORGANISATION_NAME_MAX = Organization._meta.get_field("name").max_length or 200
# Bounded like the web forms: hashing a megabyte-long guess is work for nothing.
PASSWORD_MAX = 4096


def _password_min_length() -> int:
    """The shortest password Django's MinimumLengthValidator takes, as settings configure it."""
    validators = cast(list[dict[str, Any]], settings.AUTH_PASSWORD_VALIDATORS)
    for validator in validators:
        if validator["NAME"].endswith(".MinimumLengthValidator"):
            return int(validator.get("OPTIONS", {}).get("min_length", 8))
    return 1


PASSWORD_MIN = _password_min_length()
# The addresses the API takes: a dot-atom local part and a host name whose top-level domain is
# letters (and inner hyphens). Every one of them passes Django's EmailValidator, which create_user applies after
# lowering the case (tests/test_openapi.py draws addresses from this pattern to check that), so the
# schema states exactly what is accepted; quoted local parts and address literals are refused here.
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = f"^{_ATOM}(?:\\.{_ATOM})*@(?:{_LABEL}\\.)+[A-Za-z](?:[A-Za-z-]{{0,61}}[A-Za-z])$"

Password = Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
PASSWORD_RULES = (
    f"{PASSWORD_MIN} to {PASSWORD_MAX} characters, not a common password and not too like the "
    "user's email or name (otherwise 400 `weak_password`)"
)


class UserOut(Schema):
    id: int = Field(description="The user's id.")
    email: str = Field(description="The email address they log in with, in lower case.")
    name: str = Field(description="Their name; may be empty.")
    globalRole: Literal["admin", "user"] = Field(
        description="`admin` may do everything in the organisation; `user` what their dataset roles allow."
    )
    active: bool = Field(description="False once an admin has deactivated them: they cannot log in.")


class UserIn(Body):
    email: str = Field(
        description="Their email address, which they log in with; stored in lower case, unique.",
        max_length=EMAIL_MAX,
        pattern=EMAIL_PATTERN,
        examples=["nina@quell.example"],
    )
    name: str = text("", description="Their name, shown instead of the email.", max_length=NAME_MAX)
    password: Password | Literal[""] | None = Field(
        None,
        description=f"Their password: {PASSWORD_RULES}. Null or empty: they cannot log in with a "
        "password until an admin sets one.",
    )
    globalRole: Literal["admin", "user"] = Field("user", description="`admin` or `user` (the default).")


class PasswordChangeIn(Body):
    currentPassword: str = Field(
        description="Your password now; a wrong one counts as a failed log-in (400 `wrong_password`, "
        "429 once the log-in lockout starts).",
        max_length=PASSWORD_MAX,
    )
    newPassword: Password = Field(description=f"The new password: {PASSWORD_RULES}, and not the current one.")


class OrganizationOut(Schema):
    name: str = Field(description="The organisation's name, shown on every page.")
    defaultDatasetRoleId: Id | None = Field(
        description="The role the Everyone group gets on each new dataset; null: new datasets are private."
    )
    usersCanCreateDatasets: bool = Field(
        description="Whether every user may create datasets by pushing results (admins always may)."
    )
    foldResults: bool = Field(
        description="Whether a new warn or fail result of a check already in an open incident is "
        "attached to that incident on ingest (the newest one if several), by Quell itself."
    )


class OrganizationIn(Body):
    name: str | None = text(
        None,
        description="A new name: not blank, one line. Left out or null: unchanged.",
        max_length=ORGANISATION_NAME_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
        examples=["Acme Data"],
    )
    defaultDatasetRoleId: Id | None = Field(
        None,
        description="The dataset role (GET /datasets/roles) the Everyone group gets on each new dataset. "
        "Null makes new datasets private; left out: unchanged. A role that does not exist is a 400 `unknown_role`.",
        examples=[4],
    )
    foldResults: bool | None = Field(
        None,
        description="Attach new warn and fail results of a check to its open incident automatically "
        "(on by default). Left out or null: unchanged.",
        examples=[False],
    )


class DatasetRoleOut(Schema):
    id: int = Field(description="The role's id.")
    name: str = Field(description="The role's name (Admin, Manager, Editor and Viewer are built in).")
    builtin: bool = Field(description="Whether Quell made the role; built-in roles cannot be changed.")
    viewDataset: bool = Field(description="See the dataset, its checks, results and incidents.")
    viewProfilingAndSamples: bool = Field(description="See the dataset's profiling and samples.")
    viewFailedRows: bool = Field(description="See the failed-row samples of its check results.")
    configureDataset: bool = Field(description="Change the dataset's settings.")
    managePermissions: bool = Field(description="Change who holds which role on the dataset.")
    createCheckProposals: bool = Field(description="Propose checks for the dataset.")
    manageChecks: bool = Field(description="Push results to the dataset and change its checks.")
    manageIncidents: bool = Field(description="Create, change and comment on the dataset's incidents.")
    deleteDataset: bool = Field(description="Delete the dataset.")
    manageContracts: bool = Field(description="Change the dataset's data contract.")
    publishContracts: bool = Field(description="Publish the dataset's data contract.")
    executeContracts: bool = Field(description="Verify the dataset's data contract.")


class TestLoginOut(Schema):
    organisationName: str = Field(description="The name of the organisation the key belongs to.")
    userEmail: str = Field(description="The email of the user the key acts as.")


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
        "foldResults": org.fold_results,
    }


@router.get(
    "/test-login",
    response={200: TestLoginOut, **COMMON_ERRORS},
    summary="Check credentials",
    description="Answers the organisation's name and your email when the API key works (401 when it "
    "does not). Any user. Soda Core calls it to test its configuration.",
)
def test_login(request: HttpRequest) -> dict[str, Any]:
    user = caller(request)
    return {"organisationName": queries.get_organization(by=user).name, "userEmail": user.email}


@router.get(
    "/users",
    response={200: Page[UserOut], **COMMON_ERRORS, 403: ErrorOut},
    summary="List users (admins)",
    description="Every user, deactivated ones too, by email. Admins only (403 for others).",
)
def list_users(request: HttpRequest, paging: Query[PageParams]) -> dict[str, Any]:
    users = queries.list_users(by=caller(request))
    return paginate(users, paging.page, paging.size, user_out)


@router.post(
    "/users",
    response={201: UserOut, **COMMON_ERRORS, 403: ErrorOut, 409: ErrorOut, 413: ErrorOut, **UNPROCESSABLE},
    summary="Create a user",
    description="Admins only (403 for others). The email must be new (409 `email_taken`). A password, "
    "when given, passes Django's validators: long enough, not a common password, not too like the "
    "email or name (400 `weak_password`). Without one the user cannot log in until an admin sets it.",
    openapi_extra=request_examples(
        analyst=(
            "An analyst who logs in with a password",
            {
                "email": "nina@quell.example",
                "name": "Nina Berg",
                "password": "sea-otters-hold-hands",
                "globalRole": "user",
            },
        )
    ),
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
    response={204: None, **COMMON_ERRORS, 403: ErrorOut, 413: ErrorOut, **UNPROCESSABLE, 429: ErrorOut},
    summary="Change your own password (give the current one)",
    description="Any user, for themselves; an API key may do this too, but not without the current "
    "password. A wrong current password is a 400 `wrong_password` and counts towards the log-in "
    "lockout (429 `too_many_attempts` while it lasts, with Retry-After). The new password must "
    "differ from the current one (400 `same_password`) and pass the validators (400 "
    "`weak_password`). Your other browser sessions end; a session that called this stays signed in.",
    openapi_extra=request_examples(
        demo=(
            "The demo's admin picks a new password",
            {"currentPassword": "quell-demo", "newPassword": "sea-otters-hold-hands"},
        )
    ),
)
def change_own_password(request: HttpRequest, payload: PasswordChangeIn) -> Status[None]:
    user = caller(request)
    services.change_own_password(
        user, payload.currentPassword, payload.newPassword, ip=client_address(request)
    )
    signed_in = getattr(request, "user", None)
    if isinstance(signed_in, User) and signed_in.pk == user.pk:
        # A browser session of this user that called the API stays signed in; its other sessions end.
        update_session_auth_hash(request, user)
    return Status(204, None)


@router.get(
    "/organization",
    response={200: OrganizationOut, **COMMON_ERRORS},
    summary="The organisation",
    description="Its name, the default dataset role, whether users may create datasets and whether "
    "new results fold into open incidents. Any user.",
)
def get_organization(request: HttpRequest) -> dict[str, Any]:
    return organization_out(queries.get_organization(by=caller(request)))


@router.put(
    "/organization",
    response={200: OrganizationOut, **COMMON_ERRORS, 403: ErrorOut, 413: ErrorOut, **UNPROCESSABLE},
    summary="Change the organisation's name, the default dataset role or folding",
    description="Admins only (403 for others). Fields left out stay as they are; "
    "`defaultDatasetRoleId: null` makes new datasets private. A role id that names no role is a 400 `unknown_role`. "
    "`foldResults: false` stops attaching new results to open incidents by themselves.",
    openapi_extra=request_examples(
        viewers=(
            "Everyone may view new datasets (the built-in Viewer role)",
            {"name": "Acme Data", "defaultDatasetRoleId": 4},
        ),
        private=("New datasets are private", {"defaultDatasetRoleId": None}),
        unfolded=(
            "New results stay out of open incidents until someone attaches them",
            {"foldResults": False},
        ),
    ),
)
def update_organization(request: HttpRequest, payload: OrganizationIn) -> dict[str, Any]:
    clear = "defaultDatasetRoleId" in payload.model_fields_set and payload.defaultDatasetRoleId is None
    org = services.update_organization(
        by=caller(request),
        name=payload.name,
        default_dataset_role_id=payload.defaultDatasetRoleId,
        clear_default_role=clear,
        fold_results=payload.foldResults,
    )
    return organization_out(org)


RETENTION_DESCRIPTION = "Days to keep {what}; null keeps them forever."
# The range goes into the schema only: housekeeping.update_retention refuses the rest, naming the field.
Days = Annotated[int, WholeNumber, SchemaExtra(minimum=0, maximum=housekeeping.MAX_DAYS)]


class RetentionOut(Schema):
    checkResultsDays: int | None = Field(description=RETENTION_DESCRIPTION.format(what="check results"))
    scansDays: int | None = Field(description=RETENTION_DESCRIPTION.format(what="scans and their logs"))
    failedRowsSamplesDays: int | None = Field(
        description=RETENTION_DESCRIPTION.format(what="failed-row samples")
    )
    deliveryLogDays: int | None = Field(
        description=RETENTION_DESCRIPTION.format(what="integrations' delivery logs")
    )


_DAYS_IN = (
    f"Days to keep {{what}}: 1 to {housekeeping.MAX_DAYS} (100 years); 0 or null keeps them forever. "
    "Left out: unchanged."
)


class RetentionIn(Body):
    """Days to keep each kind of record; null (or 0) keeps it forever. Fields left out stay as they are."""

    checkResultsDays: Days | None = Field(
        None, description=_DAYS_IN.format(what="check results"), examples=[365]
    )
    scansDays: Days | None = Field(None, description=_DAYS_IN.format(what="scans and their logs"))
    failedRowsSamplesDays: Days | None = Field(None, description=_DAYS_IN.format(what="failed-row samples"))
    deliveryLogDays: Days | None = Field(
        None, description=_DAYS_IN.format(what="integrations' delivery logs")
    )


@router.get(
    "/organization/retention",
    response={200: RetentionOut, **COMMON_ERRORS},
    summary="How long records are kept",
    description="How many days check results, scans, failed-row samples and delivery logs are kept "
    "(null: forever). Any user.",
)
def get_retention(request: HttpRequest) -> dict[str, Any]:
    return housekeeping.get_retention(by=caller(request))


@router.put(
    "/organization/retention",
    response={200: RetentionOut, **COMMON_ERRORS, 403: ErrorOut, 413: ErrorOut},
    summary="Change how long records are kept (admins)",
    description="Admins only (403 for others). Fields left out stay as they are. Housekeeping (run by "
    "`quell worker`) deletes what is older within the hour.",
    openapi_extra=request_examples(
        year=("Keep a year of results and scans", {"checkResultsDays": 365, "scansDays": 365}),
        forever=("Keep delivery logs forever", {"deliveryLogDays": None}),
    ),
)
def update_retention(request: HttpRequest, payload: RetentionIn) -> dict[str, Any]:
    changes = {name: getattr(payload, name) for name in payload.model_fields_set}
    return housekeeping.update_retention(by=caller(request), changes=changes)


@router.get(
    "/datasets/roles",
    response={200: Page[DatasetRoleOut], **COMMON_ERRORS},
    summary="List dataset roles",
    description="The roles that responsibilities give on a dataset, with their permissions. Any user.",
)
def list_dataset_roles(request: HttpRequest, paging: Query[PageParams]) -> dict[str, Any]:
    return paginate(queries.list_dataset_roles(by=caller(request)), paging.page, paging.size, role_out)
