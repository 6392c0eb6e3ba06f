"""Writing incident rules: make one, change it (moving it in the order too), delete it. The API,
the settings page and the demo change rules through these; quell.incidents.rule_queries reads them
and quell.automation applies them on ingest.

Each function checks the caller may (rule_queries.require_scope, require_changeable), validates,
and writes in one transaction, so a refused call leaves nothing behind. Rules keep the positions
0, 1, 2, ... in the order they are tried: a new rule goes last, and moving or deleting one
renumbers the rest, under a lock on every rule, so concurrent moves cannot leave two in one place.
(Two rules made at once on PostgreSQL may share a position; rules are ordered by position, then
id, and the next move numbers them apart.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from quell.accounts.models import User
from quell.catalog import visibility
from quell.catalog.models import Dataset, DataSource
from quell.incidents import rule_queries
from quell.incidents.models import DEFAULT_TITLE_TEMPLATE, IncidentRule, Severity
from quell.incidents.rule_titles import check_title_template
from quell.lib.errors import Forbidden, Invalid, Unprocessable
from quell.lib.text import require_plain_text

NAME_MAX = 200
OUTCOMES = ("warn", "fail")
CONSECUTIVE_MAX = 100
PASSES_MAX = 100
REOPEN_DAYS_MAX = 365
ATTRIBUTES_MAX = 20
ATTRIBUTE_NAME_MAX = 100
ATTRIBUTE_VALUE_MAX = 1000
DATASETS_MAX = 1000
DATA_SOURCES_MAX = 100
# A position past the last rule moves it last; this bounds what a request may say.
POSITION_MAX = 1_000_000

AttributeValue = str | int | float | bool

# What update_rule changes; None leaves a field as it is, except for these, which it clears.
EDITABLE_FIELDS = (
    "name",
    "enabled",
    "dataset_ids",
    "data_source_ids",
    "check_attributes",
    "outcomes",
    "consecutive",
    "severity",
    "lead_id",
    "title_template",
    "resolve_after_passes",
    "reopen_within_days",
    "position",
)
CLEARED_BY_NONE = ("lead_id", "resolve_after_passes", "reopen_within_days")


def create_rule(
    *,
    by: User,
    name: str,
    enabled: bool = True,
    dataset_ids: Sequence[int] = (),
    data_source_ids: Sequence[int] = (),
    check_attributes: Mapping[str, Any] | None = None,
    outcomes: Sequence[str] = ("fail",),
    consecutive: int = 1,
    severity: str = Severity.MAJOR,
    lead_id: int | None = None,
    title_template: str = DEFAULT_TITLE_TEMPLATE,
    resolve_after_passes: int | None = None,
    reopen_within_days: int | None = None,
) -> rule_queries.ShownRule:
    """Make a rule, tried after every rule there is. No datasets: it is for every dataset, which
    only an admin may make; anyone else needs Configure dataset on each dataset it names."""
    _require_active(by)
    fields: dict[str, Any] = {
        "name": _clean_name(name),
        "enabled": _boolean("enabled", enabled),
        "check_attributes": _clean_attributes(check_attributes),
        "outcomes": _clean_outcomes(outcomes),
        "consecutive": _bounded("consecutive", consecutive, CONSECUTIVE_MAX),
        "severity": _clean_severity(severity),
        "title_template": _clean_title_template(title_template),
        "resolve_after_passes": _bounded_or_none("resolveAfterPasses", resolve_after_passes, PASSES_MAX),
        "reopen_within_days": _bounded_or_none("reopenWithinDays", reopen_within_days, REOPEN_DAYS_MAX),
    }
    datasets = _datasets(dataset_ids, by)
    sources = _data_sources(data_source_ids, by)
    rule_queries.require_scope(by, datasets, action="make an incident rule")
    lead = _lead(lead_id, datasets, scoped=bool(datasets))

    with transaction.atomic():
        order = _locked_order()
        now = timezone.now()
        rule = IncidentRule.objects.create(
            **fields,
            dataset_scoped=bool(datasets),
            lead=lead,
            position=max((position for _, position in order), default=-1) + 1,
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        rule.datasets.set(datasets)
        rule.data_sources.set(sources)
        _renumber([*order, (rule.pk, rule.position)], [*(pk for pk, _ in order), rule.pk])
    return rule_queries.get_rule(rule.pk, by=by)


def update_rule(rule_id: int, *, by: User, **changes: Any) -> rule_queries.ShownRule:
    """Change any of EDITABLE_FIELDS (the names create_rule takes, and `position`). A field left
    out, or None, stays as it is, but None clears `lead_id`, `resolve_after_passes` and
    `reopen_within_days`. `position` moves the rule to that index of the order (from 0; past the
    end: last) and renumbers the rest. The caller must be able to change the rule as it stands
    and as it becomes (rule_queries.require_changeable, require_scope)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Cannot change {', '.join(sorted(unknown))}.")
    changes = {key: value for key, value in changes.items() if value is not None or key in CLEARED_BY_NONE}
    _require_active(by)

    with transaction.atomic():
        order = _locked_order()
        rule = _rule_for_change(rule_id, by, action="change this incident rule")
        new: dict[str, Any] = {}
        if "name" in changes:
            new["name"] = _clean_name(changes["name"])
        if "enabled" in changes:
            new["enabled"] = _boolean("enabled", changes["enabled"])
        if "check_attributes" in changes:
            new["check_attributes"] = _clean_attributes(changes["check_attributes"])
        if "outcomes" in changes:
            new["outcomes"] = _clean_outcomes(changes["outcomes"])
        if "consecutive" in changes:
            new["consecutive"] = _bounded("consecutive", changes["consecutive"], CONSECUTIVE_MAX)
        if "severity" in changes:
            new["severity"] = _clean_severity(changes["severity"])
        if "title_template" in changes:
            new["title_template"] = _clean_title_template(changes["title_template"])
        if "resolve_after_passes" in changes:
            new["resolve_after_passes"] = _bounded_or_none(
                "resolveAfterPasses", changes["resolve_after_passes"], PASSES_MAX
            )
        if "reopen_within_days" in changes:
            new["reopen_within_days"] = _bounded_or_none(
                "reopenWithinDays", changes["reopen_within_days"], REOPEN_DAYS_MAX
            )
        position = _position(changes["position"]) if "position" in changes else None

        datasets: list[Dataset] | None = None
        if "dataset_ids" in changes:
            datasets = _datasets(changes["dataset_ids"], by)
            rule_queries.require_scope(by, datasets, action="make an incident rule")
            new["dataset_scoped"] = bool(datasets)
        sources = _data_sources(changes["data_source_ids"], by) if "data_source_ids" in changes else None
        if "lead_id" in changes or (datasets is not None and rule.lead_id is not None):
            lead_id = changes.get("lead_id", rule.lead_id)
            final = datasets if datasets is not None else list(rule.datasets.select_related("data_source"))
            scoped = new.get("dataset_scoped", rule.dataset_scoped)
            new["lead"] = _lead(lead_id, final, scoped=scoped)

        for key, value in new.items():
            setattr(rule, key, value)
        rule.updated_at = timezone.now()
        rule.save()
        if datasets is not None:
            rule.datasets.set(datasets)
        if sources is not None:
            rule.data_sources.set(sources)
        if position is not None:
            ids = [pk for pk, _ in order if pk != rule.pk]
            ids.insert(min(position, len(ids)), rule.pk)
            _renumber(order, ids)
    return rule_queries.get_rule(rule.pk, by=by)


