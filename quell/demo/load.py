"""Building the demo organisation of organisation.toml through Quell's services.

Everything goes through the service functions the API and the web UI call, so the demo holds exactly
what real use would. The story is played in time order: each scan is ingested when the story has it
run, between the people's steps, so Quell's incident rules and folding act on it with the rules,
mutes and incidents there are by then, as they would have. The one exception is time: services stamp
what they write with the current time, so each step's writes are moved back to when the story says
they happened, and a last pass does the same for scans and results. Values come from a seeded random
generator: the same `now` gives the same demo.

It refuses to run on a database that already holds datasets or incidents, so demo data never mixes
into a real installation.
"""

from __future__ import annotations

import itertools
import random
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
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
from quell.incidents.models import (
    EventKind,
    Incident,
    IncidentCheckResult,
    IncidentRule,
    Mute,
    Severity,
    Status,
    TimelineEvent,
)
from quell.incidents.mute_services import mute_check
from quell.incidents.rules import create_rule

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
_RULES: list[dict[str, Any]] = _DATA["rules"]
_MUTES: list[dict[str, Any]] = _DATA["mutes"]


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
        builder.history()
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


# One step of the story: when it happens, its rank among steps of the same minute (a scan's 0 comes
# first: people react to what it found), its place in organisation.toml, and what it does.
_Step = tuple[datetime, int, int, Callable[[], None]]
_WHEN = re.compile(r"(?:today|(?P<days>\d+) days? ago), (?P<hour>\d\d):(?P<minute>\d\d)")
_RULE_FIELDS = {
    "outcomes",
    "consecutive",
    "severity",
    "title_template",
    "resolve_after_passes",
    "reopen_within_days",
}
_CHANGES = {"title", "description", "severity", "status", "lead", "resolution_reason", "resolution_notes"}


