"""Incidents: a confirmed data problem, the results that show it, who leads it, and what happened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import F
from django.utils import timezone

from quell.catalog.models import Check, CheckResult, Dataset, DataSource


class Severity(models.TextChoices):
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class Status(models.TextChoices):
    REPORTED = "reported", "Reported"
    INVESTIGATING = "investigating", "Investigating"
    FIXING = "fixing", "Fixing"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (Status.REPORTED, Status.INVESTIGATING, Status.FIXING)


class ResolutionReason(models.TextChoices):
    """Why an incident was resolved (Monte Carlo's closing reasons, and `recovered` for the rules)."""

    FIXED = "fixed", "Fixed"
    EXPECTED = "expected", "Expected behaviour"
    FALSE_POSITIVE = "falsePositive", "False positive"
    DUPLICATE = "duplicate", "Duplicate"
    NO_ACTION_NEEDED = "noActionNeeded", "No action needed"
    # Set only by the incident rules, when every linked check passes again: never by a person.
    RECOVERED = "recovered", "Recovered"


# The reasons a person may give; `recovered` says that Quell resolved it by itself.
PERSON_REASONS = tuple(reason for reason in ResolutionReason if reason != ResolutionReason.RECOVERED)


class IncidentQuerySet(models.QuerySet["Incident"]):
    """A queryset that can load what its incidents show once it is evaluated (see with_loader)."""

    _loader: Callable[[list[Incident]], None] | None = None

    def with_loader(self, loader: Callable[[list[Incident]], None]) -> IncidentQuerySet:
        """Call `loader` with the incidents each time this queryset (or a clone) fetches them.

        Like prefetch_related, but the loader fills the attributes itself: Django's generic
        prefetching spent more time in Python than the list page's SQL (instances per related row,
        a tuple lookup per relation).
        """
        clone = self.all()
        clone._loader = loader
        return clone

    def _clone(self) -> IncidentQuerySet:  # private in the stubs, kept by Django
        clone = super()._clone()  # type: ignore[misc]
        clone._loader = self._loader
        return clone

    def _fetch_all(self) -> None:
        fetched = self._result_cache is None
        super()._fetch_all()
        rows = self._result_cache
        if fetched and self._loader is not None and rows and isinstance(rows[0], Incident):
            self._loader(rows)


class Incident(models.Model):
    number = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.REPORTED)
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="led_incidents")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reported_incidents"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_notes = models.TextField(blank=True)
    # One of ResolutionReason while resolved; "" while open, and for incidents resolved before
    # reasons were recorded. db_default: a process of the previous release inserts without it.
    resolution_reason = models.CharField(
        max_length=20, choices=ResolutionReason.choices, blank=True, default="", db_default=""
    )
    # Bumped on every change of a field; a write carrying an older version is refused (409).
    version = models.PositiveIntegerField(default=1)
    # The rule that opened it (quell.automation); null for incidents opened by a person. Indexed
    # online by 0010 (the column is added to a big table first, its index without a write lock).
    # No database constraint: validating one would lock the incidents table while PostgreSQL reads
    # it all; deleting a rule sets this to null through Django's on_delete, as every delete here runs.
    rule = models.ForeignKey(
        "IncidentRule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
        db_index=False,
        db_constraint=False,
    )
    # While open: since when every linked check's newest result passes (null while any does not).
    # Kept by quell.automation on ingest; not an edit, so it moves no version.
    passing_since = models.DateTimeField(null=True, blank=True)
    datasets: models.ManyToManyField[Dataset, IncidentDataset] = models.ManyToManyField(
        Dataset, through="IncidentDataset", related_name="incidents"
    )
    check_results: models.ManyToManyField[CheckResult, IncidentCheckResult] = models.ManyToManyField(
        CheckResult, through="IncidentCheckResult", related_name="incidents"
    )

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        # Every list orders by a unique key ending in id, so each index below ends with id too: it
        # then serves the first page and the keyset "next page" condition alike (no OFFSET walk).
        # New indexes go in with quell.lib.migrations.AddIndexOnline (no write lock on PostgreSQL).
        indexes = [
            # GET /incidents and the Incidents page unfiltered, newest first; member lists walk it
            # and keep the visible rows.
            models.Index(fields=["-created_at", "-id"], name="incident_newest"),
            # status filter (one status, or the three open ones), newest first.
            models.Index(fields=["status", "-created_at", "-id"], name="incident_status_created"),
            # severity filter newest first, and sort=severity: critical < major < minor as text, so
            # ascending severity is most severe first.
            models.Index(fields=["severity", "-created_at", "-id"], name="incident_severity_created"),
            # status and severity together ("open critical ones", the home page's open by severity).
            models.Index(
                fields=["status", "severity", "-created_at", "-id"], name="incident_status_sev_created"
            ),
            # lead filter ("led by me"), newest first; also which users lead anything (filter choices).
            models.Index(fields=["lead", "-created_at", "-id"], name="incident_lead_created"),
            # reporter filter, newest first; also which users reported anything (filter choices).
            models.Index(fields=["reporter", "-created_at", "-id"], name="incident_reporter_created"),
            # lead or reporter with a status: "my open incidents", and the per-status counts of a
            # lead or reporter filter, which then read index entries only (counting the statuses of
            # the busiest reporter's 100,000 incidents through the index above read every row).
            models.Index(fields=["lead", "status", "-created_at", "-id"], name="incident_lead_status"),
            models.Index(
                fields=["reporter", "status", "-created_at", "-id"], name="incident_reporter_status"
            ),
            # sort=updated: last changed first.
            models.Index(fields=["-updated_at", "-id"], name="incident_updated"),
            # resolution reason filter, newest first (a rare reason must not walk every incident).
            models.Index(fields=["resolution_reason", "-created_at", "-id"], name="incident_reason_created"),
            # incidents a rule opened (and the SET NULL of deleting a rule).
            models.Index(fields=["rule", "-created_at", "-id"], name="incident_rule_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status != Status.RESOLVED


class IncidentDataset(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["incident", "dataset"], name="incident_dataset_once")]
        indexes = [
            # Dataset Incidents tab and the visibility filter: incidents of a dataset.
            models.Index(fields=["dataset", "incident"], name="incident_dataset_by_dataset"),
        ]

    def __str__(self) -> str:
        return f"incident {self.incident_id} on dataset {self.dataset_id}"


class IncidentCheckResult(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="links")
    check_result = models.ForeignKey(CheckResult, on_delete=models.CASCADE, related_name="incident_links")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("added_at", "id")
        constraints = [
            models.UniqueConstraint(fields=["incident", "check_result"], name="incident_result_once"),
        ]

    def __str__(self) -> str:
        return f"result {self.check_result_id} in incident {self.incident_id}"


class IncidentCheck(models.Model):
    """A check some result of the incident comes from: which incidents cover a check, without walking
    the check's history of results (the rules ask this of every check of every scan).

    Kept by the incidents' reactions to IncidentCreated and IncidentChanged (results added), in the
    change's transaction; never removed while the incident exists (links are never removed either).
    """

    # Each is the first column of one of the two indexes below, so neither gets one of its own.
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="covered_checks", db_index=False
    )
    check_ref = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="incident_coverage", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["check_ref", "incident"], name="incident_check_once"),
        ]
        indexes = [models.Index(fields=["incident", "check_ref"], name="incident_check_by_incident")]

    def __str__(self) -> str:
        return f"check {self.check_ref_id} in incident {self.incident_id}"


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    CHANGED = "changed", "Changed"
    REOPENED = "reopened", "Reopened"
    RESULT_ATTACHED = "resultAttached", "Check result attached"
    COMMENT = "comment", "Comment"
    # A linked check's result passed after warning or failing (quell.automation).
    CHECK_PASSED = "checkPassed", "Check passed"
    # This incident was merged into another (`new_value` names the target) or others into it.
    MERGED = "merged", "Merged"