def move_rule(rule_id: int, position: int, *, by: User) -> rule_queries.ShownRule:
    """Move a rule to `position` in the order (from 0; past the end: last): update_rule's move."""
    return update_rule(rule_id, by=by, position=position)


def delete_rule(rule_id: int, *, by: User) -> None:
    """Delete a rule. The incidents it opened stay, as opened by no rule (their timelines keep its
    name); the rules after it move up one place."""
    _require_active(by)
    with transaction.atomic():
        order = _locked_order()
        rule = _rule_for_change(rule_id, by, action="delete this incident rule")
        rule.delete()
        _renumber(order, [pk for pk, _ in order if pk != rule_id])


# --- Helpers --------------------------------------------------------------------------------------


def _require_active(by: User) -> None:
    if not by.is_active:
        raise Forbidden("Only an active user can change incident rules.")


def _locked_order() -> list[tuple[int, int]]:
    """(id, position) of every rule in the order they are tried, each row locked for this transaction
    (SQLite's writers take turns anyway), so moves, deletes and creations renumber one at a time."""
    return list(
        IncidentRule.objects.select_for_update().order_by("position", "id").values_list("pk", "position")
    )


def _renumber(current: Iterable[tuple[int, int]], ids: list[int]) -> None:
    """Give the rules `ids` the positions 0, 1, 2, ... in that order, writing only those that move."""
    was = dict(current)
    moved = [IncidentRule(pk=pk, position=index) for index, pk in enumerate(ids) if was.get(pk) != index]
    if moved:
        IncidentRule.objects.bulk_update(moved, ["position"])


