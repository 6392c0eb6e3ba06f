"""The incident rules at work: what Quell does by itself when results arrive (docs/automation.md).

Called from the ResultsIngested reaction, inside the ingest's transaction, so a scan that rolls back
opens, folds and resolves nothing. For each scan:

1. Results of muted checks (the check, or its whole dataset) are left out of everything below.
2. The checks the rest is about are locked, in id order. This is what makes "one incident per check"
   hold under concurrency: a second scan of the same check waits here until the first commits, and
   then finds the first one's incident. (On SQLite, IMMEDIATE transactions already run one writer at
   a time; on PostgreSQL the row locks do it. record_last_outcomes' UPDATE is no such lock: it
   skips a check whose stored result is newer.)
3. Folding: a warn or fail result of a check covered by an open incident is attached to it (the
   newest, if several), when the organisation folds (the default); hand-made incidents too.
4. Opening: for a check whose newest result warns or fails and that no open incident covers, the
   first enabled rule, in order, whose scope and trigger match reopens the incident it recently
   resolved as recovered (reopenWithinDays) or opens one.
5. Passing: a check that passes after warning or failing says so on the timeline of each open
   incident covering it; an incident whose checks all pass shows since when, and one opened by a
   rule with resolveAfterPasses is resolved as `recovered` once every check passed that many times
   in a row.

Every change goes through the incident services, as a person's would (timeline, version, tallies,
integrations' events), with Quell's system user as the actor and the rule named. A rule that cannot
act (no one to lead, say) is skipped and logged: a scan is never refused because of a rule.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import GlobalRole, Organization, Responsibility, User
from quell.accounts.services import system_user
from quell.catalog.models import FAILING_OUTCOMES, Check, CheckResult, Dataset, Outcome
from quell.incidents import rule_queries
from quell.incidents import services as incident_services
from quell.incidents.models import (
    OPEN_STATUSES,
    Incident,
    IncidentCheck,
    IncidentRule,
    ResolutionReason,
    Status,
)
from quell.incidents.mutes import muted_check_ids
from quell.incidents.rule_titles import render_title
from quell.lib.errors import QuellError, Unprocessable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Rule:
    """A rule with its scope read once per scan."""

    rule: IncidentRule
    dataset_ids: frozenset[int]
    data_source_ids: frozenset[int]

    def matches(self, result: CheckResult) -> bool:
        rule = self.rule
        if result.outcome not in rule.outcomes:
            return False
        if rule.dataset_scoped and result.dataset_id not in self.dataset_ids:
            return False
        if self.data_source_ids and result.dataset.data_source_id not in self.data_source_ids:
            return False
        attributes = result.check_ref.attributes or {}
        return all(
            _same(attributes.get(key), wanted) for key, wanted in (rule.check_attributes or {}).items()
        )


def _same(value: Any, wanted: Any) -> bool:
    """An attribute matches when equal, or equal as text (Soda sends "true" and true alike)."""
    if value is None:
        return False
    if value == wanted:
        return True
    return _as_text(value) == _as_text(wanted)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _enabled_rules() -> list[_Rule]:
    """The enabled rules in order (rule_queries.enabled_rules, their scope prefetched), as matchers."""
    return [
        _Rule(
            rule,
            frozenset(dataset.pk for dataset in rule.datasets.all()),
            frozenset(source.pk for source in rule.data_sources.all()),
        )
        for rule in rule_queries.enabled_rules()
    ]


def apply_rules(results: Sequence[CheckResult], outcomes_before: Mapping[int, str]) -> None:
    """Fold, open, reopen, note passes and recover for the results of one scan (see the module)."""
    if not results:
        return
    newest: dict[int, CheckResult] = {}
    for result in results:
        held = newest.get(result.check_ref_id)
        if held is None or (result.data_timestamp, result.pk) > (held.data_timestamp, held.pk):
            newest[result.check_ref_id] = result
    # A scan that only fills in the past says nothing about how a check is now.
    current = {
        check_id: result
        for check_id, result in newest.items()
        if result.check_ref.last_result_at is None or result.data_timestamp >= result.check_ref.last_result_at
    }
    muted = muted_check_ids({(result.check_ref_id, result.dataset_id) for result in results})
    failing = [r for r in results if r.outcome in FAILING_OUTCOMES and r.check_ref_id not in muted]
    passing = {
        check_id: result
        for check_id, result in current.items()
        if result.outcome == Outcome.PASS and check_id not in muted
    }
    if not failing and not passing:
        return

    check_ids = sorted({result.check_ref_id for result in failing} | set(passing))
    # The serialisation point (module docstring, 2): evaluated now, held until the ingest commits.
    list(
        Check.objects.select_for_update().filter(pk__in=check_ids).order_by("pk").values_list("pk", flat=True)
    )
    open_by_check = _open_incidents_covering(check_ids)
    system = system_user()

    _fold(failing, open_by_check, system)
    _open_or_reopen(failing, current, open_by_check, system)
    if passing:
        _note_passes(passing, outcomes_before, open_by_check, muted, system)


def _open_incidents_covering(check_ids: list[int]) -> dict[int, list[int]]:
    """Check id -> the open incidents covering it, newest first.

    Two statements: the open incidents covering any of the checks (by id, from the checks'
    coverage), then the checks those few cover. Written as one join of coverage and incidents,
    SQLite started from the status index and probed every open incident of the organisation for
    each of the scan's checks; with the coverage rows' incident ids as a list, PostgreSQL parsed a
    list as long as the checks' history (docs/performance.md, "Incident rules on ingest")."""
    created = dict(
        Incident.objects.filter(
            pk__in=IncidentCheck.objects.filter(check_ref_id__in=check_ids).values("incident_id"),
            status__in=OPEN_STATUSES,
        )
        .order_by()
        .values_list("pk", "created_at")
    )
    if not created:
        return {}
    wanted = set(check_ids)
    found: defaultdict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for check_id, incident_id in (
        IncidentCheck.objects.filter(incident_id__in=list(created))
        .order_by()
        .values_list("check_ref_id", "incident_id")
    ):
        if check_id in wanted:
            found[check_id].append((created[incident_id], incident_id))
    return {check_id: [pk for _, pk in sorted(pairs, reverse=True)] for check_id, pairs in found.items()}