class _Builder:
    def __init__(self, now: datetime) -> None:
        self.now = now
        # "Today" is the last day whose story (scans, then up to _LATEST_EVENT_HOUR) is over by `now`.
        self.today = (now.astimezone(UTC) - timedelta(hours=_LATEST_EVENT_HOUR)).date()
        self.users: dict[str, User] = {}
        self.results: dict[tuple[str, str, int], CheckResult] = {}
        self.scan_ids: list[int] = []
        self.datasets: dict[str, Dataset] = {}
        self.check_rngs = {
            (spec.name, check.name): random.Random(f"quell-demo/{spec.source}/{spec.name}/{check.name}")
            for spec in DATASETS
            for check in spec.checks
        }
        self.scan_rng = random.Random("quell-demo/scans")
        self.volume_rngs = {
            spec.name: random.Random(f"quell-demo/{spec.source}/{spec.name}/rows") for spec in DATASETS
        }
        # The newest rows stamp() has moved to the story's time, and when each incident last changed.
        self.event_mark = TimelineEvent.objects.aggregate(m=Max("id"))["m"] or 0
        self.link_mark = IncidentCheckResult.objects.aggregate(m=Max("id"))["m"] or 0
        self.incident_mark = Incident.objects.aggregate(m=Max("id"))["m"] or 0
        self.last: dict[int, datetime] = {}

    def at(self, days_ago: int, hour: int, minute: int = 0) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

    def when(self, text: str) -> datetime:
        found = _WHEN.fullmatch(text)
        if found is None:
            raise ValueError(f"demo story time is not 'N days ago, HH:MM' or 'today, HH:MM': {text!r}")
        return self.at(int(found["days"] or 0), int(found["hour"]), int(found["minute"]))

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

    def history(self) -> None:
        """The scans, the rules, the mutes and the incidents' stories, in the order they happen."""
        sources = sorted(SCAN_HOURS, key=lambda source: SCAN_HOURS[source])
        # The first day's scans bring in the data sources, datasets and checks that the access, the
        # rules and the stories name.
        for source in sources:
            self.scan(DAYS - 1, source)
        self.datasets = {dataset.name: dataset for dataset in Dataset.objects.all()}
        self.responsibilities()

        order = itertools.count()
        steps: list[_Step] = [
            (self.at(days_ago, SCAN_HOURS[source]), 0, next(order), partial(self.scan, days_ago, source))
            for days_ago in range(DAYS - 2, -1, -1)
            for source in sources
        ]
        steps += [(self.when(rule["when"]), 1, next(order), partial(self.rule, rule)) for rule in _RULES]
        steps += [(self.when(mute["when"]), 1, next(order), partial(self.mute, mute)) for mute in _MUTES]
        steps += _Stories(self).steps(order)
        for _, _, _, take in sorted(steps, key=lambda step: step[:3]):
            take()

    def scan(self, days_ago: int, source: str) -> None:
        """The data source's daily scan of that day, ingested as Soda Core would send it."""
        at = self.at(days_ago, SCAN_HOURS[source])
        specs = [spec for spec in DATASETS if spec.source == source]
        inputs: list[ingest.ResultInput] = []
        keys: list[tuple[str, str, int]] = []
        measurements: list[ingest.MeasurementInput] = []
        for spec in specs:
            rows = spec.volume.rows(DAYS - 1 - days_ago, days_ago, at.date(), self.volume_rngs[spec.name])
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
                outcome, value, diagnostics = check.behaviour(day, self.check_rngs[(spec.name, check.name)])
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
        seconds = 20 + len(inputs) * 3 + self.scan_rng.randint(0, 40)
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
            by=self.users["admin"],
        )
        self.scan_ids.append(scan.pk)
        self.results.update(zip(keys, stored, strict=True))
        # What the rules and folding did with it, they did as the scan ended.
        self.stamp(at + timedelta(seconds=seconds))

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

    def rule(self, entry: dict[str, Any]) -> None:
        """One [[rules]] entry, made through the service the settings page and the API call."""
        unknown = entry.keys() - _RULE_FIELDS - {"name", "when", "by", "datasets", "lead"}
        if unknown:
            raise ValueError(f"demo rule {entry['name']!r} has unknown fields: {', '.join(sorted(unknown))}")
        shown = create_rule(
            by=self.users[entry["by"]],
            name=entry["name"],
            dataset_ids=[self.datasets[name].pk for name in entry.get("datasets", [])],
            lead_id=self.users[entry["lead"]].pk if "lead" in entry else None,
            **{key: value for key, value in entry.items() if key in _RULE_FIELDS},
        )
        when = self.when(entry["when"])
        IncidentRule.objects.filter(pk=shown.rule.pk).update(created_at=when, updated_at=when)

    def mute(self, entry: dict[str, Any]) -> None:
        """One [[mutes]] entry, muted through the service the check's page and the API call."""
        check = Check.objects.get(dataset=self.datasets[entry["dataset"]], name=entry["check"])
        # Days after the demo's now, and after the real now for a demo loaded for an earlier `now` (as
        # the tests load it): a mute must end in the future, and the rules ask whether a check is
        # muted at the real time, so the check is muted for the rest of the story either way.
        until = (max(self.now, timezone.now()) + timedelta(days=entry["until_days"])).replace(
            minute=0, second=0, microsecond=0
        )
        mute = mute_check(check.pk, by=self.users[entry["by"]], until=until, reason=entry["reason"])
        Mute.objects.filter(pk=mute.pk).update(created_at=self.when(entry["when"]))

    def result(self, reference: dict[str, Any]) -> int:
        """The id of a result that organisation.toml names by dataset, check and days ago."""
        return self.results[(reference["dataset"], reference["check"], reference["days_ago"])].pk

    def stamp(self, when: datetime) -> None:
        """Move what the services wrote since the last stamp to `when`, the story's time of the step
        that wrote it: timeline events, linked results, new incidents and the "last updated" of those
        changed (a check passing is activity, not a change: it leaves that be, as the service does).
        resolved_at waits for backdate()."""
        events = TimelineEvent.objects.filter(id__gt=self.event_mark)
        links = IncidentCheckResult.objects.filter(id__gt=self.link_mark)
        created = set(Incident.objects.filter(id__gt=self.incident_mark).values_list("pk", flat=True))
        changed = (
            created
            | set(events.exclude(kind=EventKind.CHECK_PASSED).values_list("incident_id", flat=True))
            | set(links.values_list("incident_id", flat=True))
        )
        for incident_id in changed | set(events.values_list("incident_id", flat=True)):
            previous = self.last.get(incident_id)
            if when >= self.now or (previous is not None and when < previous):
                raise AssertionError(f"demo story out of order for incident {incident_id} at {when}")
            self.last[incident_id] = when
        events.update(created_at=when)
        links.update(added_at=when)
        Incident.objects.filter(pk__in=created).update(created_at=when)
        Incident.objects.filter(pk__in=changed).update(updated_at=when)
        self.event_mark = TimelineEvent.objects.aggregate(m=Max("id"))["m"] or 0
        self.link_mark = IncidentCheckResult.objects.aggregate(m=Max("id"))["m"] or 0
        self.incident_mark = Incident.objects.aggregate(m=Max("id"))["m"] or 0

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
        # When each resolved incident was resolved: its last change of status. Left at the real time
        # until now because a rule reopens an incident it resolved within reopenWithinDays of the real
        # clock (quell.automation.engine._reopen): with the story's times the answer would depend on
        # how far the demo's `now` lies behind the real one (a test's fixed `now` falls further behind
        # every day). The story's recurrences fall well within those days.
        resolved = dict(
            TimelineEvent.objects.filter(
                incident__status=Status.RESOLVED, kind=EventKind.CHANGED, field="status"
            )
            .order_by("created_at", "id")
            .values_list("incident_id", "created_at")
        )
        for incident_id, when in resolved.items():
            Incident.objects.filter(pk=incident_id).update(resolved_at=when)


