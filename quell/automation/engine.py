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
integrations' events), with Quell's system user as the actor and the rule named. A scan's
incidents are opened, folded into and resolved together (open_incidents, fold_results,
resolve_as_recovered: a fixed number of statements however many, their events recorded together),
so a nightly scan of a thousand checks costs about 1.3x the same scan without rules
(docs/performance.md); a batch that is refused is tried again one incident at a time, so one that
cannot be made leaves the others be. A rule that cannot act (no one to lead, say) is skipped and
logged: a scan is never refused because of a rule.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from quell.accounts import permissions
from quell.accounts.models import GlobalRole, Organization, Responsibility, User, UserGroup
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
from quell.lib.bulk import quoted_column
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
    """The enabled rules in order (rule_queries.enabled_rules, with their scope's ids), as matchers."""
    return [_Rule(*enabled) for enabled in rule_queries.enabled_rules()]


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
    # Each check's newest results, as far back as the longest trigger looks: one statement.
    longest = max(rule.rule.consecutive for rule in rules)
    recent = _recent_results([result.check_ref_id for result in candidates], longest) if longest > 1 else {}
    chosen: list[tuple[IncidentRule, list[int], CheckResult]] = []
    for result in candidates:
        # The first rule whose scope and trigger match: a rule still waiting for its consecutive
        # results lets a later one act.
        for matcher in rules:
            if matcher.matches(result):
                triggering = _triggering_results(matcher.rule, result, recent.get(result.check_ref_id, []))
                if triggering is not None:
                    chosen.append((matcher.rule, triggering, result))
                    break
    if not chosen:
        return
    recovered = _recently_recovered([(rule, result) for rule, _, result in chosen])
    openings: list[tuple[incident_services.Opening, CheckResult]] = []
    leads = _Leads(result.dataset for _, _, result in chosen)
    older = _older_results(chosen)
    for rule, triggering, result in chosen:
        reopen = recovered.get(result.check_ref_id)
        if reopen is not None:
            _act(rule, result, partial(_reopen, rule, reopen, result, system))
            continue
        lead = leads.lead_for(rule, result.dataset)
        if lead is None:
            # Quell itself as the lead would be an incident nobody can act on.
            _could_not_act(rule, result, _no_lead(result.dataset))
            continue
        results = [older[pk] if pk != result.pk else result for pk in triggering]
        openings.append((_opening(rule, results, result, lead), result))
    if not openings:
        return
    try:
        # A savepoint: openings that cannot all be made leave the scan be, and are made one by one.
        with transaction.atomic():
            incident_services.open_incidents([opening for opening, _ in openings], by=system)
    except QuellError:
        for opening, result in openings:
            _act(opening.rule, result, partial(incident_services.open_incidents, [opening], by=system))


def _act(rule: IncidentRule, result: CheckResult, action: Callable[[], object]) -> None:
    """Do what a rule does for one check in a savepoint: a rule that cannot act leaves the scan and
    the other checks' incidents be, and is logged."""
    try:
        with transaction.atomic():
            action()
    except QuellError as error:
        _could_not_act(rule, result, error)


def _could_not_act(rule: IncidentRule, result: CheckResult, error: QuellError) -> None:
    logger.warning(
        "rule %r could not act on check %s (result %s): %s", rule.name, result.check_ref_id, result.pk, error
    )


def _no_lead(dataset: Dataset) -> Unprocessable:
    return Unprocessable(
        f"Nobody who may change incidents on {dataset.data_source.name}/{dataset.name} can lead one.",
        code="no_lead",
    )


def _recent_results(check_ids: list[int], count: int) -> dict[int, list[tuple[int, str]]]:
    """Check id -> the ids and outcomes of its newest `count` results, newest first.

    One statement for a few hundred checks: each check's own LIMIT (which reads `count` rows of the
    result_check_newest index), joined by UNION ALL, on both databases; SQLite allows 500 parts to a
    compound SELECT, hence the chunks.
    """
    table = connection.ops.quote_name(CheckResult._meta.db_table)
    check, time = (quoted_column(CheckResult, name) for name in ("check_ref", "data_timestamp"))
    found: defaultdict[int, list[tuple[int, str]]] = defaultdict(list)
    ids = sorted(set(check_ids))
    for start in range(0, len(ids), 400):
        chunk = ids[start : start + 400]
        parts = [
            f"SELECT * FROM (SELECT id, {check}, outcome, {time} FROM {table} "  # noqa: S608
            f"WHERE {check} = %s ORDER BY {time} DESC, id DESC LIMIT %s) r{n}"
            for n in range(len(chunk))
        ]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), [v for check_id in chunk for v in (check_id, count)])
            rows = cursor.fetchall()
        # SQL does not promise the parts' order survives the UNION: put it back. (SQLite gives the
        # time as stored text, which sorts as the times do.)
        for result_id, check_id, outcome, _ in sorted(rows, key=lambda row: (row[3], row[0]), reverse=True):
            found[check_id].append((result_id, outcome))
    return found