def _fold(failing: list[CheckResult], open_by_check: dict[int, list[int]], system: User) -> None:
    covered = [result for result in failing if result.check_ref_id in open_by_check]
    if not covered:
        return
    if not Organization.get().fold_results:
        # Not attached, but its incident's checks do not all pass any more.
        incident_services.set_passing_since(
            {open_by_check[result.check_ref_id][0]: None for result in covered}, by=system
        )
        return
    folds: defaultdict[int, list[CheckResult]] = defaultdict(list)
    for result in covered:
        folds[open_by_check[result.check_ref_id][0]].append(result)
    incident_services.fold_results(folds, by=system)


def _open_or_reopen(
    failing: list[CheckResult],
    current: dict[int, CheckResult],
    open_by_check: dict[int, list[int]],
    system: User,
) -> None:
    # One incident per check, from its newest result, and only when that warns or fails now.
    candidates = [
        result
        for check_id, result in sorted(current.items())
        if check_id not in open_by_check and result.outcome in FAILING_OUTCOMES
    ]
    # ...and not muted (failing holds the results of the checks that are not).
    unmuted = {result.pk for result in failing}
    candidates = [result for result in candidates if result.pk in unmuted]
    if not candidates:
        return
    rules = _enabled_rules()
    if not rules:
        return
    leads = _Leads()
    for result in candidates:
        # The first rule whose scope and trigger match: a rule still waiting for its consecutive
        # results lets a later one act.
        rule, triggering = next(
            (
                (rule, found)
                for rule in rules
                if rule.matches(result) and (found := _triggering_results(rule.rule, result)) is not None
            ),
            (None, None),
        )
        if rule is None or triggering is None:
            continue
        try:
            # A savepoint: a rule that cannot act leaves the scan and the other checks' incidents be.
            with transaction.atomic():
                if not _reopen(rule.rule, result, system):
                    _open(rule.rule, triggering, result, system, leads)
        except QuellError as error:
            logger.warning(
                "rule %r could not act on check %s (result %s): %s",
                rule.rule.name,
                result.check_ref_id,
                result.pk,
                error,
            )


