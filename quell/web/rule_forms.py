"""The form of the incident rules' settings page: it checks the shape of what a browser sends; the
rules themselves live in quell.incidents.rules, whose refusals the views put back on these fields."""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from quell.incidents import rules
from quell.incidents.models import DEFAULT_TITLE_TEMPLATE, Severity
from quell.incidents.rule_titles import PLACEHOLDERS, TITLE_MAX
from quell.lib.errors import Invalid
from quell.lib.jsontext import parse_json
from quell.web.forms import QueryChoiceField, QueryMultipleChoiceField

OUTCOME_CHOICES = [("warn", "Warn"), ("fail", "Fail")]

# The service's field names (the API's) to this form's, so a refusal shows next to its field.
FIELDS = {
    "name": "name",
    "enabled": "enabled",
    "datasetIds": "datasets",
    "dataSourceIds": "data_sources",
    "checkAttributes": "check_attributes",
    "outcomes": "outcomes",
    "consecutive": "consecutive",
    "severity": "severity",
    "leadId": "lead",
    "titleTemplate": "title_template",
    "resolveAfterPasses": "resolve_after_passes",
    "reopenWithinDays": "reopen_within_days",
}

ATTRIBUTES_HELP = (
    "One “name: value” per line; a check matches when it carries every one. true, false and numbers "
    'match those values; put text that looks like one in quotes ("42").'
)


def attributes_text(attributes: dict[str, Any]) -> str:
    """A rule's check attributes as the form's lines, read back by parse_attributes as they were."""
    return "\n".join(f"{name}: {_value_text(value)}" for name, value in attributes.items())


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if _scalar(text) is not None or text != text.strip() else text


def _scalar(text: str) -> bool | int | float | None:
    """The boolean or number a value's text spells, or None for plain text."""
    if text in ("true", "false"):
        return text == "true"
    try:
        number = parse_json(text)
    except Invalid:
        return None
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


def parse_attributes(text: str) -> dict[str, Any]:
    """The lines of the check attributes field: `name: value`, true/false and numbers as such, text
    in double quotes as that text."""
    attributes: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not name:
            raise ValidationError(f"Line {number}: write each attribute as name: value.")
        if name in attributes:
            raise ValidationError(f"Line {number}: {name} is named twice.")
        if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
            try:
                attributes[name] = str(parse_json(value))
            except Invalid:
                attributes[name] = value[1:-1]
            continue
        scalar = _scalar(value)
        attributes[name] = value if scalar is None else scalar
    return attributes


class RuleForm(forms.Form):
    name = forms.CharField(max_length=rules.NAME_MAX)
    enabled = forms.BooleanField(
        label="On", required=False, initial=True, help_text="Off, the rule is kept but does nothing."
    )
    datasets = QueryMultipleChoiceField(
        required=False,
        help_text="Only results of these datasets. None chosen: every dataset (admins only).",
    )
    data_sources = QueryMultipleChoiceField(
        label="Data sources",
        required=False,
        help_text="Only results of these data sources. None chosen: any.",
    )
    check_attributes = forms.CharField(
        label="Check attributes",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "tier: gold"}),
        help_text=ATTRIBUTES_HELP,
    )
    outcomes = forms.MultipleChoiceField(
        label="Outcomes",
        choices=OUTCOME_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=["fail"],
        help_text="The results that count towards opening an incident.",
    )
    consecutive = forms.IntegerField(
        label="In a row",
        min_value=1,
        max_value=rules.CONSECUTIVE_MAX,
        initial=1,
        help_text="How many such results in a row open an incident.",
    )
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.MAJOR)
    lead = QueryChoiceField(
        required=False,
        empty_value=None,
        help_text="For a rule of datasets, someone with Manage incidents on each of them. None chosen: "
        "Quell chooses someone who manages the dataset's incidents.",
    )
    title_template = forms.CharField(
        label="Title",
        max_length=TITLE_MAX,
        initial=DEFAULT_TITLE_TEMPLATE,
        help_text="May name " + ", ".join("{" + name + "}" for name in PLACEHOLDERS) + ".",
    )
    resolve_after_passes = forms.IntegerField(
        label="Resolve after passes",
        required=False,
        min_value=1,
        max_value=rules.PASSES_MAX,
        help_text="Resolve the incident (as recovered) once each of its checks passed this many times "
        "in a row. Empty: never by itself.",
    )
    reopen_within_days = forms.IntegerField(
        label="Reopen within days",
        required=False,
        min_value=1,
        max_value=rules.REOPEN_DAYS_MAX,
        help_text="A new failure this many days after Quell resolved the incident reopens it. Empty: never.",
    )

    def clean_check_attributes(self) -> dict[str, Any]:
        return parse_attributes(self.cleaned_data.get("check_attributes") or "")

    def changes(self) -> dict[str, Any]:
        """The cleaned data as quell.incidents.rules takes it."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "enabled": data["enabled"],
            "dataset_ids": list(data["datasets"]),
            "data_source_ids": list(data["data_sources"]),
            "check_attributes": data["check_attributes"],
            "outcomes": list(data["outcomes"]),
            "consecutive": data["consecutive"],
            "severity": data["severity"],
            "lead_id": data["lead"],
            "title_template": data["title_template"],
            "resolve_after_passes": data["resolve_after_passes"],
            "reopen_within_days": data["reopen_within_days"],
        }
