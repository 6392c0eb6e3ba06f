"""Pages show times in the reader's zone: the one chosen on their profile, else the one their browser
sends in the quell_tz cookie, else UTC; the API answers in UTC whatever the reader's zone."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.accounts import services as accounts
from quell.accounts.models import User
from quell.incidents.models import Incident
from quell.lib.errors import Invalid
from tests.conftest import World
from tests.web.conftest import ClientAs

# The orders incident's failing result has the data time T0, 2026-11-01 06:00 UTC.
T0_IN_TOKYO = 'datetime="2026-11-01T15:00:00+09:00" title="2026-11-01 15:00:00 JST"'
T0_IN_KOLKATA = 'datetime="2026-11-01T11:30:00+05:30" title="2026-11-01 11:30:00 IST"'
T0_IN_UTC = 'datetime="2026-11-01T06:00:00+00:00" title="2026-11-01 06:00:00 UTC"'


def incident_page(client: Client, incident: Incident) -> str:
    response = client.get(f"/incidents/{incident.number}")
    assert response.status_code == 200
    return response.content.decode()


def test_without_a_zone_from_the_browser_or_the_profile_times_are_in_utc(
    client_as: ClientAs, orders_incident: Incident
) -> None:
    body = incident_page(client_as("editor"), orders_incident)

    assert T0_IN_UTC in body
    assert ">Times in UTC</span>" in body


def test_times_are_in_the_zone_the_browser_sends(client_as: ClientAs, orders_incident: Incident) -> None:
    client = client_as("editor")
    client.cookies["quell_tz"] = "Asia/Tokyo"

    body = incident_page(client, orders_incident)

    assert T0_IN_TOKYO in body
    assert ">Times in Asia/Tokyo (JST)</span>" in body


@pytest.mark.parametrize("junk", ["Mars/Olympus_Mons", "../../etc/passwd", "", "localtime", "Asia/Tokyo\x00"])
def test_a_cookie_that_is_no_known_zone_is_ignored(
    client_as: ClientAs, orders_incident: Incident, junk: str
) -> None:
    client = client_as("editor")
    client.cookies["quell_tz"] = junk

    body = incident_page(client, orders_incident)

    assert T0_IN_UTC in body


def test_the_zone_chosen_on_the_profile_wins_over_the_browsers(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    accounts.set_own_time_zone(world.editor, "Asia/Kolkata")
    client = client_as("editor")
    client.cookies["quell_tz"] = "Asia/Tokyo"

    body = incident_page(client, orders_incident)

    assert T0_IN_KOLKATA in body
    assert ">Times in Asia/Kolkata (IST)</span>" in body


def test_choosing_a_zone_on_the_profile_saves_it_and_says_so(client_as: ClientAs, world: World) -> None:
    client = client_as("editor")
    client.cookies["quell_tz"] = "Asia/Tokyo"

    response = client.post("/profile/time-zone", {"time_zone": "Asia/Kolkata"}, follow=True)

    assert response.redirect_chain == [("/profile/", 302)]
    body = response.content.decode()
    assert "Times are now shown in Asia/Kolkata." in body
    assert '<option value="Asia/Kolkata" selected>Asia/Kolkata</option>' in body
    assert User.objects.get(pk=world.editor.pk).time_zone == "Asia/Kolkata"


def test_the_profiles_first_choice_is_the_browsers_zone_by_name(client_as: ClientAs) -> None:
    client = client_as("editor")
    client.cookies["quell_tz"] = "Asia/Tokyo"

    body = client.get("/profile/").content.decode()

    select = re.search(r'<select name="time_zone"[^>]*><option value="" selected>([^<]*)</option>', body)
    assert select, "the browser's zone is the first choice, and the chosen one"
    assert select.group(1) == "Your browser&#x27;s zone (Asia/Tokyo)"


def test_choosing_the_browsers_zone_again_forgets_the_profiles(client_as: ClientAs, world: World) -> None:
    accounts.set_own_time_zone(world.editor, "Asia/Kolkata")
    client = client_as("editor")
    client.cookies["quell_tz"] = "Asia/Tokyo"

    response = client.post("/profile/time-zone", {"time_zone": ""}, follow=True)

    assert "Times are now shown in your browser&#x27;s zone, Asia/Tokyo." in response.content.decode()
    assert User.objects.get(pk=world.editor.pk).time_zone == ""


@pytest.mark.parametrize("junk", ["Mars/Olympus_Mons", "Europe/Berlin; DROP TABLE", "x" * 65])
def test_a_zone_quell_does_not_know_is_refused_next_to_the_field_and_nothing_is_saved(
    client_as: ClientAs, world: World, junk: str
) -> None:
    accounts.set_own_time_zone(world.editor, "Asia/Kolkata")

    response = client_as("editor").post("/profile/time-zone", {"time_zone": junk})

    assert response.status_code == 400
    error = re.search(
        r'<small class="field-error" id="id_time_zone_error" role="alert">([^<]+)</small>',
        response.content.decode(),
    )
    assert error, "the message is next to the field"
    assert "time zone Quell knows" in error.group(1) or "at most 64 characters" in error.group(1)
    assert User.objects.get(pk=world.editor.pk).time_zone == "Asia/Kolkata"


def test_the_service_refuses_an_unknown_zone_by_field(world: World) -> None:
    with pytest.raises(Invalid) as refused:
        accounts.set_own_time_zone(world.editor, "Europe/Atlantis")

    assert (refused.value.code, refused.value.field) == ("unknown_time_zone", "timeZone")
    assert User.objects.get(pk=world.editor.pk).time_zone == ""


def test_the_api_answers_in_utc_whatever_the_readers_zone(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    accounts.set_own_time_zone(world.editor, "Asia/Kolkata")
    client = client_as("editor")  # the API takes a browser's session too
    client.cookies["quell_tz"] = "Asia/Tokyo"

    response = client.get(f"/api/v1/incidents/{orders_incident.pk}")

    assert response.status_code == 200, response.content
    created = response.json()["created"]
    assert created.endswith(("Z", "+00:00")), created


def test_reading_the_zone_costs_no_query(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    plain = client_as("editor")
    plain.get("/incidents/")  # the first request of a session warms caches (the groups, the zone names)
    with CaptureQueriesContext(connection) as without_zone:
        plain.get("/incidents/")
    accounts.set_own_time_zone(world.editor, "Asia/Kolkata")
    zoned = client_as("editor")
    zoned.cookies["quell_tz"] = "Asia/Tokyo"
    zoned.get("/incidents/")
    with CaptureQueriesContext(connection) as with_zone:
        body = zoned.get("/incidents/").content.decode()

    assert "Times in Asia/Kolkata" in body
    assert len(with_zone) == len(without_zone)


@pytest.mark.parametrize("name", ["admin", "manager", "editor", "viewer", "outsider"])
def test_everyone_signed_in_chooses_their_own_zone_and_only_their_own(
    name: str, client_as: ClientAs, world: World
) -> None:
    response = client_as(name).post("/profile/time-zone", {"time_zone": "Asia/Kolkata"})

    assert response.status_code == 302
    chosen = dict(User.objects.values_list("email", "time_zone"))
    assert chosen.pop(world.user(name).email) == "Asia/Kolkata"
    assert set(chosen.values()) == {""}


def test_no_one_chooses_a_zone_without_signing_in(client_as: ClientAs, world: World) -> None:
    response = client_as("anonymous").post("/profile/time-zone", {"time_zone": "Asia/Kolkata"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert set(User.objects.values_list("time_zone", flat=True)) == {""}
