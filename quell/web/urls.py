from __future__ import annotations

from django.urls import path

from quell.web.views import assets, auth, checks, datasets, home, incidents, profile, scans, settings

app_name = "web"

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("favicon.ico", assets.favicon, name="favicon"),
    path("datasets/", datasets.datasets_page, name="datasets"),
    path("datasets/<int:dataset_id>", datasets.dataset_checks, name="dataset"),
    path("datasets/<int:dataset_id>/incidents", datasets.dataset_incidents, name="dataset_incidents"),
    path("datasets/<int:dataset_id>/scans", datasets.dataset_scans, name="dataset_scans"),
    path(
        "datasets/<int:dataset_id>/responsibilities",
        datasets.dataset_responsibilities,
        name="dataset_responsibilities",
    ),
    path(
        "datasets/<int:dataset_id>/responsibilities/principals",
        datasets.responsibility_principals,
        name="responsibility_principals",
    ),
    path("data-sources/<int:data_source_id>", scans.data_source_datasets, name="data_source"),
    path("data-sources/<int:data_source_id>/scans", scans.data_source_scans, name="data_source_scans"),
    path("scans/<int:scan_id>", scans.scan_page, name="scan"),
    path("checks/", checks.checks_page, name="checks"),
    path("checks/<int:check_id>", checks.check_page, name="check"),
    path("results/<int:result_id>", checks.check_result, name="check_result"),
    path("checks/<int:check_id>/create-incident", checks.create_incident, name="create_incident"),
    path("checks/<int:check_id>/create-incident/leads", checks.lead_picker, name="create_incident_leads"),
    path("incidents/", incidents.incidents_page, name="incidents"),
    path("incidents/pickers/<str:name>", incidents.filter_picker, name="filter_picker"),
    path("incidents/<int:number>", incidents.incident_page, name="incident"),
    path("incidents/<int:number>/leads", incidents.lead_picker, name="incident_leads"),
    path("incidents/<int:number>/edit", incidents.edit_incident, name="edit_incident"),
    path("incidents/<int:number>/results", incidents.attach_results, name="attach_results"),
    path("incidents/<int:number>/results/picker", incidents.results_picker, name="results_picker"),
    path("incidents/<int:number>/comments", incidents.comment, name="comment"),
    path("profile/", profile.profile, name="profile"),
    path("profile/time-zone", profile.set_time_zone, name="set_time_zone"),
    path("profile/password", profile.change_password, name="change_password"),
    path("profile/api-keys", profile.create_api_key, name="create_api_key"),
    path("profile/api-keys/<int:key_pk>/revoke", profile.revoke_api_key, name="revoke_api_key"),
    path("settings/", settings.organization, name="settings"),
    path("settings/users", settings.users, name="settings_users"),
    path("settings/users/<int:user_id>", settings.user_detail, name="settings_user"),
    path("settings/groups", settings.groups, name="settings_groups"),
    path("settings/groups/<int:group_id>", settings.group_detail, name="settings_group"),
    path(
        "settings/groups/<int:group_id>/candidates",
        settings.group_candidates,
        name="settings_group_candidates",
    ),
    path("settings/roles", settings.roles, name="settings_roles"),
    path("settings/roles/<int:role_id>", settings.role_detail, name="settings_role"),
    path("settings/datasets", settings.datasets, name="settings_datasets"),
    path("settings/failed-rows", settings.failed_rows, name="settings_failed_rows"),
    path("settings/check-attributes", settings.check_attributes, name="settings_check_attributes"),
    path(
        "settings/check-attributes/<int:definition_id>/delete",
        settings.delete_check_attribute,
        name="settings_delete_check_attribute",
    ),
]
