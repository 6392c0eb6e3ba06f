"""People and what they may do: users, groups, dataset roles, the organisation, API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone


class GlobalRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    USER = "user", "User"


class UserManager(BaseUserManager["User"]):
    def create_user(
        self,
        email: str,
        password: str | None = None,
        *,
        name: str = "",
        global_role: str = GlobalRole.USER,
        **extra: Any,
    ) -> User:
        user = self.model(
            email=self.normalize_email(email).lower(), name=name, global_role=global_role, **extra
        )
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    global_role = models.CharField(max_length=10, choices=GlobalRole.choices, default=GlobalRole.USER)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # The IANA zone this person reads times in ("Europe/Berlin"); empty: their browser's zone.
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")
    # Quell itself (accounts.services.system_user): the actor of what the incident rules do. It has an
    # admin's rights, no usable password and no API keys, and is left out of every list of people.
    is_system = models.BooleanField(default=False, db_default=False, editable=False)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ("email",)
        indexes = [
            # People listed by name (the lead and reporter filters, lead candidates, settings): a
            # bounded list walks this index and stops, where sorting read every user first (the
            # incidents page's filters probed all 5,000 users, twice, at 1,000,000 incidents).
            models.Index(fields=["name", "email", "id"], name="user_by_name"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_admin(self) -> bool:
        return self.is_active and self.global_role == GlobalRole.ADMIN

    @property
    def display_name(self) -> str:
        return self.name or self.email


class UserGroup(models.Model):
    """A named set of users that responsibilities can name instead of each person.

    The one group with `is_everyone` holds every user without listing them: membership is implied,
    so a new user is in it from the moment they exist.
    """

    name = models.CharField(max_length=200, unique=True)
    members = models.ManyToManyField(User, related_name="user_groups", blank=True)
    is_everyone = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=["is_everyone"], condition=models.Q(is_everyone=True), name="one_everyone_group"
            )
        ]

    def __str__(self) -> str:
        return self.name


# The permission flags a dataset role is made of: (field, API name, label). The API names are Soda
# Cloud's (DatasetRoleContentDTO) so clients written for Soda read them unchanged.
DATASET_PERMISSIONS: list[tuple[str, str, str]] = [
    ("view_dataset", "viewDataset", "View dataset"),
    ("view_profiling_and_samples", "viewProfilingAndSamples", "Access dataset profiling and samples"),
    ("view_failed_rows", "viewFailedRows", "Access failed row samples for checks"),
    ("configure_dataset", "configureDataset", "Configure dataset"),
    ("manage_permissions", "managePermissions", "Manage dataset responsibilities"),
    ("create_check_proposals", "createCheckProposals", "Propose checks"),
    ("manage_checks", "manageChecks", "Manage checks"),
    ("manage_incidents", "manageIncidents", "Manage incidents"),
    ("delete_dataset", "deleteDataset", "Delete dataset"),
    ("manage_contracts", "manageContracts", "Manage contracts"),
    ("publish_contracts", "publishContracts", "Publish contracts"),
    ("execute_contracts", "executeContracts", "Execute contracts"),
]
PERMISSION_FIELDS = [field for field, _, _ in DATASET_PERMISSIONS]


class DatasetRole(models.Model):
    """A set of permissions on one dataset, given to users and groups through responsibilities."""

    name = models.CharField(max_length=100, unique=True)
    builtin = models.BooleanField(default=False, editable=False)
    view_dataset = models.BooleanField(default=True)
    view_profiling_and_samples = models.BooleanField(default=False)
    view_failed_rows = models.BooleanField(default=False)
    configure_dataset = models.BooleanField(default=False)
    manage_permissions = models.BooleanField(default=False)
    create_check_proposals = models.BooleanField(default=False)
    manage_checks = models.BooleanField(default=False)
    manage_incidents = models.BooleanField(default=False)
    delete_dataset = models.BooleanField(default=False)
    manage_contracts = models.BooleanField(default=False)
    publish_contracts = models.BooleanField(default=False)
    execute_contracts = models.BooleanField(default=False)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name

    def permissions(self) -> frozenset[str]:
        return frozenset(field for field in PERMISSION_FIELDS if getattr(self, field))


class Responsibility(models.Model):
    """Gives one user or one group a role on one dataset: what quell.accounts.permissions reads."""

    # By name: the datasets are the catalog's, and accounts imports nothing of the catalog.
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="responsibilities")
    role = models.ForeignKey(DatasetRole, on_delete=models.PROTECT, related_name="responsibilities")
    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="responsibilities",
    )
    group = models.ForeignKey(
        UserGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="responsibilities"
    )

    class Meta:
        # Kept where the catalog created it (release 0.1); only the model moved, with the permission checks.
        db_table = "catalog_responsibility"
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="responsibility_names_user_or_group",
            ),
        ]
        indexes = [
            # Permission checks: "which datasets does this user hold a role on".
            models.Index(fields=["user", "dataset"], name="resp_user_dataset"),
            models.Index(fields=["group", "dataset"], name="resp_group_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group} is {self.role} on {self.dataset_id}"


class Organization(models.Model):
    """The one organisation this installation serves (always pk=1)."""

    name = models.CharField(max_length=200, default="My organisation")
    # The role the Everyone group gets on each new dataset; null means new datasets are private.
    default_dataset_role = models.ForeignKey(
        DatasetRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Soda's global "User" role may create datasets by pushing scan results; an admin can turn it off.
    users_can_create_datasets = models.BooleanField(default=True)
    # Failed-row samples hold copies of warehouse rows: an admin may refuse them (Soda Core is then
    # told `disableCollectingWarehouseData`) or cap how much of each sample is kept.
    collect_failed_rows = models.BooleanField(default=True)
    failed_rows_max_bytes = models.PositiveIntegerField(default=1024 * 1024)
    # Days that housekeeping (quell.ops.housekeeping) keeps each kind of record; null keeps it forever.
    # Check results are kept forever unless an admin decides otherwise: Soda Core's change-over-time
    # and anomaly checks read their history back, charts show it, and the rows are small. Scan logs,
    # failed-row samples (copies of warehouse rows) and delivery logs are bulky or sensitive.
    keep_check_results_days = models.PositiveIntegerField(null=True, blank=True, default=None)
    keep_scans_days = models.PositiveIntegerField(null=True, blank=True, default=90)
    keep_failed_rows_days = models.PositiveIntegerField(null=True, blank=True, default=30)
    keep_delivery_log_days = models.PositiveIntegerField(null=True, blank=True, default=30)
    # A warn or fail result of a check already in an open incident is attached to it on ingest
    # (quell.automation), for incidents opened by hand as for those the rules open.
    fold_results = models.BooleanField(default=True, db_default=True)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def get(cls) -> Organization:
        org, _ = cls.objects.get_or_create(pk=1)
        return org


def _hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is enough: there is nothing to brute-force, and
    # every API call checks one, which a slow password hash would make expensive.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    key_id = models.CharField(max_length=40, unique=True)
    secret_hash = models.CharField(max_length=64)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.key_id} ({self.user})"

    @classmethod
    def issue(cls, user: User, name: str = "") -> tuple[ApiKey, str]:
        """Create a key and return it with its secret, which is not stored and cannot be shown again."""
        secret = secrets.token_urlsafe(32)
        key = cls.objects.create(
            key_id=secrets.token_hex(16), secret_hash=_hash_secret(secret), user=user, name=name
        )
        return key, secret

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, _hash_secret(secret))


class LoginFailure(models.Model):
    """One failed log-in through the web form, kept for a while to throttle password guessing.

    Stored in the database rather than a per-process cache so that the limit holds across several
    web processes.
    """

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Throttling: "recent failures for this email" and "recent failures from this address".
            models.Index(fields=["email", "at"], name="login_failure_email_at"),
            models.Index(fields=["ip", "at"], name="login_failure_ip_at"),
        ]

    def __str__(self) -> str:
        return f"failed log-in for {self.email} from {self.ip} at {self.at:%Y-%m-%d %H:%M}"