def _triggering_results(
    rule: IncidentRule, result: CheckResult, recent: list[tuple[int, str]]
) -> list[int] | None:
    """The results that make the rule open an incident: the newest `consecutive` results of the check
    (`recent`, newest first), each with one of the rule's outcomes; None when there are not that
    many in a row."""
    if rule.consecutive <= 1:
        return [result.pk]
    newest = recent[: rule.consecutive]
    if len(newest) < rule.consecutive or any(outcome not in rule.outcomes for _, outcome in newest):
        return None
    return [pk for pk, _ in reversed(newest)]


def _older_results(chosen: list[tuple[IncidentRule, list[int], CheckResult]]) -> dict[int, CheckResult]:
    """The triggering results before each check's newest (a rule waiting for several in a row), read
    in one statement and given the newest one's check and dataset (the same for all of a check's)."""
    newest_of = {pk: result for _, triggering, result in chosen for pk in triggering if pk != result.pk}
    if not newest_of:
        return {}
    older = CheckResult.objects.in_bulk(list(newest_of))
    for pk, result in older.items():
        result.check_ref = newest_of[pk].check_ref
        result.dataset = newest_of[pk].dataset
    return older


def _recently_recovered(chosen: list[tuple[IncidentRule, CheckResult]]) -> dict[int, int]:
    """Check id -> the incident to reopen for it: the one covering it most recently resolved as
    recovered within its rule's reopenWithinDays. One statement for all the checks, over the
    longest window, each then held to its own rule's."""
    windows = {
        result.check_ref_id: rule.reopen_within_days for rule, result in chosen if rule.reopen_within_days
    }
    if not windows:
        return {}
    now = timezone.now()
    since = now - timedelta(days=max(windows.values()))
    found: dict[int, int] = {}
    for check_id, incident_id, resolved_at in (
        IncidentCheck.objects.filter(
            check_ref_id__in=list(windows),
            incident__status=Status.RESOLVED,
            incident__resolution_reason=ResolutionReason.RECOVERED,
            incident__resolved_at__gte=since,
        )
        .order_by("-incident__resolved_at", "-incident_id")
        .values_list("check_ref_id", "incident_id", "incident__resolved_at")
    ):
        if (
            check_id not in found
            and resolved_at is not None
            and resolved_at >= now - timedelta(days=windows[check_id])
        ):
            found[check_id] = incident_id
    return found


def _reopen(rule: IncidentRule, incident_id: int, result: CheckResult, system: User) -> None:
    """Reopen an incident resolved as recovered, attaching the new failure."""
    incident_services.update_incident(incident_id, by=system, rule=rule, status=Status.REPORTED)
    incident_services.attach_check_results(incident_id, [result.pk], by=system, rule=rule)


def _opening(
    rule: IncidentRule, results: list[CheckResult], result: CheckResult, lead: User
) -> incident_services.Opening:
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
    times = "once" if len(results) == 1 else f"{len(results)} times in a row"
    description = (
        f"Opened by Quell's rule '{rule.name}': check '{' '.join(check.name.split())}' on "
        f"{dataset.data_source.name}/{dataset.name} reported {result.outcome} {times}."
    )
    return incident_services.Opening(
        rule=rule, title=title, description=description, lead=lead, results=results
    )


