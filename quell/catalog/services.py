"""Changes to the catalog: datasets and who is responsible for them, failed-row samples and contracts
uploaded ahead of their scan, the collection of samples, and the definitions of check attributes.

Each checks the caller's permissions (quell.accounts.permissions), validates, writes, and records a domain
event (quell.lib.events) where other apps react. Storing a scan is quell.catalog.ingest; the reads
are quell.catalog.queries.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import DatasetRole, Organization, Responsibility, User, UserGroup
from quell.catalog import visibility
from quell.catalog.events import ResponsibilitiesChanged
from quell.catalog.models import (
    AttributeType,
    CheckAttributeDefinition,
    ContractUpload,
    Dataset,
    DataSource,
    FailedRowsSample,
)
from quell.lib import events
from quell.lib.errors import Forbidden, Invalid, NotFound, Taken, Unprocessable
from quell.lib.jsontext import UnreadableJSON, parse_json
from quell.lib.text import require_plain_text

MANAGER_ROLE = "Manager"


# --- Datasets -------------------------------------------------------------------------------------


def create_dataset(data_source: DataSource, name: str, *, owner: User | None) -> tuple[Dataset, bool]:
    """Create a dataset with its starting responsibilities; (the dataset, True).

    Everyone gets the organisation's default role (none if an admin chose none), and the user who
    brought the dataset in becomes its owner with the Manager role, as in Soda Cloud. When another
    transaction committed the same name first, this returns (theirs, False) and writes nothing:
    get_or_create INSERTs in a savepoint, which on PostgreSQL waits for that writer and then fails
    alone, and reads their row again.
    """
    dataset, created = Dataset.objects.get_or_create(
        data_source=data_source, name=name, defaults={"owner": owner}
    )
    if not created:
        return dataset, False
    default_role = Organization.get().default_dataset_role
    # No incident can be linked to the dataset yet, so no status counter depends on who sees it.
    if default_role is not None:
        Responsibility.objects.create(
            dataset=dataset, group=UserGroup.objects.get(is_everyone=True), role=default_role
        )
    if owner is not None and not owner.is_admin:
        Responsibility.objects.create(
            dataset=dataset, user=owner, role=DatasetRole.objects.get(name=MANAGER_ROLE)
        )
    return dataset, True


# --- Responsibilities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsibilityInput:
    type: str  # "user" or "userGroup"
    principal_id: int
    role_id: int


def set_responsibilities(
    dataset_id: int, items: list[ResponsibilityInput], *, by: User
) -> list[Responsibility]:
    """Replace a dataset's whole list of responsibilities, as Soda's POST does."""
    dataset = visibility.visible_dataset(by, dataset_id)
    permissions.require(by, dataset, permissions.MANAGE_PERMISSIONS, "change its responsibilities")
    roles = DatasetRole.objects.in_bulk({item.role_id for item in items})
    user_ids = {item.principal_id for item in items if item.type == "user"}
    group_ids = {item.principal_id for item in items if item.type == "userGroup"}
    users = User.objects.filter(is_active=True, is_system=False).in_bulk(user_ids)
    groups = UserGroup.objects.in_bulk(group_ids)
    seen: set[tuple[str, int]] = set()
    rows: list[Responsibility] = []
    for position, item in enumerate(items):
        where = f"responsibilities[{position}]"
        if item.role_id not in roles:
            raise Unprocessable(
                f"{where}: there is no dataset role {item.role_id}.", code="unknown_role", field=where
            )
        if item.type == "user":
            if item.principal_id not in users:
                raise Unprocessable(
                    f"{where}: there is no active user {item.principal_id}.", code="unknown_user", field=where
                )
            row = Responsibility(dataset=dataset, user=users[item.principal_id], role=roles[item.role_id])
        elif item.type == "userGroup":
            if item.principal_id not in groups:
                raise Unprocessable(
                    f"{where}: there is no user group {item.principal_id}.", code="unknown_group", field=where
                )
            row = Responsibility(dataset=dataset, group=groups[item.principal_id], role=roles[item.role_id])
        else:
            raise Invalid(f'{where}: type must be "user" or "userGroup".', field=where)
        if (item.type, item.principal_id) in seen:
            raise Unprocessable(f"{where}: names the same {item.type} twice.", code="duplicate", field=where)
        seen.add((item.type, item.principal_id))
        rows.append(row)
    with transaction.atomic():
        dataset.responsibilities.all().delete()
        Responsibility.objects.bulk_create(rows)
        events.record(ResponsibilitiesChanged(dataset_id=dataset.pk, by=by))
    # Read back rather than re-check: the caller may just have removed their own access.
    return list(dataset.responsibilities.select_related("user", "group", "role").order_by("id"))


# --- Failed-row samples ---------------------------------------------------------------------------

# Samples and contracts whose scan results never arrived are cleared out after this long.
UNCLAIMED_UPLOAD_LIFETIME = timedelta(days=1)


def store_failed_rows_sample(data: bytes, *, by: User, file_path: str = "") -> FailedRowsSample:
    """Keep an uploaded sample (JSON Lines, one array per row) until scan results claim it.

    Only whole rows are kept, up to the organisation's size limit; a larger upload is cut and
    marked truncated. Refused when the organisation does not collect failed rows.
    """
    org = Organization.get()
    if not org.collect_failed_rows:
        raise Forbidden(
            "This organisation does not collect failed-row samples.", code="soda_core_uploads_disabled"
        )
    truncated = len(data) > org.failed_rows_max_bytes
    if truncated:
        data = data[: org.failed_rows_max_bytes]
        data = data[: data.rfind(b"\n") + 1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("A failed-rows sample must be UTF-8 JSON Lines.", code="invalid_sample") from None
    if "\x00" in text:
        raise Invalid("A failed-rows sample may not contain NUL characters.", code="invalid_sample")
    lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            row = parse_json(line, subject=f"Line {number} of the sample")
        except UnreadableJSON as error:
            raise Invalid(error.message, code="invalid_sample") from None
        if not isinstance(row, list):
            raise Invalid(f"Line {number} of the sample is not a JSON array.", code="invalid_sample")
    with transaction.atomic():
        FailedRowsSample.objects.filter(
            check_result__isnull=True, created_at__lt=timezone.now() - UNCLAIMED_UPLOAD_LIFETIME
        ).delete()
        return FailedRowsSample.objects.create(
            file_id=uuid.uuid4().hex,
            uploaded_by=by,
            file_path=file_path[:1000],
            content=text,
            stored_row_count=len(lines),
            byte_size=len(data),
            truncated=truncated,
        )


def update_failed_rows_settings(
    *, by: User, collect: bool | None = None, max_bytes: int | None = None
) -> Organization:
    """Turn the collection of failed-row samples on or off, or change how much of each is kept."""
    permissions.require_admin(by, "change how failed-row samples are collected")
    org = Organization.get()
    if collect is not None:
        org.collect_failed_rows = collect
    if max_bytes is not None:
        if not MIN_SAMPLE_BYTES <= max_bytes <= MAX_SAMPLE_BYTES:
            raise Invalid(
                f"The sample size limit must be between {MIN_SAMPLE_BYTES} and {MAX_SAMPLE_BYTES} bytes.",
                field="failedRowsMaxBytes",
            )
        org.failed_rows_max_bytes = max_bytes
    org.save(update_fields=["collect_failed_rows", "failed_rows_max_bytes"])
    return org


MIN_SAMPLE_BYTES = 1024
MAX_SAMPLE_BYTES = 64 * 1024 * 1024


# --- Contracts ------------------------------------------------------------------------------------

CONTRACT_MAX_CHARS = 1024 * 1024


def store_contract_upload(contents: str, *, by: User) -> ContractUpload:
    """Keep a contract's text until the scan results that verified it name its file id."""
    if not contents.strip():
        raise Invalid("The contract is empty.", field="contents")
    if len(contents) > CONTRACT_MAX_CHARS:
        raise Invalid(f"The contract is longer than {CONTRACT_MAX_CHARS} characters.", field="contents")
    with transaction.atomic():
        ContractUpload.objects.filter(
            dataset__isnull=True, created_at__lt=timezone.now() - UNCLAIMED_UPLOAD_LIFETIME
        ).delete()
        return ContractUpload.objects.create(file_id=uuid.uuid4().hex, contents=contents, uploaded_by=by)


