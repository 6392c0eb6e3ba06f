"""Forms: they check the shape of what a browser sends (types, choices, lengths, NUL characters);
the rules themselves live in the services, whose refusals the views put back on these forms."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.utils import flatatt
from django.http import QueryDict
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from quell.accounts.models import DATASET_PERMISSIONS, GlobalRole, User
from quell.catalog.models import AttributeType, Dataset
from quell.incidents.models import PERSON_REASONS, ResolutionReason, Severity, Status
from quell.incidents.mute_services import REASON_MAX as MUTE_REASON_MAX
from quell.incidents.paging import SORTS
from quell.incidents.services import DESCRIPTION_MAX, NOTES_REQUIRED, TITLE_MAX
from quell.lib.zones import zone_names

OPEN = "open"
STATUS_FILTER_CHOICES = [(OPEN, "Open (not resolved)"), *Status.choices]
SORT_CHOICES = [("created", "Newest first"), ("updated", "Last updated"), ("severity", "Severity")]
assert {key for key, _ in SORT_CHOICES} == set(SORTS)


class IdListField(forms.Field):
    """Several integer ids from repeated inputs (checkboxes with one name)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        if not isinstance(value, list | tuple):
            value = [value]
        try:
            return [int(item) for item in value]
        except (TypeError, ValueError):
            raise ValidationError("Choose from the list.") from None


def as_id(value: Any) -> int | None:
    """A row id from a browser's string, or None: digits only, and few enough for any database."""
    text = str(value)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


class QueryChoiceField(forms.TypedChoiceField):
    """One id out of a queryset too long to list: the <select> offers a few, any row of it is valid.

    Validity is asked of the database (one `.filter(pk=...)`), so it never depends on which options
    were rendered. `also_valid` ids pass too (an incident's current lead who has lost access since).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, coerce=int, **kwargs)
        self.queryset: QuerySet[Any] | None = None
        self.also_valid: set[int] = set()

    def valid_value(self, value: Any) -> bool:
        pk = as_id(value)
        if pk is None:
            return False
        if pk in self.also_valid:
            return True
        return self.queryset is not None and self.queryset.filter(pk=pk).exists()


class QueryMultipleChoiceField(forms.TypedMultipleChoiceField):
    """Several ids out of a queryset too long to list, checked in one query whatever was rendered."""

    MAX_CHOSEN = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, coerce=int, **kwargs)
        self.queryset: QuerySet[Any] | None = None

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")
        if len(value) > self.MAX_CHOSEN:
            raise ValidationError(f"Choose at most {self.MAX_CHOSEN}.", code="too_many")
        ids = [as_id(item) for item in value]
        found: set[int] = set()
        if ids and None not in ids and self.queryset is not None:
            found = set(self.queryset.filter(pk__in=ids).values_list("pk", flat=True))
        for item, pk in zip(value, ids, strict=True):
            if pk not in found:
                raise self._invalid(item)

    def _invalid(self, item: Any) -> ValidationError:
        return ValidationError(
            self.error_messages["invalid_choice"], code="invalid_choice", params={"value": item}
        )


class LoginForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput, max_length=4096)


def _people_choices(people: Any) -> list[tuple[int, str]]:
    return [(person.pk, person.display_name) for person in people]


LEAD_REFUSED = "Choose someone with Manage incidents on one of this incident's datasets."
# Said before one chooses: the list holds only those people (incidents.lead_candidates).
LEAD_HELP = "People with Manage incidents on one of its datasets, who can change it."


def _lead_choices(form: forms.Form, leads: QuerySet[User], options: Any) -> None:
    field = form.fields["lead"]
    field.queryset = leads  # type: ignore[attr-defined]
    field.choices = _people_choices(options)  # type: ignore[attr-defined]


def _without_blanks(data: Any) -> Any:
    if data is None:
        return None
    kept = QueryDict(mutable=True)
    for key in data:
        values = [value for value in data.getlist(key) if value != ""]
        if values:
            kept.setlist(key, values)
    return kept


class IncidentFilterForm(forms.Form):
    """The filters of a list of incidents; they live in the URL so a view can be shared."""

    q = forms.CharField(label="Title", required=False, max_length=200)
    status = forms.MultipleChoiceField(label="Status", required=False, choices=STATUS_FILTER_CHOICES)
    severity = forms.MultipleChoiceField(label="Severity", required=False, choices=Severity.choices)
    reason = forms.MultipleChoiceField(label="Reason", required=False, choices=ResolutionReason.choices)
    lead = QueryMultipleChoiceField(label="Lead", required=False)
    reporter = QueryMultipleChoiceField(label="Reporter", required=False)
    dataset = QueryMultipleChoiceField(label="Dataset", required=False)
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORT_CHOICES)

    def __init__(
        self,
        data: Any = None,
        *,
        people: QuerySet[User],
        datasets: QuerySet[Dataset] | None = None,
        **kwargs: Any,
    ) -> None:
        """`people` and `datasets` are every valid choice; the template renders the options itself
        (from pickers), so neither is ever listed whole."""
        # A select left on "Any" submits `status=`; that means no filter, not a wrong value.
        super().__init__(_without_blanks(data), **kwargs)
        self.fields["lead"].queryset = people  # type: ignore[attr-defined]
        self.fields["reporter"].queryset = people  # type: ignore[attr-defined]
        if datasets is None:
            del self.fields["dataset"]
        else:
            self.fields["dataset"].queryset = datasets  # type: ignore[attr-defined]

    def value(self, name: str) -> Any:
        """The valid value of a filter, or its empty value when it was missing or wrong."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        empty: Any = "" if name in ("q", "sort") else []
        return self.cleaned_data.get(name) or empty


