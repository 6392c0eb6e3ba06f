"""What is checked and what the checks found: data sources, datasets, checks, scans, results, metrics."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    # The data contract Soda Core 4.x verified last (`sodaCoreUploadContractFile`), shown on the dataset.
    contract = models.TextField(blank=True)
    contract_file_path = models.CharField(max_length=1000, blank=True)
    contract_updated_at = models.DateTimeField(null=True, blank=True)
    # Kept by the writes that change them (quell.catalog.counters), so lists of datasets and the home
    # page's "failing without an open incident" read them instead of counting per dataset (issue 6:
    # at 1,000,000 incidents the home page probed 2,000 failing datasets for an open incident). Save
    # a dataset with update_fields only: a full save() would write back counts read earlier.
    check_count = models.IntegerField(default=0, db_default=0)
    failing_check_count = models.IntegerField(default=0, db_default=0)  # last outcome warn or fail
    open_incident_count = models.IntegerField(default=0, db_default=0)  # reported, investigating, fixing

    class Meta:
        ordering = ("data_source__name", "name")
        constraints = [
            models.UniqueConstraint(fields=["data_source", "name"], name="dataset_unique_per_source")
        ]
        indexes = [
            # The home page's datasets that fail without an open incident
            # (incidents.queries.datasets_needing_attention): only those datasets are in it.
            models.Index(
                fields=["-failing_check_count"],
                name="dataset_failing_unattended",
                condition=models.Q(failing_check_count__gt=0, open_incident_count=0),
            )
        ]

    def __str__(self) -> str:
        return f"{self.data_source.name}/{self.name}"


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
    # The Soda metrics this check evaluates; a result is linked to their measurement from the same scan,
    # which is how Soda's anomaly checks pair historic check results with historic values.
    metric_identities = models.JSONField(default=list, blank=True)
    # Where the check is defined: {"filePath", "line", "col"} and, for Soda Core 4.x, "checkPath".
    location = models.JSONField(default=dict, blank=True)
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


class ScanState(models.TextChoices):
    """Soda Cloud's scan states that a pushed scan can end in."""

    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_WARNINGS = "completedWithWarnings", "Completed with warnings"
    COMPLETED_WITH_FAILURES = "completedWithFailures", "Completed with failures"
    COMPLETED_WITH_ERRORS = "completedWithErrors", "Completed with errors"
    FAILED = "failed", "Failed"


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
    state = models.CharField(max_length=30, choices=ScanState.choices, default=ScanState.COMPLETED)
    # The scan's id in the client's world, e.g. Soda Core 4.x's SODA_SCAN_ID for managed scans.
    external_id = models.CharField(max_length=300, blank=True)
    # What sent it, e.g. "SodaCore/3.5.6" or "dbt 1.11.1".
    client = models.CharField(max_length=200, blank=True)
    # Every dataset the scan reported on, so scan lists per dataset need no walk through results.
    datasets = models.ManyToManyField(Dataset, related_name="scans", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # Scan list per data source, newest first.
            models.Index(fields=["data_source", "-data_timestamp"], name="scan_source_newest"),
            # sodaCoreMarkScanFailed looks a scan up by the client's id.
            models.Index(fields=["external_id"], name="scan_external_id"),
        ]

    def __str__(self) -> str:
        return f"scan {self.pk} {self.definition_name}"

    # The stored state and flags cover every dataset of the scan; a caller is shown these instead,
    # computed from the counts catalog.queries.with_scan_details annotates (results on datasets the
    # caller can view), so a failure on a dataset hidden from them does not show in their badge.
    # A failed run and the client's errors are facts of the whole run, not of one dataset: they stay.

    @property
    def visible_state(self) -> str:
        """The scan's state over the results the caller can view (needs with_scan_details)."""
        if self.state in (ScanState.FAILED, ScanState.COMPLETED_WITH_ERRORS):
            return self.state
        if self.has_visible_failures:
            return ScanState.COMPLETED_WITH_FAILURES
        if self.has_visible_warnings:
            return ScanState.COMPLETED_WITH_WARNINGS
        return ScanState.COMPLETED

    @property
    def has_visible_failures(self) -> bool:
        return self.fails > 0  # type: ignore[attr-defined]

    @property
    def has_visible_warnings(self) -> bool:
        return self.warns > 0  # type: ignore[attr-defined]


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
    # The value of the check's metric in the same scan (Soda's `measurementId` in historic check results).
    measurement = models.ForeignKey(
        "Measurement", null=True, blank=True, on_delete=models.SET_NULL, related_name="check_results"
    )
    data_timestamp = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-data_timestamp", "-id")
        indexes = [
            # Check page and GET /checks/{id}/results: a check's results, newest first.
            models.Index(fields=["check_ref", "-data_timestamp", "-id"], name="result_check_newest"),
            # Two queries by the time a result arrived: retention deletes the results older than the
            # kept period (oldest first, in batches), and results newest-first across checks.
            models.Index(fields=["created_at", "id"], name="result_created"),
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


class FailedRowsSample(models.Model):
    """Rows that failed a check, uploaded by Soda Core 3.x before the scan results that refer to them.

    Until a scan's results name its `file_id`, a sample belongs to no result and only its uploader
    can attach it. Content is JSON Lines, one array per row, cut to the organisation's size limit.
    """

    file_id = models.CharField(max_length=64, unique=True)
    check_result = models.ForeignKey(
        CheckResult, null=True, blank=True, on_delete=models.CASCADE, related_name="failed_rows_samples"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_path = models.CharField(max_length=1000, blank=True)
    content = models.TextField(blank=True)
    columns = models.JSONField(default=list, blank=True)
    total_row_count = models.PositiveIntegerField(null=True, blank=True)
    stored_row_count = models.PositiveIntegerField(default=0)
    byte_size = models.PositiveIntegerField(default=0)
    # True when the upload was larger than the organisation allows and only its first rows were kept.
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        indexes = [
            # Clearing out samples whose scan results never arrived.
            models.Index(fields=["check_result", "created_at"], name="sample_unlinked_age"),
        ]

    def __str__(self) -> str:
        return f"sample {self.file_id} ({self.stored_row_count} rows)"


class ContractUpload(models.Model):
    """A data contract uploaded by Soda Core 4.x before the scan results that name its `file_id`."""

    file_id = models.CharField(max_length=64, unique=True)
    contents = models.TextField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="contract_uploads"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"contract {self.file_id}"


class AttributeType(models.TextChoices):
    """Soda Cloud's check attribute types (what `sodaCoreAvailableCheckAttributes` answers)."""

    CHECKBOX = "checkbox", "Checkbox"
    DATETIME = "datetime", "Date and time"
    MULTISELECT = "multiselect", "Multiple choice"
    NUMBER = "number", "Number"
    SINGLESELECT = "singleselect", "Single choice"
    TEXT = "text", "Text"


class CheckAttributeDefinition(models.Model):
    """An attribute checks may carry (`attributes:` in SodaCL); Soda Core refuses checks using others."""

    name = models.CharField(max_length=100, unique=True)
    label = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=20, choices=AttributeType.choices)
    # For single- and multiselect: the values a check may use.
    allowed_values = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name
