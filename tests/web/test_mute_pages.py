"""Muting from the pages: the badge on every list of checks, on a check's and a dataset's page, and the
Mute form and Unmute button that only those with Manage incidents see (the service refuses the rest)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from quell.incidents import mute_services
from quell.incidents.models import Incident, Mute
from quell.web.templatetags.quell_tags import MUTE_REASON_SHOWN
from tests.conftest import World
from tests.web.conftest import ClientAs

BADGE = 'class="badge mute"'


def soon(days: float = 1) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days)


def page(client_as: ClientAs, role: str, url: str) -> str:
    response = client_as(role).get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def mute_section(body: str) -> str:
    return body.split('<section id="mute"')[1].split("</section>")[0]


def check_url(world: World) -> str:
    return f"/checks/{world.orders_fail.check_ref_id}"


def test_a_muted_check_is_marked_with_its_end_and_reason_in_every_list_and_on_its_page(
    client_as: ClientAs, world: World
) -> None:
    mute_services.mute_check(
        world.orders_fail.check_ref_id, by=world.editor, until=soon(), reason="Migrating the nightly load."
    )

    pages = [
        "/checks/",
        f"/datasets/{world.orders.pk}",
        f"/scans/{world.orders_fail.scan_id}",
        check_url(world),
    ]
    for url in pages:
        body = page(client_as, "viewer", url)
        assert body.count(BADGE) == 1, url
        assert "Muted until <time" in body, url
        assert "— Migrating the nightly load." in body, url


def test_an_incident_page_marks_the_muted_checks_of_its_results(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    mute_services.mute_check(world.orders_fail.check_ref_id, by=world.editor, until=soon(), reason="Known.")

    body = page(client_as, "viewer", f"/incidents/{orders_incident.number}")

    results = body.split('id="results"')[1].split("</table>")[0]
    assert results.count(BADGE) == 1
    assert "— Known." in results


def test_a_muted_dataset_marks_each_of_its_checks_and_itself(client_as: ClientAs, world: World) -> None:
    mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon(), reason="Rebuilding.")

    checks_tab = page(client_as, "viewer", f"/datasets/{world.orders.pk}")
    table = checks_tab.split("<tbody>")[1].split("</tbody>")[0]
    assert table.count("Dataset muted until") == 4  # the four orders checks
    assert "Muted until" in mute_section(checks_tab)
    assert "Dataset muted until" in mute_section(page(client_as, "viewer", check_url(world)))
    datasets = page(client_as, "viewer", "/datasets/")
    assert datasets.count(BADGE) == 1
    assert "Rebuilding." in datasets
    assert page(client_as, "viewer", "/checks/").count("Dataset muted until") == 4


def test_an_ended_mute_is_shown_nowhere(client_as: ClientAs, world: World) -> None:
    Mute.objects.create(
        check_ref_id=world.orders_fail.check_ref_id, until=timezone.now() - dt.timedelta(minutes=1)
    )
    Mute.objects.create(dataset=world.orders, until=timezone.now() - dt.timedelta(minutes=1))

    for url in ("/checks/", f"/datasets/{world.orders.pk}", check_url(world), "/datasets/"):
        assert BADGE not in page(client_as, "manager", url), url


def test_a_long_reason_is_cut_short_in_a_list_and_shown_whole_on_the_page(
    client_as: ClientAs, world: World
) -> None:
    reason = "A long story. " * 20
    mute_services.mute_check(world.orders_fail.check_ref_id, by=world.editor, until=soon(), reason=reason)

    listed = page(client_as, "viewer", "/checks/")
    shown = page(client_as, "viewer", check_url(world))

    hover, text = listed.split('class="mute-reason" title="')[1].split('">— ', 1)
    text = text.split("</span>")[0]
    assert reason.strip() in hover
    assert text.startswith("A long story. A long story.")
    assert text.endswith("…")
    assert len(text) == MUTE_REASON_SHOWN
    assert reason.strip() in mute_section(shown)


@pytest.mark.parametrize(
    ("role", "offered"), [("admin", True), ("manager", True), ("editor", True), ("viewer", False)]
)
def test_the_mute_form_is_offered_to_those_with_manage_incidents(
    client_as: ClientAs, world: World, role: str, offered: bool
) -> None:
    for url in (check_url(world), f"/datasets/{world.orders.pk}", f"/datasets/{world.orders.pk}/scans"):
        section = mute_section(page(client_as, role, url))
        assert ('name="length"' in section) is offered, url
        assert ("csrfmiddlewaretoken" in section) is offered, url


def test_a_check_is_muted_for_a_week_from_its_page_and_unmuted(client_as: ClientAs, world: World) -> None:
    client = client_as("editor")
    check_id = world.orders_fail.check_ref_id
    before = timezone.now()

    muted = client.post(f"/checks/{check_id}/mute", {"length": "week", "reason": "Known upstream delay."})

    assert muted.status_code == 302
    assert muted["Location"] == check_url(world)
    (mute,) = Mute.objects.all()
    assert (mute.check_ref_id, mute.reason, mute.created_by) == (
        check_id,
        "Known upstream delay.",
        world.editor,
    )
    assert before + dt.timedelta(days=7) <= mute.until <= timezone.now() + dt.timedelta(days=7)
    shown = client.get(check_url(world)).content.decode()
    assert "Muted this check until" in shown
    assert 'class="secondary outline">Unmute</button>' in mute_section(shown)

    unmuted = client.post(f"/checks/{check_id}/unmute")

    assert unmuted.status_code == 302
    assert not Mute.objects.exists()
    assert BADGE not in client.get(check_url(world)).content.decode()


def test_a_dataset_is_muted_until_a_chosen_time_in_the_readers_zone_with_htmx(
    client_as: ClientAs, world: World
) -> None:
    client = client_as("manager")
    world.manager.time_zone = "Asia/Tokyo"
    world.manager.save(update_fields=["time_zone"])
    tokyo = dt.timezone(dt.timedelta(hours=9))
    chosen = (timezone.now() + dt.timedelta(days=3)).astimezone(tokyo).replace(second=0, microsecond=0)

    response = client.post(
        f"/datasets/{world.orders.pk}/mute",
        {"length": "custom", "until": chosen.strftime("%Y-%m-%dT%H:%M"), "reason": "", "tab": "scans"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/datasets/{world.orders.pk}/scans"
    (mute,) = Mute.objects.all()
    assert (mute.dataset_id, mute.until, mute.reason) == (world.orders.pk, chosen, "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"length": "custom", "until": ""}, "Choose when the mute ends."),
        ({"length": "custom", "until": "2020-01-01T10:00"}, "A mute must end in the future"),
        ({"length": "custom", "until": "2999-01-01T10:00"}, "at most 365 days"),
        ({"length": "forever"}, "Select a valid choice"),
        ({"length": "day", "reason": "x" * 2001}, "at most 2000 characters"),
        ({"length": "day", "reason": "bell\x07"}, "invisible control characters"),
    ],
    ids=["no time", "past", "too far", "unknown length", "reason too long", "control character"],
)
def test_a_refused_mute_form_comes_back_with_the_reason_and_nothing_is_muted(
    client_as: ClientAs, world: World, data: dict[str, str], message: str
) -> None:
    client = client_as("editor")
    url = f"/checks/{world.orders_fail.check_ref_id}/mute"

    swapped = client.post(url, data, HTTP_HX_REQUEST="true")
    on_its_own = client.post(url, data)

    assert swapped.status_code == on_its_own.status_code == 400
    # With htmx the form alone, to swap in place; without, a page of its own.
    assert swapped.content.decode().lstrip().startswith('<section id="mute"')
    assert message in swapped.content.decode()
    assert message in mute_section(on_its_own.content.decode())
    assert f'<meta name="quell-page-url" content="{check_url(world)}">' in on_its_own.content.decode()
    assert not Mute.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("outsider", 404)])
def test_muting_or_unmuting_without_manage_incidents_is_refused_by_the_service(
    client_as: ClientAs, world: World, role: str, status: int
) -> None:
    mute_services.mute_dataset(world.orders.pk, by=world.admin, until=soon(), reason="Kept.")
    client = client_as(role)
    check_id = world.orders_fail.check_ref_id

    answers = [
        client.post(f"/checks/{check_id}/mute", {"length": "day"}).status_code,
        client.post(f"/checks/{check_id}/unmute").status_code,
        client.post(f"/datasets/{world.orders.pk}/mute", {"length": "day"}).status_code,
        client.post(f"/datasets/{world.orders.pk}/unmute").status_code,
    ]

    assert answers == [status] * 4
    assert list(Mute.objects.values_list("dataset_id", "reason")) == [(world.orders.pk, "Kept.")]


def test_an_anonymous_post_goes_to_log_in_and_mutes_nothing(client_as: ClientAs, world: World) -> None:
    response = client_as("anonymous").post(f"/datasets/{world.orders.pk}/mute", {"length": "day"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not Mute.objects.exists()