class IncidentCreateForm(forms.Form):
    title = forms.CharField(label="Name", max_length=TITLE_MAX)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    severity = forms.ChoiceField(label="Severity", choices=Severity.choices, initial=Severity.MAJOR)
    lead = QueryChoiceField(
        label="Lead", help_text=LEAD_HELP, error_messages={"invalid_choice": LEAD_REFUSED}
    )
    results = forms.TypedMultipleChoiceField(
        label="Check results",
        coerce=int,
        error_messages={"required": "Select one or more warn or fail results."},
    )
    # Shown once the service refused a duplicate (services.DuplicateIncident): ticked, it confirms.
    allow_duplicate = forms.BooleanField(label="Open a separate incident anyway", required=False)

    def __init__(
        self, *args: Any, leads: QuerySet[User], lead_options: Any, results: Any, **kwargs: Any
    ) -> None:
        """`leads` are every valid lead; `lead_options` the few the <select> offers."""
        super().__init__(*args, **kwargs)
        _lead_choices(self, leads, lead_options)
        self.fields["results"].choices = [(r.pk, str(r.pk)) for r in results]  # type: ignore[attr-defined]

    def clean_results_only(self) -> list[int] | None:
        """The chosen results, or None with their error: "Add to #N" puts them in an incident that
        exists, so the new incident's fields are neither needed nor marked wrong when left empty."""
        self.full_clean()
        for name in [name for name in self.errors if name != "results"]:
            del self.errors[name]
        return None if "results" in self.errors else list(self.cleaned_data["results"])


class IncidentEditForm(forms.Form):
    title = forms.CharField(label="Title", max_length=TITLE_MAX)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    severity = forms.ChoiceField(label="Severity", choices=Severity.choices)
    status = forms.ChoiceField(label="Status", choices=Status.choices)
    lead = QueryChoiceField(
        label="Lead", help_text=LEAD_HELP, error_messages={"invalid_choice": LEAD_REFUSED}
    )
    resolution_notes = forms.CharField(
        label="Resolution note",
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to resolve: say what was done.",
    )
    # No default: whoever resolves says why (the API, for Soda's clients, records `fixed`).
    resolution_reason = forms.ChoiceField(
        label="Resolution reason",
        required=False,
        choices=[("", "Choose a reason"), *((reason.value, reason.label) for reason in PERSON_REASONS)],
        help_text="Required to resolve: why it is resolved.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(
        self, *args: Any, leads: QuerySet[User], lead_options: Any, current_lead: int, **kwargs: Any
    ) -> None:
        """`leads` are every valid new lead; `lead_options` the few the <select> offers. The current
        lead stays valid even if they lost access since, so the form still saves; so does the current
        reason, `recovered` included, which only Quell's rules set."""
        super().__init__(*args, **kwargs)
        _lead_choices(self, leads, lead_options)
        self.fields["lead"].also_valid = {current_lead}  # type: ignore[attr-defined]
        if self.initial.get("resolution_reason") == ResolutionReason.RECOVERED:
            recovered = ResolutionReason.RECOVERED
            field = self.fields["resolution_reason"]
            field.choices = [*field.choices, (recovered.value, recovered.label)]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        """Resolving needs a reason here: a select with no default, so none is recorded by accident.

        Checked before the service sees the change, so the note's rule (the service's) is said here
        too, when the note is missing as well: one answer names both fields.
        """
        data = super().clean() or {}
        resolving = data.get("status") == Status.RESOLVED and self.initial.get("status") != Status.RESOLVED
        if resolving and not data.get("resolution_reason"):
            self.add_error("resolution_reason", "Choose why it is resolved.")
            if "resolution_notes" in data and not data["resolution_notes"].strip():
                self.add_error("resolution_notes", NOTES_REQUIRED)
        return data


