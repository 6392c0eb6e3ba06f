"""Building the demo organisation of organisation.toml through Quell's services.

Everything goes through the service functions the API and the web UI call, so the demo holds exactly
what real use would. The one exception is time: services stamp what they write with the current time,
so a last pass moves the timestamps of scans, results and incidents back to when the story says they
happened. Values come from a seeded random generator: the same `now` gives the same demo.

It refuses to run on a database that already holds datasets or incidents, so demo data never mixes
into a real installation.
"""

from __future__ import annotations

import random
import re
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from quell.accounts.models import DatasetRole, GlobalRole, User
from quell.accounts.queries import everyone_group
from quell.accounts.services import create_user, update_organization
from quell.catalog import ingest
from quell.catalog import services as catalog
from quell.catalog.models import Check, CheckResult, Dataset, DataSource, Scan
from quell.demo.checks import DatasetSpec, Day, dataset_spec
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentCheckResult, Severity, Status, TimelineEvent

# Read from the package, not a path, so that it works from an installed wheel too.
_DATA: dict[str, Any] = tomllib.loads(
    resources.files("quell.demo").joinpath("organisation.toml").read_text(encoding="utf-8")
)

ORGANISATION_NAME: str = _DATA["organisation"]["name"]
DEMO_PASSWORD: str = _DATA["organisation"]["password"]
DAYS: int = _DATA["organisation"]["days"]
# Today's story events all happen before this hour, and "today" is the last day on which this hour
# has passed: nothing in the demo lies in the future.
_LATEST_EVENT_HOUR: int = _DATA["organisation"]["latest_event_hour"]

PEOPLE: list[dict[str, str]] = _DATA["people"]
_ACCESS: dict[str, Any] = _DATA["access"]
PRIVATE_DATASET: str = _ACCESS["private_dataset"]  # data source/dataset
# When each data source's daily scan runs (UTC), its type, and who edits its datasets.
SCAN_HOURS: dict[str, int] = {source["name"]: source["scan_hour"] for source in _DATA["data_sources"]}
SOURCE_TYPES: dict[str, str] = {source["name"]: source["type"] for source in _DATA["data_sources"]}
_EDITORS: dict[str, str] = {source["name"]: source["editor"] for source in _DATA["data_sources"]}
DATASETS: list[DatasetSpec] = [dataset_spec(entry) for entry in _DATA["datasets"]]
_INCIDENTS: list[dict[str, Any]] = _DATA["incidents"]


class DemoRefused(Exception):
    """The database is not empty enough for the demo."""


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class DemoSummary:
    organisation: str
    password: str
    logins: list[DemoLogin]
    private_dataset: str
    data_sources: int
    datasets: int
    checks: int
    results: int
    incidents: int
    seconds: float

    def login_lines(self) -> list[str]:
        width = max(len(login.email) for login in self.logins)
        lines = [f"  {login.email:<{width}}  {login.name}: {login.role}" for login in self.logins]
        return [*lines, f"Every demo account's password is {self.password!r}."]


def load_demo(now: datetime | None = None) -> DemoSummary:
    """Build the demo organisation in an empty database; raise DemoRefused when it is not empty."""
    started = time.monotonic()
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        now = timezone.make_aware(now, UTC)
    with transaction.atomic():
        _refuse_unless_empty()
        builder = _Builder(now)
        builder.people()
        builder.scans()
        builder.responsibilities()
        builder.incidents()
        builder.backdate()
    return DemoSummary(
        organisation=ORGANISATION_NAME,
        password=DEMO_PASSWORD,
        logins=[DemoLogin(person["email"], person["name"], person["may"]) for person in PEOPLE],
        private_dataset=PRIVATE_DATASET,
        data_sources=len(SCAN_HOURS),
        datasets=len(DATASETS),
        checks=sum(len(spec.checks) for spec in DATASETS),
        results=len(builder.results),
        incidents=Incident.objects.count(),
        seconds=time.monotonic() - started,
    )


def _refuse_unless_empty() -> None:
    found = [
        f"{count} {what}"
        for what, count in (
            ("datasets", Dataset.objects.count()),
            ("incidents", Incident.objects.count()),
        )
        if count
    ]
    if found:
        raise DemoRefused(
            f"The database already holds {' and '.join(found)}. The demo only loads into an empty "
            "installation, so that it never mixes with real data: point QUELL_DATA_DIR (or "
            "QUELL_DATABASE_URL) at a new database to try it."
        )
    taken = sorted(
        User.objects.filter(email__in=[person["email"] for person in PEOPLE]).values_list("email", flat=True)
    )
    if taken:
        raise DemoRefused(f"The database already has users the demo would create: {', '.join(taken)}.")


