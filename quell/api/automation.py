"""REST endpoints for incident rules (/incidentRules): what Quell opens, resolves and reopens by
itself on ingest. quell.incidents.rules writes them, quell.incidents.rule_queries reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from django.http import HttpRequest
from ninja import Field, Path, Router, Status
from pydantic.config import JsonDict

from quell.api.base import (
    COMMON_ERRORS,
    MAX_ID,
    UNPROCESSABLE,
    WRITE_ERRORS,
    Body,
    ErrorOut,
    Id,
    Schema,
    UserRef,
    WholeNumber,
    caller,
    request_examples,
    text,
    user_ref,
)
from quell.incidents import rule_queries, rules
from quell.incidents.models import DEFAULT_TITLE_TEMPLATE, Severity
from quell.incidents.rule_titles import PLACEHOLDERS, TITLE_MAX
from quell.lib.text import NON_BLANK_ONE_LINE_PATTERN, ONE_LINE_PATTERN

router = Router(tags=["incident rules"])

OutcomeName = Literal["warn", "fail"]
SeverityName = Literal["minor", "major", "critical"]
assert list(get_args(OutcomeName)) == list(rules.OUTCOMES)
assert list(get_args(SeverityName)) == list(Severity.values)
RuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="The incident rule's id.", example=1)]
Consecutive = Annotated[int, Field(ge=1, le=rules.CONSECUTIVE_MAX), WholeNumber]
Passes = Annotated[int, Field(ge=1, le=rules.PASSES_MAX), WholeNumber]
Days = Annotated[int, Field(ge=1, le=rules.REOPEN_DAYS_MAX), WholeNumber]
Position = Annotated[int, Field(ge=0, le=rules.POSITION_MAX), WholeNumber]
AttributeValue = str | bool | int | float
Outcomes = Annotated[
    list[OutcomeName],
    Field(min_length=1, max_length=len(rules.OUTCOMES), json_schema_extra={"uniqueItems": True}),
]
DatasetIds = Annotated[list[Id], Field(max_length=rules.DATASETS_MAX)]
DataSourceIds = Annotated[list[Id], Field(max_length=rules.DATA_SOURCES_MAX)]

# What services.rules._clean_attributes takes, stated for the schema.
ATTRIBUTES_SCHEMA: JsonDict = {
    "maxProperties": rules.ATTRIBUTES_MAX,
    "propertyNames": {"minLength": 1, "maxLength": rules.ATTRIBUTE_NAME_MAX, "pattern": ONE_LINE_PATTERN},
    "additionalProperties": {
        "anyOf": [
            {"type": "string", "maxLength": rules.ATTRIBUTE_VALUE_MAX, "pattern": ONE_LINE_PATTERN},
            {"type": "number"},
            {"type": "boolean"},
        ]
    },
}
PLACEHOLDER_NAMES = ", ".join(f"`{{{name}}}`" for name in PLACEHOLDERS)
SCOPE = (
    "Admins may make any rule; anyone else only a rule of datasets they each hold Configure dataset on "
    "(403 otherwise, and for a rule of every dataset, which is an admin's alone)."
)
RULES_OF_STORED_THINGS = (
    "`datasetIds` must name datasets you can view (400 `unknown_datasets`), `dataSourceIds` data "
    "sources holding one (400 `unknown_data_sources`); the lead must be an active user (400 "
    "`unknown_lead`) who, for a rule of datasets, holds Manage incidents on each of them (400 "
    "`lead_cannot_manage`); the title template may name only its placeholders, with literal braces "
    "doubled (400 `invalid_title_template`)."
)


class RuleOut(Schema):
    id: int = Field(description="The rule's id.")
    name: str = Field(description="What the settings and the timelines call it.")
    enabled: bool = Field(description="Whether it acts on ingest.")
    position: int = Field(
        description="Its place in the order rules are tried, from 0: the first rule that matches a result acts."
    )
    datasetIds: list[int] = Field(
        description="The datasets it is for, of those you can view; empty for a rule of every dataset."
    )
    dataSourceIds: list[int] = Field(
        description="Only checks of these data sources (of those you can view); empty: any."
    )
    checkAttributes: dict[str, AttributeValue] = Field(
        description="Only checks carrying every one of these attributes with this value."
    )
    outcomes: list[OutcomeName] = Field(
        description="The outcomes that count towards opening: `fail`, or `warn` and `fail`."
    )
    consecutive: int = Field(description="How many results in a row with those outcomes open an incident.")
    severity: SeverityName = Field(description="The severity of the incidents it opens.")
    leadId: int | None = Field(description="Who leads them; null: Quell chooses (docs/automation.md).")
    lead: UserRef | None = Field(description="That user, or null.")
    titleTemplate: str = Field(
        description=f"The title of the incidents it opens; may name {PLACEHOLDER_NAMES}."
    )
    resolveAfterPasses: int | None = Field(
        description="Resolve its incident (reason `recovered`) once every linked check passed this many "
        "times in a row; null: never by itself."
    )
    reopenWithinDays: int | None = Field(
        description="A new failure this many days after Quell resolved the incident reopens it; null: never."
    )
    createdBy: UserRef | None = Field(description="Who made it (null if they were deleted).")
    createdAt: datetime = Field(description="When it was made.")
    updatedAt: datetime = Field(description="When it last changed.")
    openIncidentCount: int = Field(description="Incidents it opened that are open now, of those you can see.")


def _fail_only() -> list[OutcomeName]:
    return ["fail"]


class RuleIn(Body):
    name: str = text(
        description="What the settings and the timelines call it: one line, not blank.",
        max_length=rules.NAME_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
        examples=["Critical tables"],
    )
    enabled: bool = Field(True, description="Whether it acts on ingest (the default is true).")
    datasetIds: DatasetIds = Field(
        default_factory=list,
        description="The datasets it is for; empty or left out: every dataset (admins only). Each must be "
        "one you can view, and, unless you are an admin, one you hold Configure dataset on.",
    )
    dataSourceIds: DataSourceIds = Field(
        default_factory=list, description="Only checks of these data sources; empty or left out: any."
    )
    checkAttributes: dict[str, AttributeValue] = Field(
        default_factory=dict,
        description=f"Only checks carrying every one of these attributes with this value (Soda Core sends "
        f"them): at most {rules.ATTRIBUTES_MAX}, each a name of 1 to {rules.ATTRIBUTE_NAME_MAX} characters "
        f"and text (at most {rules.ATTRIBUTE_VALUE_MAX} characters), a number or a boolean.",
        json_schema_extra=ATTRIBUTES_SCHEMA,
    )
    outcomes: Outcomes = Field(
        default_factory=_fail_only,
        description='The outcomes that count towards opening: `["fail"]` (the default) or `["warn", "fail"]`.',
    )
    consecutive: Consecutive = Field(
        1, description="How many results in a row with those outcomes open an incident (the default is 1)."
    )
    severity: SeverityName = Field(
        "major", description="The severity of the incidents it opens (the default is major)."
    )
    leadId: Id | None = Field(
        None, description="Who leads its incidents; null or left out: Quell chooses (docs/automation.md)."
    )
    titleTemplate: str = text(
        DEFAULT_TITLE_TEMPLATE,
        description=f"The title of its incidents: one line, not blank; may name {PLACEHOLDER_NAMES}.",
        max_length=TITLE_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    resolveAfterPasses: Passes | None = Field(
        None,
        description="Resolve its incident (reason `recovered`) once every linked check passed this many "
        "times in a row; null or left out: never by itself.",
    )
    reopenWithinDays: Days | None = Field(
        None,
        description="A new failure of a check within this many days after Quell resolved its incident "
        "reopens that incident; null or left out: never.",
    )


class RuleUpdateIn(Body):
    name: str | None = text(
        None,
        description="A new name: one line, not blank.",
        max_length=rules.NAME_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    enabled: bool | None = Field(None, description="Turn it on or off.")
    datasetIds: DatasetIds | None = Field(
        None, description="New datasets, replacing its own; empty: every dataset (admins only)."
    )
    dataSourceIds: DataSourceIds | None = Field(
        None, description="New data sources, replacing its own; empty: any."
    )
    checkAttributes: dict[str, AttributeValue] | None = Field(
        None,
        description="New check attributes, replacing its own; `{}`: any check.",
        json_schema_extra={"anyOf": [ATTRIBUTES_SCHEMA | {"type": "object"}, {"type": "null"}]},
    )
    outcomes: Outcomes | None = Field(None, description='New outcomes: `["fail"]` or `["warn", "fail"]`.')
    consecutive: Consecutive | None = Field(None, description="A new number of results in a row.")
    severity: SeverityName | None = Field(None, description="A new severity for the incidents it opens.")
    leadId: Id | None = Field(None, description="A new lead; null: Quell chooses.")
    titleTemplate: str | None = text(
        None,
        description=f"A new title template: one line, not blank; may name {PLACEHOLDER_NAMES}.",
        max_length=TITLE_MAX,
        pattern=NON_BLANK_ONE_LINE_PATTERN,
    )
    resolveAfterPasses: Passes | None = Field(
        None, description="A new number of passes; null: never resolve by itself."
    )
    reopenWithinDays: Days | None = Field(None, description="A new number of days; null: never reopen.")
    position: Position | None = Field(
        None,
        description="Move it to this place in the order, from 0 (first); past the last rule: last. The "
        "rules in between move one place.",
    )


# The fields whose null clears them (a lead, recovery, recurrence); any other null keeps the value.
CLEARED_BY_NULL = {
    "leadId": "lead_id",
    "resolveAfterPasses": "resolve_after_passes",
    "reopenWithinDays": "reopen_within_days",
}


def rule_out(shown: rule_queries.ShownRule) -> dict[str, Any]:
    rule = shown.rule
    return {
        "id": rule.pk,
        "name": rule.name,
        "enabled": rule.enabled,
        "position": shown.position,
        "datasetIds": sorted(dataset.pk for dataset in shown.datasets),
        "dataSourceIds": sorted(source.pk for source in shown.data_sources),
        "checkAttributes": rule.check_attributes,
        "outcomes": rule.outcomes,
        "consecutive": rule.consecutive,
        "severity": rule.severity,
        "leadId": rule.lead_id,
        "lead": user_ref(rule.lead),
        "titleTemplate": rule.title_template,
        "resolveAfterPasses": rule.resolve_after_passes,
        "reopenWithinDays": rule.reopen_within_days,
        "createdBy": user_ref(rule.created_by),
        "createdAt": rule.created_at,
        "updatedAt": rule.updated_at,
        "openIncidentCount": shown.open_incidents,
    }


@router.get(
    "/incidentRules",
    response={200: list[RuleOut], **COMMON_ERRORS},
    summary="List incident rules, in the order they are tried",
    description="Admins see every rule; anyone else the rules of every dataset and the rules of a dataset "
    "they can view, each showing only the datasets and data sources they can view.",
)
def list_rules(request: HttpRequest) -> list[dict[str, Any]]:
    return [rule_out(shown) for shown in rule_queries.list_rules(by=caller(request))]


@router.post(
    "/incidentRules",
    response={201: RuleOut, **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Make an incident rule",
    description=f"A rule opens an incident by itself when a check's results match it on ingest; it is "
    f"tried after every rule there is (PATCH `position` to move it). {SCOPE} {RULES_OF_STORED_THINGS}",
    openapi_extra=request_examples(
        orders=(
            "Critical incidents for the demo's snowflake_prod/orders after two failures in a row, led by "
            "Marco Rossi, resolved after two passes",
            {
                "name": "Orders: two failures in a row",
                "datasetIds": [5],
                "consecutive": 2,
                "severity": "critical",
                "leadId": 2,
                "titleTemplate": "{check} failed twice on {dataset}",
                "resolveAfterPasses": 2,
                "reopenWithinDays": 7,
            },
        ),
        everywhere=(
            "Every failing check of every dataset (admins only), with the defaults",
            {"name": "Every failure"},
        ),
        tier=(
            "Warnings too, for checks with the attribute tier: gold",
            {"name": "Gold checks", "checkAttributes": {"tier": "gold"}, "outcomes": ["warn", "fail"]},
        ),
    ),
)
def create_rule(request: HttpRequest, payload: RuleIn) -> Status[dict[str, Any]]:
    shown = rules.create_rule(
        by=caller(request),
        name=payload.name,
        enabled=payload.enabled,
        dataset_ids=payload.datasetIds,
        data_source_ids=payload.dataSourceIds,
        check_attributes=payload.checkAttributes,
        outcomes=list(payload.outcomes),
        consecutive=payload.consecutive,
        severity=payload.severity,
        lead_id=payload.leadId,
        title_template=payload.titleTemplate,
        resolve_after_passes=payload.resolveAfterPasses,
        reopen_within_days=payload.reopenWithinDays,
    )
    return Status(201, rule_out(shown))


@router.get(
    "/incidentRules/{rule_id}",
    response={200: RuleOut, **COMMON_ERRORS, 404: ErrorOut},
    summary="One incident rule",
    description="Admins see any rule; anyone else a rule of every dataset or of a dataset they can view "
    "(404 otherwise), showing only the datasets and data sources they can view.",
)
def get_rule(request: HttpRequest, rule_id: RuleId) -> dict[str, Any]:
    return rule_out(rule_queries.get_rule(rule_id, by=caller(request)))


@router.patch(
    "/incidentRules/{rule_id}",
    response={200: RuleOut, **WRITE_ERRORS, **UNPROCESSABLE},
    summary="Change or move an incident rule",
    description="Changes the fields given; a field left out, or null, stays as it is, except `leadId`, "
    "`resolveAfterPasses` and `reopenWithinDays`, which null clears. `position` moves it in the order. "
    "Changing a rule needs what making it needs, both for the rule as it is and as it becomes: "
    f"{SCOPE[0].lower()}{SCOPE[1:]} 404 for a rule you cannot see. {RULES_OF_STORED_THINGS}",
    openapi_extra=request_examples(
        first=("Try it first", {"position": 0}),
        off=("Turn it off", {"enabled": False}),
        recovery=(
            "Resolve by itself after three passes; never reopen",
            {"resolveAfterPasses": 3, "reopenWithinDays": None},
        ),
    ),
)
def update_rule(request: HttpRequest, rule_id: RuleId, payload: RuleUpdateIn) -> dict[str, Any]:
    sent = payload.model_fields_set
    changes: dict[str, Any] = {
        "name": payload.name,
        "enabled": payload.enabled,
        "dataset_ids": payload.datasetIds,
        "data_source_ids": payload.dataSourceIds,
        "check_attributes": payload.checkAttributes,
        "outcomes": list(payload.outcomes) if payload.outcomes is not None else None,
        "consecutive": payload.consecutive,
        "severity": payload.severity,
        "title_template": payload.titleTemplate,
        "position": payload.position,
    }
    for field, key in CLEARED_BY_NULL.items():
        if field in sent:
            changes[key] = getattr(payload, field)
    return rule_out(rules.update_rule(rule_id, by=caller(request), **changes))


@router.delete(
    "/incidentRules/{rule_id}",
    response={204: None, **WRITE_ERRORS},
    summary="Delete an incident rule",
    description="The incidents it opened stay, as opened by no rule (their timelines keep its name); the "
    f"rules after it move up one place. Needs what changing it needs: {SCOPE[0].lower()}{SCOPE[1:]} 404 "
    "for a rule you cannot see.",
)
def delete_rule(request: HttpRequest, rule_id: RuleId) -> Status[None]:
    rules.delete_rule(rule_id, by=caller(request))
    return Status(204, None)
