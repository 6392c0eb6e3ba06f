"""Settings, for global admins: the organisation, users, groups, dataset roles, responsibilities,
failed-row samples and check attributes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from quell.accounts import queries as account_queries
from quell.accounts import services as accounts
from quell.accounts.models import DATASET_PERMISSIONS, DatasetRole, Responsibility, User
from quell.catalog import queries as catalog_queries
from quell.catalog import services as catalog
from quell.incidents import queries as incident_queries
from quell.lib.errors import Invalid
from quell.ops import housekeeping
from quell.web.forms import (
    CHECK_ATTRIBUTE_FIELDS,
    FAILED_ROWS_FIELDS,
    RETENTION_FIELDS,
    CheckAttributeForm,
    DatasetRoleForm,
    FailedRowsSettingsForm,
    GlobalRoleForm,
    GroupMembersForm,
    NameForm,
    OrganizationForm,
    RetentionForm,
    SetPasswordForm,
    UserCreateForm,
    as_id,
)
from quell.web.pickers import KEPT_MAX, PICKER_MATCHES, pick, search_term
from quell.web.views.base import apply_error, form_post, page, paginate, signed_in

GROUPS_PER_PAGE = 100
MEMBERS_PER_PAGE = 100
USER_FIELDS = {"email": "email", "password": "password", "globalRole": "global_role", "name": "name"}


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(
        request, template, {"settings_tab": template.split("/")[-1].split(".")[0], **context}, status=status
    )


@page
@require_http_methods(["GET", "POST"])
def organization(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    org = account_queries.get_organization(by=by)
    roles = account_queries.list_dataset_roles(by=by)
    initial = {
        "name": org.name,
        "default_role": org.default_dataset_role_id,
        "fold_results": org.fold_results,
    }
    kept = housekeeping.get_retention(by=by)
    retention_initial = {field: kept[name] for name, field in RETENTION_FIELDS.items()}
    posted = request.POST if request.method == "POST" else None
    is_retention = posted is not None and posted.get("action") == "retention"
    form = OrganizationForm(None if is_retention else posted, roles=roles, initial=initial)
    retention_form = RetentionForm(posted if is_retention else None, initial=retention_initial)
    if is_retention and retention_form.is_valid():
        changes = {name: retention_form.cleaned_data[field] for name, field in RETENTION_FIELDS.items()}
        try:
            housekeeping.update_retention(by=by, changes=changes)
        except Invalid as error:
            apply_error(retention_form, error, RETENTION_FIELDS)
        else:
            messages.success(request, "Saved how long records are kept.")
            return redirect("web:settings")
    if is_retention:
        status = 400 if retention_form.errors else 200
        context = {"form": form, "org": org, "retention_form": retention_form}
        return _render(request, "web/settings/organization.html", context, status)
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["default_role"]
        try:
            accounts.update_organization(
                by=by,
                name=form.cleaned_data["name"],
                default_dataset_role_id=role,
                clear_default_role=role is None,
                fold_results=form.cleaned_data["fold_results"],
            )
        except Invalid as error:
            apply_error(form, error, {"defaultDatasetRoleId": "default_role"})
        else:
            messages.success(request, "Saved the organisation settings.")
            return redirect("web:settings")
    status = 400 if form.errors else 200
    context = {"form": form, "org": org, "retention_form": retention_form}
    return _render(request, "web/settings/organization.html", context, status)


@page
@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    people = account_queries.list_users(by=by)
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = accounts.create_user(
                by=by,
                email=data["email"],
                name=data["name"],
                password=data["password"],
                global_role=data["global_role"],
            )
        except Invalid as error:
            apply_error(form, error, USER_FIELDS)
        else:
            messages.success(request, f"Created {user.email}. Give them their initial password.")
            return redirect("web:settings_users")
    status = 400 if form.errors else 200
    return _render(
        request, "web/settings/users.html", {"users": paginate(request, people, 100), "form": form}, status
    )


@page
@sensitive_post_parameters("new_password")
@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    by = signed_in(request)
    person = account_queries.get_user(user_id, by=by)
    role_form = GlobalRoleForm(initial={"global_role": person.global_role})
    password_form = SetPasswordForm()
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "password":
                password_form = SetPasswordForm(request.POST)
                if password_form.is_valid():
                    new = password_form.cleaned_data["new_password"]
                    try:
                        changed = accounts.set_password(person.pk, new, by=by)
                    except Invalid as refused:
                        apply_error(password_form, refused, {"newPassword": "new_password"})
                    else:
                        if changed.pk == by.pk:
                            # Setting one's own here keeps this session, as the profile's form does.
                            update_session_auth_hash(request, changed)
                            messages.success(request, "You have a new password; your other sessions ended.")
                        else:
                            messages.success(
                                request, f"{changed.email} has a new password; their sessions ended."
                            )
                        return redirect("web:settings_user", user_id=person.pk)
            elif action == "role":
                role_form = GlobalRoleForm(request.POST)
                if role_form.is_valid():
                    accounts.set_global_role(person.pk, role_form.cleaned_data["global_role"], by=by)
                    messages.success(
                        request, f"{person.email} is now a global {role_form.cleaned_data['global_role']}."
                    )
                    return redirect("web:settings_user", user_id=person.pk)
            elif action in ("deactivate", "activate"):
                accounts.set_user_active(person.pk, action == "activate", by=by)
                keys = (
                    "their old API keys stay revoked; they make new ones on their profile page"
                    if action == "activate"
                    else "their API keys are revoked for good"
                )
                messages.success(request, f"{person.email} is {action}d; {keys}.")
                return redirect("web:settings_user", user_id=person.pk)
            else:
                error = "Unknown action."
        except Invalid as refused:
            error = refused.message
    status = 400 if error or role_form.errors or password_form.errors else 200
    context = {"person": person, "role_form": role_form, "password_form": password_form, "error": error}
    return _render(request, "web/settings/user.html", context, status)


@page
@require_http_methods(["GET", "POST"])
def groups(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    form = NameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = accounts.create_group(by=by, name=form.cleaned_data["name"])
        except Invalid as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Created the group {group.name}; now choose its members.")
            return redirect("web:settings_group", group_id=group.pk)
    status = 400 if form.errors else 200
    search = search_term(request, "q")
    rows = account_queries.groups_matching(account_queries.list_groups(by=by), search)
    context = {"groups": paginate(request, rows, GROUPS_PER_PAGE), "search": search, "form": form}
    return _render(request, "web/settings/groups.html", context, status)


def _chosen(values: list[str], limit: int = KEPT_MAX) -> list[int]:
    """The boxes already checked, from a form shown again or a swap (bounded: a URL repeats at will)."""
    return [pk for pk in (as_id(value) for value in values[:limit]) if pk is not None]


def _candidates(group_id: int, by: User, search: str, chosen: list[int]) -> dict[str, Any]:
    """The "Add people" checkboxes: every active non-member up to PLAIN_SELECT_MAX of them, else the
    checked ones and the first PICKER_MATCHES matching the search, in a few bounded queries."""
    people = account_queries.member_candidates(group_id, by=by)
    candidates = pick(
        people, search=search, matches=incident_queries.people_matching(people, search), keep=chosen
    )
    return {"candidates": candidates, "chosen": set(chosen), "shown_max": PICKER_MATCHES}


@page
@require_http_methods(["GET", "POST"])
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    group = account_queries.get_group(group_id, by=by)
    name_form = NameForm(initial={"name": group.name})
    members_form = GroupMembersForm()
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "rename":
                name_form = NameForm(request.POST)
                if name_form.is_valid():
                    accounts.rename_group(group.pk, name_form.cleaned_data["name"], by=by)
                    messages.success(request, "Renamed the group.")
                    return redirect("web:settings_group", group_id=group.pk)
            elif action == "members":
                members_form = GroupMembersForm(request.POST)
                if members_form.is_valid():
                    added, removed = members_form.cleaned_data["add"], members_form.cleaned_data["remove"]
                    accounts.change_group_members(group.pk, add=added, remove=removed, by=by)
                    messages.success(request, "Saved the members.")
                    return redirect("web:settings_group", group_id=group.pk)
            elif action == "delete":
                accounts.delete_group(group.pk, by=by)
                messages.success(request, f"Deleted the group {group.name}.")
                return redirect("web:settings_groups")
            else:
                error = "Unknown action."
        except Invalid as refused:
            if action == "rename":
                apply_error(name_form, refused)
            elif action == "members" and not group.is_everyone:
                apply_error(members_form, refused)
            else:
                error = refused.message
    status = 400 if error or name_form.errors or members_form.errors else 200
    context: dict[str, Any] = {
        "group": group,
        "name_form": name_form,
        "members_form": members_form,
        "error": error,
    }
    if not group.is_everyone:
        # Without scripts the search box submits a GET of this page (the small form `add-search`
        # outside the POST form) with ?add_q=; with htmx it swaps in the checkboxes from
        # group_candidates as one types. Any active non-member is valid either way.
        shown_again = members_form.is_bound
        kept = _chosen(request.POST.getlist("add")) if shown_again else []
        context["members"] = paginate(
            request, account_queries.group_members(group.pk, by=by), MEMBERS_PER_PAGE
        )
        context["removing"] = (
            set(_chosen(request.POST.getlist("remove"), MEMBERS_PER_PAGE)) if shown_again else set()
        )
        context.update(_candidates(group.pk, by, search_term(request, "add_q"), kept))
    return _render(request, "web/settings/group.html", context, status)


@page
@require_GET
def group_candidates(request: HttpRequest, group_id: int) -> HttpResponse:
    """The "Add people" checkboxes narrowed by their search box, for htmx to swap in as one types.

    Admins only, as the page; the boxes already checked (`add`) stay listed and checked.
    """
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    group = account_queries.get_group(group_id, by=by)
    chosen = _chosen(request.GET.getlist("add"))
    context = {"group": group, **_candidates(group.pk, by, search_term(request, "add_q"), chosen)}
    return render(request, "web/settings/_group_candidates.html", context)


def _role_matrix(roles: list[DatasetRole]) -> list[tuple[str, list[bool]]]:
    """One row per permission, one column per role: whether the role grants it."""
    return [(label, [getattr(role, field) for role in roles]) for field, _, label in DATASET_PERMISSIONS]


@page
@require_http_methods(["GET", "POST"])
def roles(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    form = DatasetRoleForm(request.POST or None, initial={"permissions": ["view_dataset"]})
    if request.method == "POST" and form.is_valid():
        try:
            role = accounts.create_dataset_role(
                by=by, name=form.cleaned_data["name"], permissions=set(form.cleaned_data["permissions"])
            )
        except Invalid as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Created the dataset role {role.name}.")
            return redirect("web:settings_roles")
    all_roles = list(account_queries.list_dataset_roles(by=by))
    context = {
        "roles": all_roles,
        "matrix": _role_matrix(all_roles),
        "form": form,
        "default_role_id": account_queries.get_organization(by=by).default_dataset_role_id,
    }
    return _render(request, "web/settings/roles.html", context, 400 if form.errors else 200)


@page
@require_http_methods(["GET", "POST"])
def role_detail(request: HttpRequest, role_id: int) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    role = account_queries.get_dataset_role(role_id, by=by)
    form = DatasetRoleForm(initial={"name": role.name, "permissions": sorted(role.permissions())})
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "save":
                form = DatasetRoleForm(request.POST)
                if form.is_valid():
                    accounts.update_dataset_role(
                        role.pk,
                        by=by,
                        name=form.cleaned_data["name"],
                        permissions=set(form.cleaned_data["permissions"]),
                    )
                    messages.success(request, "Saved the role.")
                    return redirect("web:settings_roles")
            elif action == "delete":
                accounts.delete_dataset_role(role.pk, by=by)
                messages.success(request, f"Deleted the dataset role {role.name}.")
                return redirect("web:settings_roles")
            else:
                error = "Unknown action."
        except Invalid as refused:
            if action == "save":
                apply_error(form, refused)
            else:
                error = refused.message
    status = 400 if error or form.errors else 200
    return _render(request, "web/settings/role.html", {"role": role, "form": form, "error": error}, status)


@page
@require_GET
def datasets(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    rows = catalog_queries.list_datasets(by=by).prefetch_related(
        Prefetch("responsibilities", queryset=Responsibility.objects.select_related("group", "role"))
    )
    datasets_page = paginate(request, rows, 100)
    for dataset in datasets_page:
        held = list(dataset.responsibilities.all())
        dataset.responsibility_count = len(held)
        dataset.everyone_role = next((r.role for r in held if r.group and r.group.is_everyone), None)
    return _render(request, "web/settings/datasets.html", {"datasets": datasets_page})


@page
@require_http_methods(["GET", "POST"])
def failed_rows(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    org = account_queries.get_organization(by=by)
    initial = {"collect": org.collect_failed_rows, "max_bytes": org.failed_rows_max_bytes}
    form = FailedRowsSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            catalog.update_failed_rows_settings(
                by=by, collect=form.cleaned_data["collect"], max_bytes=form.cleaned_data["max_bytes"]
            )
        except Invalid as error:
            apply_error(form, error, FAILED_ROWS_FIELDS)
        else:
            messages.success(request, "Saved the failed-row sample settings.")
            return redirect("web:settings_failed_rows")
    status = 400 if form.errors else 200
    return _render(request, "web/settings/failed_rows.html", {"form": form, "org": org}, status)


@page
@require_http_methods(["GET", "POST"])
def check_attributes(request: HttpRequest) -> HttpResponse:
    by = signed_in(request)
    account_queries.require_settings_access(by=by)
    form = CheckAttributeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            definition = catalog.create_check_attribute_definition(
                by=by,
                name=data["name"],
                attribute_type=data["type"],
                label=data["label"],
                allowed_values=form.values(),
                description=data["description"],
            )
        except Invalid as error:
            apply_error(form, error, CHECK_ATTRIBUTE_FIELDS)
        else:
            messages.success(request, f"Defined the check attribute {definition.name}.")
            return redirect("web:settings_check_attributes")
    context = {
        "definitions": paginate(request, catalog_queries.list_check_attribute_definitions(by=by), 100),
        "form": form,
    }
    return _render(request, "web/settings/check_attributes.html", context, 400 if form.errors else 200)


@page
@form_post("web:settings_check_attributes")
def delete_check_attribute(request: HttpRequest, definition_id: int) -> HttpResponse:
    by = signed_in(request)
    catalog.delete_check_attribute_definition(definition_id, by=by)
    messages.success(request, "Removed the check attribute.")
    return redirect("web:settings_check_attributes")