class _Stories:
    """The [[incidents]] of organisation.toml as steps of the story: a person opens the incident (or a
    rule has opened it from a scan), then people take its timeline's steps, through the services."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        # The story's index in organisation.toml -> its incident's id, once it has one.
        self.ids: dict[int, int] = {}

    def steps(self, order: itertools.count[int]) -> list[_Step]:
        steps: list[_Step] = []
        for index, story in enumerate(_INCIDENTS):
            times: list[datetime] = []
            if "rule" not in story:
                times.append(self.b.when(story["when"]))
                steps.append((times[-1], 1, next(order), partial(self.open, index, story)))
            for step in story.get("timeline", []):
                times.append(self.b.when(step["when"]))
                steps.append((times[-1], 1, next(order), partial(self.take, index, story, step)))
            if times != sorted(times):
                raise ValueError(f"demo story steps out of order: {story.get('title') or story['result']}")
        return steps

    def user(self, key: str) -> User:
        return self.b.users[key]

    def open(self, index: int, story: dict[str, Any]) -> None:
        lead = story.get("lead")
        incident = incidents.create_incident(
            by=self.user(story["by"]),
            title=story["title"],
            description=story["description"],
            severity=Severity(story["severity"]),
            check_result_ids=[self.b.result(reference) for reference in story["results"]],
            lead_id=self.user(lead).pk if lead else None,
        )
        self.ids[index] = incident.pk
        self.b.stamp(self.b.when(story["when"]))

    def incident(self, index: int, story: dict[str, Any]) -> int:
        """The story's incident: the one its person opened, or the one its rule opened from `result`."""
        if index not in self.ids:
            reference = story["result"]
            found = (
                IncidentCheckResult.objects.filter(
                    check_result_id=self.b.result(reference), incident__rule__name=story["rule"]
                )
                .values_list("incident_id", flat=True)
                .first()
            )
            if found is None:
                raise ValueError(
                    f"demo story: the rule {story['rule']!r} opened no incident from {reference}: "
                    "organisation.toml's rules, mutes and results no longer tell this story"
                )
            self.ids[index] = found
        return self.ids[index]

    def take(self, index: int, story: dict[str, Any], step: dict[str, Any]) -> None:
        """One [[incidents.timeline]] step: a comment, an attach, or a change of _CHANGES."""
        incident_id, by = self.incident(index, story), self.user(step["by"])
        if "comment" in step:
            incidents.add_comment(incident_id, step["comment"], by=by)
        elif "attach" in step:
            results = [self.b.result(reference) for reference in step["attach"]]
            incidents.attach_check_results(incident_id, results, by=by)
        else:
            changes = {key: value for key, value in step.items() if key not in ("when", "by")}
            if not changes or not changes.keys() <= _CHANGES:
                raise ValueError(f"demo story step neither comments, attaches nor changes: {step}")
            if "status" in changes:
                changes["status"] = Status(changes["status"])
            if "lead" in changes:
                changes["lead_id"] = self.user(changes.pop("lead")).pk
            incidents.update_incident(incident_id, by=by, **changes)
        self.b.stamp(self.b.when(step["when"]))
