"""The settings page of incident rules: the rules in the order they are tried, a form to make or
change one, moving one up or down, deleting one (after a confirmation).

For admins, and for people who configure some dataset: they change the rules of the datasets they
configure and read the others (quell.incidents.rule_queries decides which is which).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from quell.accounts import queries as account_queries
from quell.accounts.models import User
from quell.incidents import queries as incident_queries
from quell.incidents import rule_queries, rules
from quell.lib.errors import Forbidden, Invalid
from quell.web.forms import QueryChoiceField, QueryMultipleChoiceField, as_id
from quell.web.pickers import KEPT_MAX, Picker, pick, search_term
from quell.web.rule_forms import FIELDS, RuleForm, attributes_text
from quell.web.views.base import apply_error, form_post, page, signed_in


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, f"web/settings/{template}", {"settings_tab": "rules", **context}, status=status)


@page
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    rule_queries.require_rule_maker(by)
    shown = rule_queries.list_rules(by=by)
    rows = [
        {
            "shown": rule,
            # Moving swaps places with the neighbour the reader sees (rules hidden from them keep theirs).
            "up": index > 0 and rule.changeable,
            "down": index < len(shown) - 1 and rule.changeable,
        }
        for index, rule in enumerate(shown)
    ]
    return _render(request, "rules.html", {"rows": rows, "is_admin": by.is_admin})


def _chosen_ids(values: list[str], limit: int) -> list[int]:
    return [pk for pk in (as_id(value) for value in values[:limit]) if pk is not None]


def _form(
    request: HttpRequest, by: User, shown: rule_queries.ShownRule | None = None
) -> tuple[RuleForm, Picker[Any], Picker[Any]]:
    """The form, bound to a POST, or filled from `shown` (or the defaults); its dataset and lead
    <select>s list what is chosen and, when there are too many to list, the first matches of their
    search boxes (any configurable dataset, and any active person, is still valid)."""
    data = request.POST if request.method == "POST" else None
    initial: dict[str, Any] = {}
    if shown is not None:
        rule = shown.rule
        initial = {
            "name": rule.name,
            "enabled": rule.enabled,
            "datasets": [d.pk for d in shown.datasets],
            "data_sources": [s.pk for s in shown.data_sources],
            "check_attributes": attributes_text(rule.check_attributes),
            "outcomes": rule.outcomes,
            "consecutive": rule.consecutive,
            "severity": rule.severity,
            "lead": rule.lead_id,
            "title_template": rule.title_template,
            "resolve_after_passes": rule.resolve_after_passes,
            "reopen_within_days": rule.reopen_within_days,
        }
    # A search box's swap (a GET naming what is chosen so far) shows those choices still chosen.
    if data is None and "datasets" in request.GET:
        initial["datasets"] = _chosen_ids(request.GET.getlist("datasets"), KEPT_MAX)
    if data is None and "lead" in request.GET:
        initial["lead"] = as_id(request.GET.get("lead", ""))
    form = RuleForm(data, initial=initial)

    datasets = rule_queries.configurable_datasets(by=by)
    kept = (
        _chosen_ids(data.getlist("datasets"), KEPT_MAX) if data is not None else initial.get("datasets", [])
    )
    search = search_term(request, "datasets_q")
    matches = rule_queries.datasets_matching(datasets, search) if search else None
    dataset_picker = pick(datasets, search=search, matches=matches, keep=kept)
    dataset_field = form.fields["datasets"]
    assert isinstance(dataset_field, QueryMultipleChoiceField)
    dataset_field.queryset = datasets
    dataset_field.choices = [(d.pk, str(d)) for d in dataset_picker.options]

    sources = rule_queries.visible_data_sources(by=by)
    source_field = form.fields["data_sources"]
    assert isinstance(source_field, QueryMultipleChoiceField)
    source_field.queryset = sources
    source_field.choices = [(source.pk, source.name) for source in sources]

    people = account_queries.list_people(by=by).filter(is_active=True)
    chosen_lead = as_id(data.get("lead", "")) if data is not None else initial.get("lead")
    lead_search = search_term(request, "lead_q")
    lead_matches = incident_queries.people_matching(people, lead_search) if lead_search else None
    lead_picker = pick(
        people, search=lead_search, matches=lead_matches, keep=[chosen_lead] if chosen_lead else []
    )
    lead_field = form.fields["lead"]
    assert isinstance(lead_field, QueryChoiceField)
    lead_field.queryset = people
    lead_field.choices = [("", "Quell chooses"), *((u.pk, u.display_name) for u in lead_picker.options)]
    return form, dataset_picker, lead_picker


def _hidden_sources(shown: rule_queries.ShownRule) -> list[int]:
    """The rule's data sources the reader cannot see, kept when they save it (the form cannot show them)."""
    seen = {source.pk for source in shown.data_sources}
    return [source.pk for source in shown.rule.data_sources.all() if source.pk not in seen]


