"""Admins set how long records are kept, in the API and on the Settings page; others may only read it."""

from __future__ import annotations

import pytest
from django.test import Client

from quell.accounts.models import Organization
from tests.conftest import ClientFor, World
from tests.web.conftest import ClientAs

NOT_ADMINS = ["manager", "editor", "viewer", "outsider"]


@pytest.fixture
def client_as(world: World) -> ClientAs:
    """A Django test client signed in as one of the world's users; "anonymous" is not signed in."""

    def make(name: str) -> Client:
        client = Client()
        if name != "anonymous":
            client.force_login(world.user(name))
        return client

    return make


def kept() -> tuple[int | None, ...]:
    org = Organization.get()
    return (
        org.keep_check_results_days,
        org.keep_scans_days,
        org.keep_failed_rows_days,
        org.keep_delivery_log_days,
    )


def test_a_new_installation_keeps_results_forever_and_the_bulky_records_for_a_while(world: World) -> None:
    assert kept() == (None, 90, 30, 30)


# --- API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", *NOT_ADMINS])
def test_every_signed_in_user_can_read_the_retention_settings(client_for: ClientFor, role: str) -> None:
    response = client_for(role).get("/organization/retention")

    assert response.status_code == 200
    assert response.json() == {
        "checkResultsDays": None,
        "scansDays": 90,
        "failedRowsSamplesDays": 30,
        "deliveryLogDays": 30,
    }


def test_anonymous_callers_cannot_read_or_change_the_retention_settings(client_for: ClientFor) -> None:
    assert client_for("anonymous").get("/organization/retention").status_code == 401
    response = client_for("anonymous").put("/organization/retention", json={"scansDays": 1})
    assert response.status_code == 401
    assert kept() == (None, 90, 30, 30)


def test_an_admin_changes_some_settings_and_leaves_the_others(client_for: ClientFor) -> None:
    response = client_for("admin").put(
        "/organization/retention", json={"checkResultsDays": 400, "failedRowsSamplesDays": None}
    )

    assert response.status_code == 200
    assert response.json() == {
        "checkResultsDays": 400,
        "scansDays": 90,
        "failedRowsSamplesDays": None,
        "deliveryLogDays": 30,
    }
    assert kept() == (400, 90, None, 30)


def test_zero_days_means_keep_forever(client_for: ClientFor) -> None:
    response = client_for("admin").put("/organization/retention", json={"deliveryLogDays": 0})

    assert response.json()["deliveryLogDays"] is None
    assert kept()[3] is None


@pytest.mark.parametrize("role", NOT_ADMINS)
def test_only_admins_change_the_retention_settings(client_for: ClientFor, role: str) -> None:
    response = client_for(role).put("/organization/retention", json={"scansDays": 1})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert kept() == (None, 90, 30, 30)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"scansDays": -1}, "scansDays", "cannot be negative"),
        ({"checkResultsDays": 36501}, "checkResultsDays", "at most 36500"),
        ({"deliveryLogDays": 10, "failedRowsSamplesDays": -5}, "failedRowsSamplesDays", "negative"),
    ],
)
def test_bad_values_are_refused_with_the_field_and_change_nothing(
    client_for: ClientFor, body: dict[str, int], field: str, words: str
) -> None:
    response = client_for("admin").put("/organization/retention", json=body)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid"
    assert error["field"] == field
    assert words in error["message"]
    assert kept() == (None, 90, 30, 30)


def test_a_value_that_is_not_a_number_is_refused(client_for: ClientFor) -> None:
    response = client_for("admin").put("/organization/retention", json={"scansDays": "a week"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert kept() == (None, 90, 30, 30)


# --- Settings page --------------------------------------------------------------------------------


def retention_form(**values: object) -> dict[str, object]:
    form: dict[str, object] = {
        "action": "retention",
        "check_results_days": "",
        "scans_days": "90",
        "failed_rows_days": "30",
        "delivery_log_days": "30",
    }
    form.update(values)
    return form


def test_the_organisation_page_shows_the_retention_settings(client_as: ClientAs, world: World) -> None:
    page = client_as("admin").get("/settings/").content.decode()

    assert "How long records are kept" in page
    assert 'name="scans_days" value="90"' in page
    assert 'name="check_results_days" placeholder="forever"' in page


def test_an_admin_saves_the_retention_settings(client_as: ClientAs, world: World) -> None:
    response = client_as("admin").post(
        "/settings/", retention_form(check_results_days="400", failed_rows_days="")
    )

    assert response.status_code == 302
    assert kept() == (400, 90, None, 30)


@pytest.mark.parametrize(
    ("field", "value"),
    [("scans_days", "-3"), ("delivery_log_days", "999999999"), ("failed_rows_days", "soon")],
)
def test_a_bad_retention_value_is_shown_at_its_field_and_nothing_is_saved(
    client_as: ClientAs, world: World, field: str, value: str
) -> None:
    response = client_as("admin").post(
        "/settings/", retention_form(check_results_days="10", **{field: value})
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="id_{field}_error"' in page
    assert kept() == (None, 90, 30, 30)


def test_saving_the_retention_settings_leaves_the_organisation_name_alone(
    client_as: ClientAs, world: World
) -> None:
    before = Organization.get().name

    client_as("admin").post("/settings/", retention_form(scans_days="7"))

    assert Organization.get().name == before
    assert kept()[1] == 7


@pytest.mark.parametrize("role", NOT_ADMINS)
def test_others_cannot_open_or_post_the_retention_settings(
    client_as: ClientAs, world: World, role: str
) -> None:
    client = client_as(role)

    assert client.get("/settings/").status_code == 403
    assert client.post("/settings/", retention_form(scans_days="1")).status_code == 403
    assert kept() == (None, 90, 30, 30)


def test_anonymous_visitors_are_sent_to_log_in(client_as: ClientAs, world: World) -> None:
    response = client_as("anonymous").post("/settings/", retention_form(scans_days="1"))

    assert response.status_code == 302
    assert "/login" in response["Location"]
    assert kept() == (None, 90, 30, 30)