class _Builder:
    def __init__(self, now: datetime) -> None:
        self.now = now
        # "Today" is the last day whose story (scans, then up to _LATEST_EVENT_HOUR) is over by `now`.
        self.today = (now.astimezone(UTC) - timedelta(hours=_LATEST_EVENT_HOUR)).date()
        self.users: dict[str, User] = {}
        self.results: dict[tuple[str, str, int], CheckResult] = {}
        self.scan_ids: list[int] = []
        self.datasets: dict[str, Dataset] = {}

    def at(self, days_ago: int, hour: int, minute: int = 0) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

    def people(self) -> None:
        for person in PEOPLE:
            self.users[person["key"]] = create_user(
                by=self.users.get("admin"),
                email=person["email"],
                name=person["name"],
                password=DEMO_PASSWORD,
                global_role=GlobalRole(person["role"]),
            )
        update_organization(by=self.users["admin"], name=ORGANISATION_NAME)

    def scans(self) -> None:
        admin = self.users["admin"]
        rngs = {
            (spec.name, check.name): random.Random(f"quell-demo/{spec.source}/{spec.name}/{check.name}")
            for spec in DATASETS
            for check in spec.checks
        }
        scan_rng = random.Random("quell-demo/scans")
        volume_rngs = {
            spec.name: random.Random(f"quell-demo/{spec.source}/{spec.name}/rows") for spec in DATASETS
        }
        for days_ago in range(DAYS - 1, -1, -1):
            for source, hour in sorted(SCAN_HOURS.items(), key=lambda item: item[1]):
                at = self.at(days_ago, hour)
                specs = [spec for spec in DATASETS if spec.source == source]
                inputs: list[ingest.ResultInput] = []
                keys: list[tuple[str, str, int]] = []
                measurements: list[ingest.MeasurementInput] = []
                for spec in specs:
                    rows = spec.volume.rows(DAYS - 1 - days_ago, days_ago, at.date(), volume_rngs[spec.name])
                    day = Day(days_ago, at, rows)
                    measurements.append(
                        ingest.MeasurementInput(
                            identity=f"metric-{source}-{spec.name}-row_count",
                            metric_name="row_count",
                            value=rows,
                            data_source=source,
                            dataset=spec.name,
                        )
                    )
                    for check in spec.checks:
                        outcome, value, diagnostics = check.behaviour(day, rngs[(spec.name, check.name)])
                        inputs.append(
                            ingest.ResultInput(
                                data_source=source,
                                dataset=spec.name,
                                check=ingest.CheckInput(
                                    name=check.name,
                                    column=check.column,
                                    definition=check.definition(spec.name),
                                    check_type=check.check_type,
                                    attributes={"dimension": check.dimension},
                                ),
                                outcome=outcome,
                                value=value,
                                diagnostics=diagnostics,
                            )
                        )
                        keys.append((spec.name, check.name, days_ago))
                seconds = 20 + len(inputs) * 3 + scan_rng.randint(0, 40)
                scan, stored = ingest.ingest_scan(
                    ingest.ScanInput(
                        data_timestamp=at,
                        results=inputs,
                        source="soda-core",
                        definition_name=f"{source}_daily",
                        started_at=at,
                        ended_at=at + timedelta(seconds=seconds),
                        measurements=measurements,
                        data_source_types={source: SOURCE_TYPES[source]},
                    ),
                    by=admin,
                )
                self.scan_ids.append(scan.pk)
                self.results.update(zip(keys, stored, strict=True))
        self.datasets = {dataset.name: dataset for dataset in Dataset.objects.all()}

    def responsibilities(self) -> None:
        """Who may do what on each dataset, as organisation.toml's [access] has it."""
        roles = {role.name: role.pk for role in DatasetRole.objects.all()}
        everyone = everyone_group().pk

        def people(entries: list[dict[str, str]]) -> list[catalog.ResponsibilityInput]:
            return [
                catalog.ResponsibilityInput("user", self.users[entry["person"]].pk, roles[entry["role"]])
                for entry in entries
            ]

        for spec in DATASETS:
            if f"{spec.source}/{spec.name}" == PRIVATE_DATASET:
                items = people(_ACCESS["private"])
            else:
                items = [
                    catalog.ResponsibilityInput("userGroup", everyone, roles[_ACCESS["everyone"]]),
                    *people(_ACCESS["people"]),
                    *people([{"person": _EDITORS[spec.source], "role": _ACCESS["data_source_editor"]}]),
                ]
            catalog.set_responsibilities(self.datasets[spec.name].pk, items, by=self.users["admin"])

    def result(self, reference: dict[str, Any]) -> int:
        """The id of a result that organisation.toml names by dataset, check and days ago."""
        return self.results[(reference["dataset"], reference["check"], reference["days_ago"])].pk

    def incidents(self) -> None:
        stories = _Stories(self)
        for story in _INCIDENTS:
            stories.tell(story)

    def backdate(self) -> None:
        """Move what the services stamped with the current time back to when the story has it happen."""
        first = self.at(DAYS - 1, 0)
        Scan.objects.filter(pk__in=self.scan_ids).update(created_at=F("ended_at"))
        CheckResult.objects.filter(scan_id__in=self.scan_ids).update(created_at=F("data_timestamp"))
        demo_sources = DataSource.objects.filter(name__in=SCAN_HOURS)
        demo_sources.update(created_at=first)
        Dataset.objects.filter(data_source__in=demo_sources).update(created_at=first)
        Check.objects.filter(dataset__data_source__in=demo_sources).update(created_at=first)
        User.objects.filter(pk__in=[user.pk for user in self.users.values()]).update(
            date_joined=first - timedelta(days=3)
        )