def _triggering_results(rule: IncidentRule, result: CheckResult) -> list[int] | None:
    """The results that make the rule open an incident: the newest `consecutive` results of the check,
    each with one of the rule's outcomes; None when there are not that many in a row."""
    if rule.consecutive <= 1:
        return [result.pk]
    recent = list(
        CheckResult.objects.filter(check_ref_id=result.check_ref_id)
        .order_by("-data_timestamp", "-id")
        .values_list("pk", "outcome")[: rule.consecutive]
    )
    if len(recent) < rule.consecutive or any(outcome not in rule.outcomes for _, outcome in recent):
        return None
    return [pk for pk, _ in reversed(recent)]


def _reopen(rule: IncidentRule, result: CheckResult, system: User) -> bool:
    """Reopen the incident of this check that was resolved as recovered within the rule's
    reopenWithinDays (the most recently resolved), attaching the new failure. False when none."""
    if not rule.reopen_within_days:
        return False
    since = timezone.now() - timedelta(days=rule.reopen_within_days)
    incident_id = (
        IncidentCheck.objects.filter(
            check_ref_id=result.check_ref_id,
            incident__status=Status.RESOLVED,
            incident__resolution_reason=ResolutionReason.RECOVERED,
            incident__resolved_at__gte=since,
        )
        .order_by("-incident__resolved_at", "-incident_id")
        .values_list("incident_id", flat=True)
        .first()
    )
    if incident_id is None:
        return False
    incident_services.update_incident(incident_id, by=system, rule=rule, status=Status.REPORTED)
    incident_services.attach_check_results(incident_id, [result.pk], by=system, rule=rule)
    return True


def _open(
    rule: IncidentRule, result_ids: list[int], result: CheckResult, system: User, leads: _Leads
) -> Incident:
    check = result.check_ref
    dataset = result.dataset
    title = render_title(
        rule.title_template,
        {
            "check": check.name,
            "dataset": dataset.label or dataset.name,
            "dataSource": dataset.data_source.name,
            "outcome": result.outcome,
            "column": check.column,
        },
    )
    times = "once" if len(result_ids) == 1 else f"{len(result_ids)} times in a row"
    description = (
        f"Opened by Quell's rule '{rule.name}': check '{' '.join(check.name.split())}' on "
        f"{dataset.data_source.name}/{dataset.name} reported {result.outcome} {times}."
    )
    lead_id = leads.lead_for(rule, dataset)
    if lead_id is None:
        # create_incident would make its caller, Quell, the lead: an incident nobody can act on.
        raise Unprocessable(
            f"Nobody who may change incidents on {dataset.data_source.name}/{dataset.name} can lead one.",
            code="no_lead",
        )
    return incident_services.create_incident(
        by=system,
        title=title,
        description=description,
        check_result_ids=result_ids,
        severity=rule.severity,
        lead_id=lead_id,
        allow_duplicate=True,
        rule=rule,
    )