def _form_page(
    request: HttpRequest,
    form: RuleForm,
    dataset_picker: Picker[Any],
    lead_picker: Picker[Any],
    shown: rule_queries.ShownRule | None,
    status: int,
) -> HttpResponse:
    context = {
        "form": form,
        "shown": shown,
        "dataset_picker": dataset_picker,
        "lead_picker": lead_picker,
        "is_admin": signed_in(request).is_admin,
    }
    return _render(request, "rule_form.html", context, status)


@page
@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    rule_queries.require_rule_maker(by)
    form, dataset_picker, lead_picker = _form(request, by)
    if request.method == "POST" and form.is_valid():
        try:
            shown = rules.create_rule(by=by, **form.changes())
        except Forbidden as refused:
            form.add_error("datasets", refused.message)
        except Invalid as error:
            apply_error(form, error, FIELDS)
        else:
            messages.success(request, f"Made the rule {shown.rule.name}; it is tried after the others.")
            return redirect("web:settings_rules")
    status = 400 if form.errors else 200
    return _form_page(request, form, dataset_picker, lead_picker, None, status)


@page
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    by = signed_in(request)
    rule_queries.require_rule_maker(by)
    shown = rule_queries.get_rule(rule_id, by=by)
    if not shown.changeable:
        rule_queries.require_changeable(shown.rule, by, action="change this incident rule")
    form, dataset_picker, lead_picker = _form(request, by, shown)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        changes["data_source_ids"] = [*changes["data_source_ids"], *_hidden_sources(shown)]
        try:
            saved = rules.update_rule(shown.rule.pk, by=by, **changes)
        except Forbidden as refused:
            form.add_error("datasets", refused.message)
        except Invalid as error:
            apply_error(form, error, FIELDS)
        else:
            messages.success(request, f"Saved the rule {saved.rule.name}.")
            return redirect("web:settings_rules")
    status = 400 if form.errors else 200
    return _form_page(request, form, dataset_picker, lead_picker, shown, status)


@page
@form_post("web:settings_rules")
def rule_move(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Move a rule one place up or down among the rules the caller sees: to its neighbour's place."""
    by = signed_in(request)
    shown = rule_queries.list_rules(by=by)
    index = next((n for n, rule in enumerate(shown) if rule.rule.pk == rule_id), None)
    if index is None:
        rule_queries.get_rule(rule_id, by=by)  # NotFound, as for any rule the caller cannot see
        raise Invalid("That rule cannot be moved.")
    step = -1 if request.POST.get("direction") == "up" else 1
    if 0 <= index + step < len(shown):
        rules.move_rule(rule_id, shown[index + step].position, by=by)
    return redirect("web:settings_rules")


@page
@require_http_methods(["GET", "POST"])
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    """A page asking to confirm, then the deletion."""
    by = signed_in(request)
    shown = rule_queries.get_rule(rule_id, by=by)
    rule_queries.require_changeable(shown.rule, by, action="delete this incident rule")
    if request.method == "POST":
        rules.delete_rule(shown.rule.pk, by=by)
        messages.success(request, f"Deleted the rule {shown.rule.name}.")
        return redirect("web:settings_rules")
    return _render(request, "rule_delete.html", {"shown": shown})