def _rule_for_change(rule_id: int, by: User, *, action: str) -> IncidentRule:
    """The rule, after checking `by` can see it (NotFound otherwise) and change it (Forbidden)."""
    rule_queries.get_rule(rule_id, by=by)
    rule = IncidentRule.objects.get(pk=rule_id)
    rule_queries.require_changeable(rule, by, action=action)
    return rule


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid("A rule needs a name.", code="name_required", field="name")
    name = name.strip()
    if len(name) > NAME_MAX:
        raise Invalid(f"The name is longer than {NAME_MAX} characters.", code="too_long", field="name")
    return require_plain_text(name, "name", label="The name")


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false.", code=f"invalid_{field}", field=field)
    return value


def _whole(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{field} must be a whole number.", code=f"invalid_{field}", field=field)
    return value


def _bounded(field: str, value: Any, most: int) -> int:
    number = _whole(field, value)
    if not 1 <= number <= most:
        raise Invalid(
            f"{field} must be from 1 to {most}, not {number}.", code=f"invalid_{field}", field=field
        )
    return number


def _bounded_or_none(field: str, value: Any, most: int) -> int | None:
    return None if value is None else _bounded(field, value, most)


def _position(value: Any) -> int:
    number = _whole("position", value)
    if not 0 <= number <= POSITION_MAX:
        raise Invalid(
            f"position must be from 0 (first) to {POSITION_MAX}, not {number}.",
            code="invalid_position",
            field="position",
        )
    return number


def _clean_outcomes(outcomes: Any) -> list[str]:
    if isinstance(outcomes, str) or not isinstance(outcomes, Sequence) or not outcomes:
        raise Invalid(
            'A rule needs the outcomes it opens incidents for: ["fail"] or ["warn", "fail"].',
            code="outcomes_required",
            field="outcomes",
        )
    for outcome in outcomes:
        if outcome not in OUTCOMES:
            raise Invalid(
                f"outcomes may hold warn and fail, not {outcome!r}.",
                code="invalid_outcomes",
                field="outcomes",
            )
    if len(set(outcomes)) != len(outcomes):
        raise Invalid("outcomes names an outcome twice.", code="invalid_outcomes", field="outcomes")
    # Stored in one order, so two rules with the same outcomes read the same.
    return [outcome for outcome in OUTCOMES if outcome in outcomes]


def _clean_severity(severity: Any) -> str:
    if severity not in Severity.values:
        raise Invalid(
            f"severity must be one of {', '.join(Severity.values)}, not {severity!r}.",
            code="invalid_severity",
            field="severity",
        )
    return str(severity)


def _clean_title_template(template: Any) -> str:
    if not isinstance(template, str):
        raise Invalid(
            "The title template must be text.", code="title_template_required", field="titleTemplate"
        )
    template = check_title_template(template)
    return require_plain_text(template, "titleTemplate", label="The title template")


def _clean_attributes(attributes: Any) -> dict[str, AttributeValue]:
    """The check attributes a rule matches: a flat object of names to text, numbers or booleans."""
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise Invalid(
            'checkAttributes must be an object of attribute names and values, such as {"tier": "gold"}.',
            code="invalid_check_attributes",
            field="checkAttributes",
        )
    if len(attributes) > ATTRIBUTES_MAX:
        raise Invalid(
            f"A rule matches at most {ATTRIBUTES_MAX} check attributes, not {len(attributes)}.",
            code="invalid_check_attributes",
            field="checkAttributes",
        )
    cleaned: dict[str, AttributeValue] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not name or len(name) > ATTRIBUTE_NAME_MAX:
            raise Invalid(
                f"A check attribute's name is 1 to {ATTRIBUTE_NAME_MAX} characters.",
                code="invalid_check_attributes",
                field="checkAttributes",
            )
        require_plain_text(name, "checkAttributes", label="A check attribute's name")
        if isinstance(value, str):
            if len(value) > ATTRIBUTE_VALUE_MAX:
                raise Invalid(
                    f"The value of check attribute {name!r} is longer than {ATTRIBUTE_VALUE_MAX} characters.",
                    code="invalid_check_attributes",
                    field="checkAttributes",
                )
            require_plain_text(value, "checkAttributes", label=f"The value of check attribute {name!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise Invalid(
                f"The value of check attribute {name!r} must be a finite number.",
                code="invalid_check_attributes",
                field="checkAttributes",
            )
        elif not isinstance(value, bool | int | float):
            raise Invalid(
                f"The value of check attribute {name!r} must be text, a number or true or false.",
                code="invalid_check_attributes",
                field="checkAttributes",
            )
        cleaned[name] = value
    return cleaned


def _id_list(field: str, ids: Any, most: int) -> list[int]:
    if isinstance(ids, str) or not isinstance(ids, Iterable):
        raise Invalid(f"{field} must be a list of ids.", code=f"invalid_{field}", field=field)
    unique = list(dict.fromkeys(ids))
    if any(isinstance(pk, bool) or not isinstance(pk, int) for pk in unique):
        raise Invalid(f"{field} must be a list of ids.", code=f"invalid_{field}", field=field)
    if len(unique) > most:
        raise Invalid(f"A rule names at most {most} {field}.", code=f"invalid_{field}", field=field)
    return unique


def _datasets(dataset_ids: Any, by: User) -> list[Dataset]:
    """The datasets, each existing and one `by` can view; Unprocessable naming the others (a
    dataset hidden from the caller is as unknown to them as one that does not exist)."""
    ids = _id_list("datasetIds", dataset_ids, DATASETS_MAX)
    if not ids:
        return []
    seen = set(visibility.viewable_among(by, ids))
    found = {d.pk: d for d in Dataset.objects.filter(pk__in=seen).select_related("data_source")}
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        raise _unknown("dataset", missing, code="unknown_datasets", field="datasetIds")
    return [found[pk] for pk in ids]


def _unknown(kind: str, missing: list[str], *, code: str, field: str) -> Unprocessable:
    """The refusal of ids that name nothing the caller can see: the first ten of them, and "and more"."""
    more = " and more" if len(missing) > 10 else ""
    return Unprocessable(f"Unknown {kind} ids: {', '.join(missing[:10])}{more}.", code=code, field=field)


def _data_sources(data_source_ids: Any, by: User) -> list[DataSource]:
    ids = _id_list("dataSourceIds", data_source_ids, DATA_SOURCES_MAX)
    if not ids:
        return []
    found = {s.pk: s for s in rule_queries.visible_data_sources(by=by).filter(pk__in=ids)}
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        raise _unknown("data source", missing, code="unknown_data_sources", field="dataSourceIds")
    return [found[pk] for pk in ids]


def _lead(lead_id: Any, datasets: Sequence[Dataset], *, scoped: bool) -> User | None:
    """Who leads the incidents the rule opens: an active person who, for a rule of datasets, holds
    Manage incidents on each of them. For a rule of every dataset anyone active will do; the engine
    chooses another lead for a dataset they cannot manage (docs/automation.md)."""
    if lead_id is None:
        return None
    lead_id = _whole("leadId", lead_id)
    lead = User.objects.filter(pk=lead_id, is_active=True, is_system=False).first()
    if lead is None:
        raise Unprocessable(
            f"There is no active user {lead_id} to lead this rule's incidents.",
            code="unknown_lead",
            field="leadId",
        )
    if not scoped:
        return lead
    if not datasets:
        # A rule whose datasets were all deleted matches nothing; its lead leads nothing either.
        return lead
    lacking = set(rule_queries.lead_refusal_datasets(lead, [d.pk for d in datasets]))
    if lacking:
        names = ", ".join(str(d) for d in datasets if d.pk in lacking)
        raise Unprocessable(
            f"{lead.display_name} cannot lead this rule's incidents: a lead needs the Manage incidents "
            f"permission on each of its datasets, and lacks it on {names}.",
            code="lead_cannot_manage",
            field="leadId",
        )
    return lead