_WHEN = re.compile(r"(?:today|(?P<days>\d+) days? ago), (?P<hour>\d\d):(?P<minute>\d\d)")
_CHANGES = {"status", "lead", "resolution_notes"}


class _Stories:
    """Tells incidents through the services, then stamps each step with the time the story gives it."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.last: dict[int, datetime] = {}
        self.event_mark = TimelineEvent.objects.aggregate(m=Max("id"))["m"] or 0
        self.link_mark = IncidentCheckResult.objects.aggregate(m=Max("id"))["m"] or 0

    def tell(self, story: dict[str, Any]) -> None:
        """One [[incidents]] entry of organisation.toml: open the incident, then take its timeline's steps."""
        incident_id = self.open(
            self.when(story["when"]),
            story["by"],
            story["title"],
            story["description"],
            Severity(story["severity"]),
            [self.b.result(reference) for reference in story["results"]],
            lead=story.get("lead"),
        )
        for step in story.get("timeline", []):
            when, by = self.when(step["when"]), step["by"]
            if "comment" in step:
                self.comment(incident_id, when, by, step["comment"])
            elif "attach" in step:
                self.attach(incident_id, when, by, [self.b.result(reference) for reference in step["attach"]])
            else:
                changes = {key: value for key, value in step.items() if key not in ("when", "by")}
                if not changes or not changes.keys() <= _CHANGES:
                    raise ValueError(f"demo story step neither comments, attaches nor changes: {step}")
                if "status" in changes:
                    changes["status"] = Status(changes["status"])
                self.change(incident_id, when, by, **changes)

    def when(self, text: str) -> datetime:
        found = _WHEN.fullmatch(text)
        if found is None:
            raise ValueError(f"demo story time is not 'N days ago, HH:MM' or 'today, HH:MM': {text!r}")
        return self.b.at(int(found["days"] or 0), int(found["hour"]), int(found["minute"]))

    def user(self, key: str) -> User:
        return self.b.users[key]

    def _stamp(
        self, incident_id: int, when: datetime, *, created: bool = False, resolved: bool = False
    ) -> None:
        previous = self.last.get(incident_id)
        if when >= self.b.now or (previous is not None and when < previous):
            raise AssertionError(f"demo story out of order for incident {incident_id} at {when}")
        self.last[incident_id] = when
        TimelineEvent.objects.filter(incident_id=incident_id, id__gt=self.event_mark).update(created_at=when)
        IncidentCheckResult.objects.filter(incident_id=incident_id, id__gt=self.link_mark).update(
            added_at=when
        )
        stamps: dict[str, datetime] = {"updated_at": when}
        if created:
            stamps["created_at"] = when
        if resolved:
            stamps["resolved_at"] = when
        Incident.objects.filter(pk=incident_id).update(**stamps)
        self.event_mark = TimelineEvent.objects.aggregate(m=Max("id"))["m"] or 0
        self.link_mark = IncidentCheckResult.objects.aggregate(m=Max("id"))["m"] or 0

    def open(
        self,
        when: datetime,
        by: str,
        title: str,
        description: str,
        severity: str,
        results: list[int],
        lead: str | None = None,
    ) -> int:
        incident = incidents.create_incident(
            by=self.user(by),
            title=title,
            description=description,
            severity=severity,
            check_result_ids=results,
            lead_id=self.user(lead).pk if lead else None,
        )
        self._stamp(incident.pk, when, created=True)
        return incident.pk

    def comment(self, incident_id: int, when: datetime, by: str, text: str) -> None:
        incidents.add_comment(incident_id, text, by=self.user(by))
        self._stamp(incident_id, when)

    def change(self, incident_id: int, when: datetime, by: str, **changes: Any) -> None:
        if "lead" in changes:
            changes["lead_id"] = self.user(changes.pop("lead")).pk
        incidents.update_incident(incident_id, by=self.user(by), **changes)
        self._stamp(incident_id, when, resolved=changes.get("status") == Status.RESOLVED)

    def attach(self, incident_id: int, when: datetime, by: str, results: list[int]) -> None:
        incidents.attach_check_results(incident_id, results, by=self.user(by))
        self._stamp(incident_id, when)
