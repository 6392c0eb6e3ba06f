"""What is checked and what the checks found: data sources, datasets, checks, scans, results, metrics."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from quell.accounts.models import DatasetRole, UserGroup


class Outcome(models.TextChoices):
    PASS = "pass", "Pass"
    WARN = "warn", "Warn"
    FAIL = "fail", "Fail"
    # Soda Core 4.x reports checks it skipped or could not evaluate; they are kept and shown as such.
    EXCLUDED = "excluded", "Excluded"
    UNEVALUATED = "unevaluated", "Not evaluated"


FAILING_OUTCOMES = (Outcome.WARN, Outcome.FAIL)


class DataSource(models.Model):
    name = models.CharField(max_length=200, unique=True)
    type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    data_source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    label = models.CharField(max_length=500, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("data_source__name", "name")
        constraints = [
            models.UniqueConstraint(fields=["data_source", "name"], name="dataset_unique_per_source")
        ]

    def __str__(self) -> str:
        return f"{self.data_source.name}/{self.name}"


class Responsibility(models.Model):
    """Gives one user or one group a role on one dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="responsibilities")
    role = models.ForeignKey(DatasetRole, on_delete=models.PROTECT, related_name="responsibilities")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="responsibilities",
    )
    group = models.ForeignKey(
        UserGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="responsibilities"
    )

    class Meta:
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


class Check(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="checks")
    # Stable identity from the tool that runs the check (Soda's identities.v3 / vc1, a dbt unique_id,
    # ...), so a check keeps its history across scans even when its name changes.
    identity = models.CharField(max_length=300)
    name = models.CharField(max_length=1000)
    definition = models.TextField(blank=True)
    column = models.CharField(max_length=500, blank=True)
    check_type = models.CharField(max_length=100, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The newest result, kept here so lists of checks need no per-row lookup.
    last_outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    last_result_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["dataset", "identity"], name="check_identity_per_dataset")
        ]

    def __str__(self) -> str:
        return self.name


class Scan(models.Model):
    definition_name = models.CharField(max_length=500, blank=True)
    data_source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="scans"
    )
    source = models.CharField(max_length=100, blank=True)
    # Set by clients that may send the same scan twice (a retried upload), so it is stored once.
    idempotency_key = models.CharField(max_length=300, null=True, blank=True, unique=True)
    data_timestamp = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    has_errors = models.BooleanField(default=False)
    has_warnings = models.BooleanField(default=False)
    has_failures = models.BooleanField(default=False)
    logs = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"scan {self.pk} {self.definition_name}"


class CheckResult(models.Model):
    check_ref = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="results", db_column="check_id"
    )
    # Copied from the check so permission filters need no join through checks.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="check_results")
    scan = models.ForeignKey(Scan, null=True, blank=True, on_delete=models.SET_NULL, related_name="results")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    value = models.FloatField(null=True, blank=True)
    diagnostics = models.JSONField(default=dict, blank=True)
    data_timestamp = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-data_timestamp", "-id")
        indexes = [
            # Check page and GET /checks/{id}/results: a check's results, newest first.
            models.Index(fields=["check_ref", "-data_timestamp", "-id"], name="result_check_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} for check {self.check_ref_id} at {self.data_timestamp:%Y-%m-%d %H:%M}"


class Measurement(models.Model):
    """A metric value from a scan, kept so Soda's change-over-time and anomaly checks can ask for history."""

    identity = models.CharField(max_length=1000)
    metric_name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="measurements"
    )
    scan = models.ForeignKey(
        Scan, null=True, blank=True, on_delete=models.CASCADE, related_name="measurements"
    )
    value = models.JSONField(null=True)
    data_timestamp = models.DateTimeField()

    class Meta:
        indexes = [
            # sodaCoreHistoricMeasurements: one metric's values, newest first.
            models.Index(fields=["identity", "-data_timestamp"], name="measurement_identity_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.identity}={self.value}"