class _Leads:
    """Who leads an incident a rule opens on a dataset (docs/automation.md, "Who leads"):

    the rule's lead; else the first person, in the dataset's responsibility order, whose role there
    has Manage incidents (a group's first active member by name); else the dataset's owner; else
    whoever made the rule; else the first admin. The first of these who is active and may change the
    incident leads it; None when nobody may (the rule is then skipped, as create_incident refuses).

    One per scan: the people, the datasets' managers and who may manage what are read once each and
    only as far as the first who may lead, not once per incident opened (nothing a rule does in the
    scan changes them).
    """

    def __init__(self) -> None:
        self._chosen: dict[tuple[int, int], int | None] = {}
        self._managers: dict[int, list[User]] = {}
        self._users: dict[int, User | None] = {}
        self._admin: list[User | None] = []
        self._may_manage: dict[tuple[int, int], bool] = {}

    def lead_for(self, rule: IncidentRule, dataset: Dataset) -> int | None:
        key = (rule.pk, dataset.pk)
        if key not in self._chosen:
            self._chosen[key] = next(
                (user.pk for user in self._candidates(rule, dataset) if self._may_lead(user, dataset)), None
            )
        return self._chosen[key]

    def _candidates(self, rule: IncidentRule, dataset: Dataset) -> Iterator[User]:
        if rule.lead is not None:
            yield rule.lead
        yield from self._managers_of(dataset)
        for user_id in (dataset.owner_id, rule.created_by_id):
            if user_id is not None:
                user = self._user(user_id)
                if user is not None:
                    yield user
        if not self._admin:
            self._admin.append(
                User.objects.filter(global_role=GlobalRole.ADMIN, is_active=True, is_system=False)
                .order_by("id")
                .first()
            )
        if self._admin[0] is not None:
            yield self._admin[0]

    def _managers_of(self, dataset: Dataset) -> list[User]:
        if dataset.pk not in self._managers:
            managers: list[User] = []
            responsibilities = (
                Responsibility.objects.filter(dataset_id=dataset.pk, role__manage_incidents=True)
                .select_related("user", "group")
                .order_by("id")
            )
            for responsibility in responsibilities:
                if responsibility.user is not None:
                    managers.append(responsibility.user)
                elif responsibility.group is not None:
                    members = (
                        User.objects.filter(is_active=True, is_system=False).order_by("name", "email", "id")
                        if responsibility.group.is_everyone
                        else responsibility.group.members.filter(is_active=True, is_system=False).order_by(
                            "name", "email", "id"
                        )
                    )
                    first = members.first()
                    if first is not None:
                        managers.append(first)
            self._managers[dataset.pk] = managers
        return self._managers[dataset.pk]

    def _user(self, user_id: int) -> User | None:
        if user_id not in self._users:
            self._users[user_id] = User.objects.filter(pk=user_id).first()
        return self._users[user_id]

    def _may_lead(self, user: User, dataset: Dataset) -> bool:
        if not user.is_active or user.is_system:
            return False
        if user.is_admin:
            return True
        key = (user.pk, dataset.pk)
        if key not in self._may_manage:
            self._may_manage[key] = permissions.MANAGE_INCIDENTS in permissions.permissions_on(
                user, dataset.pk
            )
        return self._may_manage[key]


def _note_passes(
    passing: dict[int, CheckResult],
    outcomes_before: Mapping[int, str],
    open_by_check: dict[int, list[int]],
    muted: set[int],
    system: User,
) -> None:
    covering: defaultdict[int, list[CheckResult]] = defaultdict(list)
    for check_id, result in passing.items():
        for incident_id in open_by_check.get(check_id, ()):
            covering[incident_id].append(result)
    if not covering:
        return
    # "Check X passed" once, when it passes again: later passes are what "passing since" counts.
    passed_again = {
        incident_id: [r for r in results if outcomes_before.get(r.check_ref_id) in FAILING_OUTCOMES]
        for incident_id, results in covering.items()
    }
    incident_services.record_passes(
        {incident_id: results for incident_id, results in passed_again.items() if results}, by=system
    )

    incidents = {
        incident.pk: incident
        for incident in Incident.objects.filter(pk__in=list(covering), status__in=OPEN_STATUSES).only(
            "pk", "passing_since", "rule_id"
        )
    }
    checks_of: defaultdict[int, list[tuple[int, str]]] = defaultdict(list)
    for incident_id, check_id, outcome in IncidentCheck.objects.filter(
        incident_id__in=list(incidents)
    ).values_list("incident_id", "check_ref_id", "check_ref__last_outcome"):
        checks_of[incident_id].append((check_id, outcome))
    since: dict[int, datetime | None] = {}
    recovered: list[Incident] = []
    for incident_id, incident in incidents.items():
        all_pass = all(outcome == Outcome.PASS for _, outcome in checks_of[incident_id])
        moment = None
        if all_pass:
            moment = incident.passing_since or max(r.data_timestamp for r in covering[incident_id])
        if moment != incident.passing_since:
            since[incident_id] = moment
        if (
            all_pass
            and incident.rule_id is not None
            and not any(c in muted for c, _ in checks_of[incident_id])
        ):
            recovered.append(incident)
    if since:
        incident_services.set_passing_since(since, by=system)
    if recovered:
        _recover(recovered, {i.pk: [c for c, _ in checks_of[i.pk]] for i in recovered}, system)