class TimelineEvent(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    field = models.CharField(max_length=50, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    text = models.TextField(blank=True)
    check_result = models.ForeignKey(
        CheckResult, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The name of the rule on whose behalf Quell (the system actor) did this; "" for a person's
    # change. A name, not a key: the timeline keeps saying which rule acted after the rule is gone.
    rule_name = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.kind} on incident {self.incident_id}"


class NumberSequence(models.Model):
    """Hands out incident numbers: one row, incremented inside the creating transaction.

    The row lock serialises concurrent creators, so numbers are unique; a rolled-back creation
    gives its number back, and nothing depends on numbers being free of gaps.
    """

    name = models.CharField(max_length=50, primary_key=True)
    last_value = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"

    @classmethod
    def next_value(cls, name: str) -> int:
        return cls.next_values(name, 1)[0]

    @classmethod
    def next_values(cls, name: str, count: int) -> range:
        """The next `count` numbers, reserved in one statement (the incidents a scan opens at once)."""
        last = cls._advance(name, count)
        return range(last - count + 1, last + 1)

    @classmethod
    def _advance(cls, name: str, count: int) -> int:
        if connection.features.can_return_columns_from_insert:
            # One round trip instead of two where the database can say what it wrote (PostgreSQL,
            # SQLite 3.35 and newer).
            table = connection.ops.quote_name(cls._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET last_value = last_value + %s WHERE name = %s RETURNING last_value",  # noqa: S608
                    [count, name],
                )
                row = cursor.fetchone()
            if row is not None:
                return int(row[0])
        if not cls.objects.filter(name=name).update(last_value=F("last_value") + count):
            cls.objects.get_or_create(name=name)
            cls.objects.filter(name=name).update(last_value=F("last_value") + count)
        return cls.objects.values_list("last_value", flat=True).get(name=name)


class DatasetSet(models.Model):
    """One combination of datasets that incidents are linked to; status counters are kept per set.

    An incident is visible to whoever sees any of its datasets and must be counted once, so counts
    cannot be kept per dataset. Keyed by the exact set, a member's counts are the sum over the sets
    that share a dataset with what they can see. `key` is a hash of the sorted dataset ids.
    `public`: some dataset of the set is visible to the Everyone group, so its incidents are counted
    in Everyone's tally rows too (see tallies.py).
    """

    key = models.CharField(max_length=64, unique=True)
    public = models.BooleanField(default=False)
    datasets: models.ManyToManyField[Dataset, DatasetSetMember] = models.ManyToManyField(
        Dataset, through="DatasetSetMember", related_name="+"
    )

    def __str__(self) -> str:
        return f"dataset set {self.pk}"


class DatasetSetMember(models.Model):
    # Deleting a dataset drops it from its sets: the set then stands for the datasets its incidents
    # still have, which is what visibility and the counts need.
    dataset_set = models.ForeignKey(DatasetSet, on_delete=models.CASCADE, related_name="members")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset_set", "dataset"], name="dataset_set_member_once")
        ]
        indexes = [
            # Counts for a member or a dataset filter: the sets that include any of these datasets.
            models.Index(fields=["dataset", "dataset_set"], name="dataset_set_by_dataset"),
        ]

    def __str__(self) -> str:
        return f"dataset {self.dataset_id} in set {self.dataset_set_id}"


class IncidentTally(models.Model):
    """How many incidents have a status and severity: org-wide, visible to Everyone (`everyone`;
    both without a set), or per dataset set.

    Written by the incident services in the same transaction as the change it counts (and by
    loadgen and the migration that introduced it), so the counts per status on every list page are
    read from a few rows instead of counting the incidents table.
    """

    dataset_set = models.ForeignKey(
        DatasetSet, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    everyone = models.BooleanField(default=False)
    status = models.CharField(max_length=15, choices=Status.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset_set", "status", "severity"],
                condition=models.Q(dataset_set__isnull=False),
                name="incident_tally_per_set",
            ),
            models.UniqueConstraint(
                fields=["everyone", "status", "severity"],
                condition=models.Q(dataset_set__isnull=True),
                name="incident_tally_without_set",
            ),
        ]

    def __str__(self) -> str:
        where = self.dataset_set_id or ("everyone" if self.everyone else "all")
        return f"{self.count} {self.status} {self.severity} in {where}"


def default_outcomes() -> list[str]:
    return ["fail"]


DEFAULT_TITLE_TEMPLATE = "{check} failed on {dataset}"


class IncidentRule(models.Model):
    """Opens, reopens and resolves incidents on ingest by itself (quell.automation; docs/automation.md).

    Rules are tried in `position` order; the first whose scope and trigger match a check's result
    acts. Scope: `datasets` (when `dataset_scoped`; a rule made for datasets matches none of them once
    they are all deleted, rather than every dataset), `data_sources` (empty: any), `check_attributes`
    (every key must equal the check's attribute).
    """

    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    dataset_scoped = models.BooleanField(default=False)
    datasets: models.ManyToManyField[Dataset, Any] = models.ManyToManyField(
        Dataset, blank=True, related_name="incident_rules"
    )
    data_sources: models.ManyToManyField[DataSource, Any] = models.ManyToManyField(
        DataSource, blank=True, related_name="incident_rules"
    )
    check_attributes = models.JSONField(default=dict, blank=True)
    outcomes = models.JSONField(default=default_outcomes)
    consecutive = models.PositiveIntegerField(default=1)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title_template = models.CharField(max_length=300, default=DEFAULT_TITLE_TEMPLATE)
    resolve_after_passes = models.PositiveIntegerField(null=True, blank=True)
    reopen_within_days = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return self.name


class Mute(models.Model):
    """A check or a whole dataset muted until a time: its results are stored and shown, but no rule
    opens, folds into, reopens or resolves an incident for it. One per check or dataset (muting
    again replaces it); it ends by itself when `until` passes."""

    check_ref = models.ForeignKey(
        Check, null=True, blank=True, on_delete=models.CASCADE, related_name="mutes"
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="mutes"
    )
    until = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(check_ref__isnull=False, dataset__isnull=True)
                | models.Q(check_ref__isnull=True, dataset__isnull=False),
                name="mute_check_or_dataset",
            ),
            models.UniqueConstraint(
                fields=["check_ref"], condition=models.Q(check_ref__isnull=False), name="mute_check_once"
            ),
            models.UniqueConstraint(
                fields=["dataset"], condition=models.Q(dataset__isnull=False), name="mute_dataset_once"
            ),
        ]

    def __str__(self) -> str:
        what = f"check {self.check_ref_id}" if self.check_ref_id else f"dataset {self.dataset_id}"
        return f"{what} muted until {self.until}"