class _Leads:
    """Who leads an incident a rule opens on a dataset (docs/automation.md, "Who leads"):

    the rule's lead; else the first person, in the dataset's responsibility order, whose role there
    has Manage incidents (a group's first active member by name); else the dataset's owner; else
    whoever made the rule; else the first admin. The first of these who is active and may change the
    incident leads it; None when nobody may (the rule is then skipped).

    One per scan, for the datasets the scan's rules open incidents on: their managers are read in
    two statements for all of them, and a manager whose role there grants View too needs no
    further look (that role alone gives both permissions); anyone else's permissions are read once
    per person and dataset, and only as far as the first who may lead (nothing a rule does in the
    scan changes them).
    """

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self._chosen: dict[tuple[int, int], User | None] = {}
        self._users: dict[int, User | None] = {}
        self._admin: list[User | None] = []
        self._may_manage: dict[tuple[int, int], bool] = {}
        self._managers = self._read_managers({dataset.pk for dataset in datasets})

    def lead_for(self, rule: IncidentRule, dataset: Dataset) -> User | None:
        key = (rule.pk, dataset.pk)
        if key not in self._chosen:
            self._chosen[key] = next(
                (
                    user
                    for user, sure in self._candidates(rule, dataset)
                    if self._may_lead(user, dataset, sure)
                ),
                None,
            )
        return self._chosen[key]

    def _candidates(self, rule: IncidentRule, dataset: Dataset) -> Iterator[tuple[User, bool]]:
        if rule.lead is not None:
            yield rule.lead, False
        yield from self._managers.get(dataset.pk, ())
        for user_id in (dataset.owner_id, rule.created_by_id):
            if user_id is not None:
                user = self._user(user_id)
                if user is not None:
                    yield user, False
        if not self._admin:
            self._admin.append(
                User.objects.filter(global_role=GlobalRole.ADMIN, is_active=True, is_system=False)
                .order_by("id")
                .first()
            )
        if self._admin[0] is not None:
            yield self._admin[0], True

    @staticmethod
    def _read_managers(dataset_ids: set[int]) -> dict[int, list[tuple[User, bool]]]:
        """Dataset id -> the people its Manage incidents responsibilities name, in their order, each
        with whether that role grants View as well (then they may lead without another look)."""
        responsibilities = list(
            Responsibility.objects.filter(dataset_id__in=dataset_ids, role__manage_incidents=True)
            .select_related("user", "group", "role")
            .order_by("id")
        )
        first_members = _first_members(
            {r.group.pk for r in responsibilities if r.group is not None and not r.group.is_everyone},
            everyone=any(r.group is not None and r.group.is_everyone for r in responsibilities),
        )
        managers: defaultdict[int, list[tuple[User, bool]]] = defaultdict(list)
        for responsibility in responsibilities:
            user = responsibility.user
            if user is None and responsibility.group is not None:
                user = first_members.get(
                    None if responsibility.group.is_everyone else responsibility.group_id
                )
            if user is not None:
                sure = bool(getattr(responsibility.role, permissions.VIEW))
                managers[responsibility.dataset_id].append((user, sure))
        return managers

    def _user(self, user_id: int) -> User | None:
        if user_id not in self._users:
            self._users[user_id] = User.objects.filter(pk=user_id).first()
        return self._users[user_id]

    def _may_lead(self, user: User, dataset: Dataset, sure: bool) -> bool:
        if not user.is_active or user.is_system:
            return False
        if user.is_admin or sure:
            return True
        key = (user.pk, dataset.pk)
        if key not in self._may_manage:
            self._may_manage[key] = permissions.MANAGE_INCIDENTS in permissions.permissions_on(
                user, dataset.pk
            )
        return self._may_manage[key]


def _first_members(group_ids: set[int], *, everyone: bool) -> dict[int | None, User]:
    """Group id -> its first active member by name (None -> Everyone's: the first active person)."""
    first: dict[int | None, User] = {}
    people = ("name", "email", "id")
    if group_ids:
        memberships = (
            UserGroup.members.through.objects.filter(
                usergroup_id__in=group_ids, user__is_active=True, user__is_system=False
            )
            .select_related("user")
            .order_by(*(f"user__{field}" for field in people))
        )
        for membership in memberships:
            first.setdefault(membership.usergroup_id, membership.user)
    if everyone:
        anyone = User.objects.filter(is_active=True, is_system=False).order_by(*people).first()
        if anyone is not None:
            first[None] = anyone
    return first


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
    checks_of: defaultdict[int, list[_Covered]] = defaultdict(list)
    for incident_id, check_id, outcome, dataset_id, name in IncidentCheck.objects.filter(
        incident_id__in=list(incidents)
    ).values_list(
        "incident_id", "check_ref_id", "check_ref__last_outcome", "check_ref__dataset_id", "check_ref__name"
    ):
        checks_of[incident_id].append(_Covered(check_id, outcome, dataset_id, name))
    since: dict[int, datetime | None] = {}
    recovered: list[Incident] = []
    for incident_id, incident in incidents.items():
        all_pass = all(check.outcome == Outcome.PASS for check in checks_of[incident_id])
        moment = None
        if all_pass:
            moment = incident.passing_since or max(r.data_timestamp for r in covering[incident_id])
        if moment != incident.passing_since:
            since[incident_id] = moment
        if (
            all_pass
            and incident.rule_id is not None
            and not any(check.pk in muted for check in checks_of[incident_id])
        ):
            recovered.append(incident)
    if since:
        incident_services.set_passing_since(since, by=system)
    if recovered:
        _recover(recovered, checks_of, system)