def _recover(incidents: list[Incident], checks_of: dict[int, list[int]], system: User) -> None:
    """Resolve, as recovered, the rule-opened incidents whose every check has passed the rule's
    resolveAfterPasses times in a row."""
    rules = {
        rule.pk: rule
        for rule in IncidentRule.objects.filter(
            pk__in={i.rule_id for i in incidents}, enabled=True, resolve_after_passes__isnull=False
        )
    }
    all_checks = {check_id for incident in incidents for check_id in checks_of[incident.pk]}
    muted = muted_check_ids(Check.objects.filter(pk__in=all_checks).values_list("pk", "dataset_id"))
    for incident in incidents:
        rule = rules.get(incident.rule_id or 0)
        if rule is None or not rule.resolve_after_passes:
            continue
        if any(check_id in muted for check_id in checks_of[incident.pk]):
            continue
        streaks = _passing_streaks(checks_of[incident.pk], rule.resolve_after_passes)
        if streaks is None:
            continue
        try:
            with transaction.atomic():
                incident_services.update_incident(
                    incident.pk,
                    by=system,
                    rule=rule,
                    status=Status.RESOLVED,
                    resolution_reason=ResolutionReason.RECOVERED,
                    resolution_notes=_recovery_note(rule, streaks),
                )
        except QuellError as error:
            logger.warning("rule %r could not resolve incident %s: %s", rule.name, incident.pk, error)


def _passing_streaks(check_ids: list[int], passes: int) -> dict[str, list[int]] | None:
    """Check name -> the ids of its newest `passes` results, when each check's are all passes; None
    as soon as one check has not passed that many times in a row."""
    streaks: dict[int, list[int]] = {}
    for check_id in sorted(check_ids):
        recent = list(
            CheckResult.objects.filter(check_ref_id=check_id)
            .order_by("-data_timestamp", "-id")
            .values_list("pk", "outcome")[:passes]
        )
        if len(recent) < passes or any(outcome != Outcome.PASS for _, outcome in recent):
            return None
        streaks[check_id] = [pk for pk, _ in reversed(recent)]
    # Named only once it recovers: most incidents asked about have not passed often enough yet.
    names = dict(Check.objects.filter(pk__in=check_ids).values_list("pk", "name"))
    return {" ".join(names.get(check_id, str(check_id)).split()): ids for check_id, ids in streaks.items()}


def _recovery_note(rule: IncidentRule, streaks: dict[str, list[int]]) -> str:
    times = "once" if rule.resolve_after_passes == 1 else f"{rule.resolve_after_passes} times in a row"
    lines = [f"Resolved by Quell's rule '{rule.name}': every check of this incident passed {times}."]
    lines += [
        f"- {name}: result{'s' if len(ids) > 1 else ''} {', '.join(f'#{pk}' for pk in ids)}"
        for name, ids in streaks.items()
    ]
    return "\n".join(lines)