# --- Check attributes -----------------------------------------------------------------------------

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")


CHOICE_TYPES = (AttributeType.SINGLESELECT, AttributeType.MULTISELECT)


def create_check_attribute_definition(
    *,
    by: User,
    name: str,
    attribute_type: str,
    label: str = "",
    allowed_values: list[str] | None = None,
    description: str = "",
) -> CheckAttributeDefinition:
    permissions.require_admin(by, "define check attributes")
    name = (name or "").strip()
    if not ATTRIBUTE_NAME.match(name):
        raise Invalid(
            "An attribute name is 1 to 100 letters, digits, underscores, dots or hyphens.", field="name"
        )
    if attribute_type not in AttributeType.values:
        raise Invalid(f"type must be one of {', '.join(AttributeType.values)}.", field="type")
    values = [str(v).strip() for v in (allowed_values or [])]
    if attribute_type in CHOICE_TYPES:
        if not values or any(not v for v in values):
            raise Invalid(
                f"A {attribute_type} attribute needs a list of allowed values.", field="allowedValues"
            )
        if len(set(values)) != len(values):
            raise Invalid("The allowed values repeat a value.", field="allowedValues")
    elif values:
        raise Invalid(f"A {attribute_type} attribute takes no allowed values.", field="allowedValues")
    for value in values:
        require_plain_text(value, "allowedValues", label="An allowed value")
    require_plain_text(label or "", "label", label="The label")
    require_plain_text(description or "", "description", label="The description", multiline=True)
    taken = Taken(f"There is already an attribute named {name}.", code="name_taken", field="name")
    if CheckAttributeDefinition.objects.filter(name=name).exists():
        raise taken
    try:
        # In a savepoint: a name defined at the same moment fails this INSERT alone, not the caller's
        # transaction (PostgreSQL waits for that writer, then raises the unique violation).
        with transaction.atomic():
            return CheckAttributeDefinition.objects.create(
                name=name,
                type=attribute_type,
                label=(label or "").strip()[:200],
                allowed_values=values,
                description=(description or "").strip(),
            )
    except IntegrityError:
        raise taken from None


def delete_check_attribute_definition(definition_id: int, *, by: User) -> None:
    permissions.require_admin(by, "remove check attributes")
    deleted, _ = CheckAttributeDefinition.objects.filter(pk=definition_id).delete()
    if not deleted:
        raise NotFound(f"Check attribute {definition_id} not found.")