# Service field names (the API's) to the form fields that show their errors.
INCIDENT_FIELDS = {
    "title": "title",
    "description": "description",
    "severity": "severity",
    "status": "status",
    "leadId": "lead",
    "resolutionNotes": "resolution_notes",
    "resolutionReason": "resolution_reason",
    "checkResultIds": "results",
}


class CommentForm(forms.Form):
    text = forms.CharField(
        label="Comment", max_length=DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )


class AttachResultsForm(forms.Form):
    results = IdListField(label="Check results", error_messages={"required": "Select one or more results."})


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", required=False, max_length=200, help_text="What the key is for.")


@functools.cache
def _zone_options() -> SafeString:
    return format_html_join("", '<option value="{}">{}</option>', ((name, name) for name in zone_names()))


class ZoneSelect(forms.Widget):
    """A <select> of every zone (about 600), first "" for the browser's zone, labelled `first`.

    Written here in one piece: Django's Select renders a template per option, 28 ms for this one.
    """

    first = "Your browser's zone"

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        final = self.build_attrs(self.attrs, attrs)
        final.pop("maxlength", None)  # the CharField's, which a <select> has no use for
        chosen = value if isinstance(value, str) and value else ""
        options = str(_zone_options())
        if chosen:
            option = str(format_html('<option value="{}">', chosen))
            options = options.replace(option, option[:-1] + " selected>", 1)
        return format_html(
            '<select name="{}"{}><option value=""{}>{}</option>{}</select>',
            name,
            flatatt(final),
            "" if chosen else mark_safe(" selected"),
            self.first,
            mark_safe(options),  # noqa: S308 (escaped by format_html_join)
        )


class TimeZoneForm(forms.Form):
    """The zone a person reads times in. Any text passes here: the service knows the zones."""

    time_zone = forms.CharField(
        label="Show times in",
        required=False,
        max_length=64,
        widget=ZoneSelect,
        help_text="Every time on Quell's pages is shown in this zone; the API answers in UTC.",
    )

    def __init__(self, *args: Any, browser_zone: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = self.fields["time_zone"].widget
        assert isinstance(widget, ZoneSelect)
        widget.first = f"Your browser's zone ({browser_zone or 'not known yet, so UTC'})"


class UserCreateForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    name = forms.CharField(label="Name", required=False, max_length=200)
    password = forms.CharField(
        label="Initial password",
        strip=False,
        widget=forms.PasswordInput,
        max_length=4096,
        help_text="Share it with them; at least 8 characters.",
    )
    global_role = forms.ChoiceField(label="Global role", choices=GlobalRole.choices, initial=GlobalRole.USER)


def _password_field(label: str, help_text: str = "", *, current: bool = False) -> forms.CharField:
    # The autocomplete hint lets password managers fill the current one and offer to save the new one.
    hint = "current-password" if current else "new-password"
    return forms.CharField(
        label=label,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": hint}),
        max_length=4096,
        help_text=help_text,
    )


class ChangePasswordForm(forms.Form):
    current_password = _password_field("Current password", current=True)
    new_password = _password_field("New password", "At least 8 characters, not a common password.")
    new_password_again = _password_field("New password again")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        new, again = cleaned.get("new_password"), cleaned.get("new_password_again")
        if new is not None and again is not None and new != again:
            self.add_error("new_password_again", "The two new passwords differ; type the same one twice.")
        return cleaned


class SetPasswordForm(forms.Form):
    new_password = _password_field(
        "New password", "Share it with them; at least 8 characters, not a common password."
    )


class GlobalRoleForm(forms.Form):
    global_role = forms.ChoiceField(label="Global role", choices=GlobalRole.choices)


class NameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)


class PeopleIdsField(IdListField):
    """User ids from checkboxes; any user may be named, whatever was rendered: the service checks them."""

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        ids = [as_id(item) for item in (value if isinstance(value, list | tuple) else [value])]
        if None in ids:
            raise ValidationError("Choose people from the list.", code="invalid")
        return [pk for pk in ids if pk is not None]


class GroupMembersForm(forms.Form):
    """A group page's changes: people to add (the "Add people" checkboxes), members to remove."""

    add = PeopleIdsField(label="Add people", required=False)
    remove = PeopleIdsField(label="Remove", required=False)


class DatasetRoleForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    permissions = forms.MultipleChoiceField(
        label="Permissions",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(field, label) for field, _, label in DATASET_PERMISSIONS],
        help_text="View dataset is always included: every other permission presupposes it.",
    )


class OrganizationForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=200)
    default_role = forms.TypedChoiceField(
        label="Everyone's role on new datasets",
        coerce=int,
        empty_value=None,
        required=False,
        help_text="None makes new datasets private to the people named on them.",
    )
    fold_results = forms.BooleanField(
        label="Attach new warn and fail results of a check to its open incident automatically",
        required=False,
        help_text="On ingest, Quell adds each to the newest open incident its check is in, and says so "
        "on the incident's timeline.",
    )

    def __init__(self, *args: Any, roles: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["default_role"].choices = [  # type: ignore[attr-defined]
            ("", "None (new datasets are private)"),
            *[(role.pk, role.name) for role in roles],
        ]


class FailedRowsSettingsForm(forms.Form):
    collect = forms.BooleanField(
        label="Collect failed-row samples",
        required=False,
        help_text="When off, Soda Core is told not to send any (disableCollectingWarehouseData).",
    )
    max_bytes = forms.IntegerField(
        label="Largest sample kept, in bytes",
        help_text="A larger sample keeps only its first whole rows. 1048576 is 1 MiB.",
    )


# Service field names (the API's) to the form fields that show their errors.
FAILED_ROWS_FIELDS = {"collectFailedRows": "collect", "failedRowsMaxBytes": "max_bytes"}


def _days(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        widget=forms.NumberInput(attrs={"placeholder": "forever"}),
        help_text=f"{help_text} Leave blank (or 0) to keep forever.",
    )


class RetentionForm(forms.Form):
    """Days to keep each kind of record; the limits are the service's (quell.ops.housekeeping)."""

    check_results_days = _days(
        "Check results, days",
        "With their measurements and samples. Results in an incident and each check's latest stay.",
    )
    scans_days = _days(
        "Scans, days", "Older scans lose their logs, and go once none of their results is left."
    )
    failed_rows_days = _days(
        "Failed-row samples, days", "Copies of warehouse rows; kept while their incident is open."
    )
    delivery_log_days = _days(
        "Delivery log, days", "Finished deliveries to webhooks, Slack and Teams, with their attempts."
    )


# The API's names of the retention settings to the fields of RetentionForm.
RETENTION_FIELDS = {
    "checkResultsDays": "check_results_days",
    "scansDays": "scans_days",
    "failedRowsSamplesDays": "failed_rows_days",
    "deliveryLogDays": "delivery_log_days",
}


class CheckAttributeForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="As checks write it under attributes:, e.g. pipeline_stage."
    )
    label = forms.CharField(label="Label", required=False, max_length=200)
    type = forms.ChoiceField(label="Type", choices=AttributeType.choices)
    allowed_values = forms.CharField(
        label="Allowed values",
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For single and multiple choice: one value a line.",
    )
    description = forms.CharField(
        label="Description", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def values(self) -> list[str]:
        """The allowed values, one a line; blank lines are layout, not values."""
        text: str = self.cleaned_data.get("allowed_values") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


CHECK_ATTRIBUTE_FIELDS = {"name": "name", "type": "type", "allowedValues": "allowed_values"}


# The Mute form's quick choices, and how long each mutes for.
MUTE_LENGTHS = {"day": timedelta(days=1), "week": timedelta(days=7)}
CUSTOM_MUTE = "custom"


class MuteForm(forms.Form):
    """Mute a check or a dataset: for a day, a week, or until a time the person chooses (in their
    zone, as the page shows times); the service refuses a time in the past or over a year ahead."""

    length = forms.ChoiceField(
        label="For",
        choices=[("day", "1 day"), ("week", "1 week"), (CUSTOM_MUTE, "Until a time you choose")],
        initial="day",
        widget=forms.RadioSelect,
    )
    until = forms.DateTimeField(
        label="Until",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In the time zone this page shows times in; for “Until a time you choose”.",
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=MUTE_REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recommended: the people who see the mute will want to know why.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("length") == CUSTOM_MUTE and data.get("until") is None and "until" not in self.errors:
            self.add_error("until", "Choose when the mute ends.")
        return data

    def until_from(self, now: datetime) -> datetime:
        """When the mute the valid form asks for ends, for a form sent at `now`."""
        length = self.cleaned_data["length"]
        if length in MUTE_LENGTHS:
            return now + MUTE_LENGTHS[length]
        until: datetime = self.cleaned_data["until"]
        return until


MUTE_FIELDS = {"until": "until", "reason": "reason"}
