"""Forms of the integrations settings pages; the rules themselves live in services.py."""

from __future__ import annotations

from typing import Any

from django import forms

from quell.catalog.models import Dataset
from quell.integrations.models import SUBSCRIBABLE_EVENTS, Kind

EVENT_CHOICES = [(name.value, name.label) for name in SUBSCRIBABLE_EVENTS]
SEVERITY_CHOICES = [
    ("", "Any severity"),
    ("minor", "Minor or worse"),
    ("major", "Major or worse"),
    ("critical", "Critical only"),
]
OUTCOME_CHOICES = [("warn", "Warn and fail"), ("fail", "Fail only")]

# Service field names (the API's) to form field names, so a refusal shows next to its field.
FIELDS = {
    "name": "name",
    "kind": "kind",
    "url": "url",
    "events": "events",
    "headers": "headers",
    "datasetIds": "datasets",
    "minSeverity": "min_severity",
    "minOutcome": "min_outcome",
}


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` lines into a dict; a line without a colon is an error."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise forms.ValidationError(f"Line {number}: write each header as Name: value.")
        headers[name.strip()] = value.strip()
    return headers


class IntegrationForm(forms.Form):
    name = forms.CharField(max_length=200)
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Slack: the incoming-webhook URL. Teams: the Workflows URL of “Post to a channel when a webhook request is received”.",
    )
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=["incidentCreated", "incidentUpdated"],
    )
    datasets = forms.MultipleChoiceField(
        required=False, help_text="Only events about these datasets. None chosen: every dataset."
    )
    min_severity = forms.ChoiceField(label="Incidents", choices=SEVERITY_CHOICES, required=False)
    min_outcome = forms.ChoiceField(label="Check results", choices=OUTCOME_CHOICES, initial="warn")
    headers = forms.CharField(
        label="Custom headers",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "X-Automation-Webhook-Token: ..."}),
        required=False,
        help_text="Webhooks only. One “Name: value” per line; values are not shown again.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        datasets = self.fields["datasets"]
        assert isinstance(datasets, forms.MultipleChoiceField)
        datasets.choices = [
            (str(d.pk), f"{d.data_source.name}/{d.name}")
            for d in Dataset.objects.select_related("data_source").order_by("data_source__name", "name")
        ]
        if editing:
            self.fields["url"].required = False
            self.fields[
                "url"
            ].help_text = "Leave empty to keep the current URL (not shown: it may hold a secret)."
            self.fields[
                "headers"
            ].help_text = "Leave empty to keep the current headers; write new lines to replace them all."
            self.fields["clear_headers"] = forms.BooleanField(
                label="Remove every custom header", required=False
            )

    def clean_headers(self) -> dict[str, str]:
        return parse_headers(self.cleaned_data.get("headers") or "")


class CreateIntegrationForm(IntegrationForm):
    kind = forms.ChoiceField(choices=Kind.choices)
    field_order = ["kind", "name", "url", "events", "datasets", "min_severity", "min_outcome", "headers"]


DELIVERY_STATUS_CHOICES = [
    ("", "All"),
    ("pending", "Pending"),
    ("delivering", "Delivering"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
]