class _Covered(NamedTuple):
    """A check an open incident covers, as _note_passes reads it."""

    pk: int
    outcome: str
    dataset_id: int
    name: str


def _recover(incidents: list[Incident], checks_of: Mapping[int, list[_Covered]], system: User) -> None:
    """Resolve, as recovered, the rule-opened incidents whose every check has passed the rule's
    resolveAfterPasses times in a row: all of them together, or one by one if that is refused."""
    rules = {
        rule.pk: rule
        for rule in IncidentRule.objects.filter(
            pk__in={i.rule_id for i in incidents}, enabled=True, resolve_after_passes__isnull=False
        )
    }
    waiting = [
        incident
        for incident in incidents
        if (rule := rules.get(incident.rule_id or 0)) is not None and rule.resolve_after_passes
    ]
    if not waiting:
        return
    checks = {check.pk: check for incident in waiting for check in checks_of[incident.pk]}
    # The scan's own mutes were read before; an incident may also cover checks the scan did not run.
    muted = muted_check_ids((check.pk, check.dataset_id) for check in checks.values())
    longest = max(rules[incident.rule_id or 0].resolve_after_passes or 1 for incident in waiting)
    recent = _recent_results(sorted(checks), longest)
    resolutions: dict[int, tuple[IncidentRule, str]] = {}
    for incident in waiting:
        rule = rules[incident.rule_id or 0]
        covered = [check.pk for check in checks_of[incident.pk]]
        if any(check_id in muted for check_id in covered):
            continue
        streaks = _passing_streaks(covered, rule.resolve_after_passes or 1, recent)
        if streaks is None:
            continue
        named = {" ".join(checks[check_id].name.split()): ids for check_id, ids in streaks.items()}
        resolutions[incident.pk] = (rule, _recovery_note(rule, named))
    if not resolutions:
        return
    try:
        with transaction.atomic():
            incident_services.resolve_as_recovered(resolutions, by=system)
    except QuellError:
        for incident_id, resolution in resolutions.items():
            try:
                with transaction.atomic():
                    incident_services.resolve_as_recovered({incident_id: resolution}, by=system)
            except QuellError as error:
                logger.warning(
                    "rule %r could not resolve incident %s: %s", resolution[0].name, incident_id, error
                )


def _passing_streaks(
    check_ids: list[int], passes: int, recent: Mapping[int, list[tuple[int, str]]]
) -> dict[int, list[int]] | None:
    """Check id -> the ids of its newest `passes` results (`recent`, newest first), when each check's
    are all passes; None as soon as one check has not passed that many times in a row."""
    streaks: dict[int, list[int]] = {}
    for check_id in sorted(check_ids):
        newest = list(recent.get(check_id, []))[:passes]
        if len(newest) < passes or any(outcome != Outcome.PASS for _, outcome in newest):
            return None
        streaks[check_id] = [pk for pk, _ in reversed(newest)]
    return streaks


def _recovery_note(rule: IncidentRule, streaks: dict[str, list[int]]) -> str:
    times = "once" if rule.resolve_after_passes == 1 else f"{rule.resolve_after_passes} times in a row"
    lines = [f"Resolved by Quell's rule '{rule.name}': every check of this incident passed {times}."]
    lines += [
        f"- {name}: result{'s' if len(ids) > 1 else ''} {', '.join(f'#{pk}' for pk in ids)}"
        for name, ids in streaks.items()
    ]
    return "\n".join(lines)
