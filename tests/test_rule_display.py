"""What the incident rules do shows everywhere: the API's incidents and timelines, the web pages, the
organisation's folding setting, and the webhooks, Slack and Teams messages.

Incidents are made by calling the incident services as the engine (quell.automation) does: Quell's
system user as the actor, the rule named. So that the engine itself adds nothing, the rules are
disabled (none opens an incident) and the scans are pushed before the incidents they could fold into or
pass for: every automatic change the tests look at is one they made.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import LazySettings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quell.accounts import services as accounts
from quell.accounts.models import Organization, User
from quell.api.incidents import incident_out, timeline_out
from quell.catalog.models import CheckResult
from quell.incidents import details as incident_details
from quell.incidents import queries as incident_queries
from quell.incidents import services as incidents
from quell.incidents.models import Incident, IncidentRule
from quell.lib.errors import Forbidden
from tests.conftest import T0, World, push
from tests.integrations import conftest as integrations_conftest
from tests.integrations.conftest import Receiver, add_webhook, drain

# The integrations' fixtures, here too: a local HTTP receiver, and retries in milliseconds.
receiver = integrations_conftest.receiver
fast = integrations_conftest.fast

RULE_NAME = "Critical tables"
PASSING_SINCE = T0 + dt.timedelta(days=1)  # 2026-11-02 06:00 UTC, 07:00 in Berlin


def make_rule(name: str = RULE_NAME) -> IncidentRule:
    # Disabled: the engine must not open incidents from the scans the tests push.
    return IncidentRule.objects.create(name=name, enabled=False)


def open_by_rule(
    world: World, rule: IncidentRule, *results: CheckResult, title: str = "Orders failed"
) -> Incident:
    """An incident Quell opens for `rule`, led by the manager, as the engine opens one."""
    return incidents.create_incident(
        by=accounts.system_user(),
        title=title,
        check_result_ids=[result.pk for result in results],
        lead_id=world.manager.pk,
        rule=rule,
        allow_duplicate=True,
    )


@dataclass
class Story:
    """An incident the rule opened on orders, and the later results of its check (pushed first)."""

    rule: IncidentRule
    quell: User
    incident: Incident
    passed: CheckResult  # the row count passing the next night
    failed_again: CheckResult  # failing the night after
    warned: CheckResult  # and warning the night after that


@pytest.fixture
def story(world: World) -> Story:
    (passed,) = push(
        world.admin, "warehouse", "orders", ("row_count > 0", "pass", 5), at=T0 + dt.timedelta(days=1)
    )
    (failed_again,) = push(
        world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0), at=T0 + dt.timedelta(days=2)
    )
    (warned,) = push(
        world.admin, "warehouse", "orders", ("row_count > 0", "warn", 1), at=T0 + dt.timedelta(days=3)
    )
    rule = make_rule()
    incident = open_by_rule(world, rule, world.orders_fail)
    return Story(rule, accounts.system_user(), incident, passed, failed_again, warned)


def api(world: World, name: str) -> Client:
    """A test client that sends this user's API key; "anonymous" sends none, "badkey" a wrong one."""
    if name == "anonymous":
        return Client()
    key_id, secret = world.keys[name] if name != "badkey" else ("no-such-key", "no-such-secret")
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {token}")


def page(world: World, path: str, name: str = "manager") -> str:
    """A page's HTML as this person gets it, in Berlin time."""
    user = world.user(name)
    user.time_zone = "Europe/Berlin"
    user.save(update_fields=["time_zone"])
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.content.decode()


def text(fragment: str) -> str:
    """What a piece of HTML says, as one line: tags dropped, entities read, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", fragment)).split())


def timeline_text(content: str) -> str:
    """What the timeline of an incident page says."""
    return text(content.split('id="timeline-heading"')[1].split("</ol>")[0])


# --- The API: an incident names its rule and since when its checks pass ------------------------------


def test_the_api_names_the_rule_that_opened_an_incident_and_keeps_quell_as_reporter(
    world: World, story: Story
) -> None:
    by_hand = incidents.create_incident(
        by=world.admin, title="Customers short", check_result_ids=[world.customers_fail.pk]
    )

    one = api(world, "viewer").get(f"/api/v1/incidents/{story.incident.pk}").json()
    listed = {row["id"]: row for row in api(world, "admin").get("/api/v1/incidents").json()["content"]}

    assert one["rule"] == {"id": story.rule.pk, "name": RULE_NAME}
    assert one["reporter"] == {"id": story.quell.pk, "email": accounts.SYSTEM_EMAIL, "name": "Quell"}
    assert one["lead"]["email"] == "manager@example.com"
    assert one["passingSince"] is None
    assert listed[story.incident.pk]["rule"] == {"id": story.rule.pk, "name": RULE_NAME}
    assert listed[by_hand.pk]["rule"] is None
    assert listed[by_hand.pk]["reporter"]["email"] == "alice@example.com"


def test_a_persons_write_answers_with_the_rule_too(world: World, story: Story) -> None:
    response = api(world, "manager").patch(
        f"/api/v1/incidents/{story.incident.pk}", {"status": "investigating"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["rule"] == {"id": story.rule.pk, "name": RULE_NAME}


def test_an_incident_whose_rule_is_deleted_names_no_rule(world: World, story: Story) -> None:
    story.rule.delete()

    one = api(world, "admin").get(f"/api/v1/incidents/{story.incident.pk}").json()

    assert one["rule"] is None
    assert one["reporter"]["name"] == "Quell"


def test_passing_since_shows_while_the_incident_is_open(world: World, story: Story) -> None:
    incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=story.quell)

    one = api(world, "viewer").get(f"/api/v1/incidents/{story.incident.pk}").json()
    listed = api(world, "viewer").get("/api/v1/incidents").json()["content"]

    assert one["passingSince"] == "2026-11-02T06:00:00Z"
    assert listed[0]["passingSince"] == "2026-11-02T06:00:00Z"


def test_a_resolved_incident_shows_no_passing_since(world: World, story: Story) -> None:
    incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=story.quell)
    incidents.update_incident(
        story.incident.pk, by=world.manager, status="resolved", resolution_notes="Reloaded the table."
    )

    one = api(world, "viewer").get(f"/api/v1/incidents/{story.incident.pk}").json()

    assert one["passingSince"] is None


def test_people_cannot_set_passing_since_nor_record_passes(world: World, story: Story) -> None:
    with pytest.raises(Forbidden):
        incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=world.admin)
    with pytest.raises(Forbidden):
        incidents.record_passes({story.incident.pk: [story.passed]}, by=world.admin)

    story.incident.refresh_from_db()
    assert story.incident.passing_since is None


# --- The API: the timeline says what Quell did, and for which rule --------------------------------------


def play_the_story(world: World, story: Story) -> None:
    """Quell records the pass, resolves the incident for the rule, reopens it for the rule with the new
    failure; a person comments."""
    incidents.record_passes({story.incident.pk: [story.passed]}, by=story.quell)
    incidents.update_incident(
        story.incident.pk,
        by=story.quell,
        rule=story.rule,
        status="resolved",
        resolution_notes="Every check passed again.",
        resolution_reason="recovered",
    )
    incidents.update_incident(story.incident.pk, by=story.quell, rule=story.rule, status="reported")
    incidents.attach_check_results(
        story.incident.pk, [story.failed_again.pk], by=story.quell, rule=story.rule
    )
    incidents.add_comment(story.incident.pk, "Looking into it.", by=world.manager)


def test_the_api_timeline_marks_what_quell_did_and_for_which_rule(world: World, story: Story) -> None:
    play_the_story(world, story)

    events = api(world, "viewer").get(f"/api/v1/incidents/{story.incident.pk}/timeline").json()

    said = [(e["type"], e.get("field"), e["automatic"], e["ruleName"]) for e in events]
    assert said == [
        ("created", None, True, RULE_NAME),
        ("resultAttached", None, True, RULE_NAME),
        ("checkPassed", None, True, None),
        ("changed", "status", True, RULE_NAME),
        ("changed", "resolutionNotes", True, RULE_NAME),
        ("changed", "resolutionReason", True, RULE_NAME),
        ("reopened", "status", True, RULE_NAME),
        ("resultAttached", None, True, RULE_NAME),
        ("comment", None, False, None),
    ]
    passed = events[2]
    assert passed["actor"]["name"] == "Quell"
    assert passed["text"] == "row_count > 0"
    assert passed["checkResult"]["id"] == story.passed.pk
    assert passed["checkResult"]["outcome"] == "pass"
    assert passed["checkResult"]["datasetName"] == "orders"


def test_folding_is_automatic_and_names_no_rule(world: World, story: Story) -> None:
    incidents.fold_results({story.incident.pk: [story.failed_again]}, by=story.quell)

    events = api(world, "viewer").get(f"/api/v1/incidents/{story.incident.pk}/timeline").json()

    folded = events[-1]
    assert folded["type"] == "resultAttached"
    assert folded["automatic"] is True
    assert folded["ruleName"] is None
    assert folded["checkResult"]["id"] == story.failed_again.pk


def test_a_pass_on_a_dataset_the_reader_cannot_view_is_not_on_their_timeline(world: World) -> None:
    """The incident spans orders (private) and customers (everyone views): the outsider sees the
    incident through customers, but not that an orders check passed."""
    (orders_pass,) = push(
        world.admin, "warehouse", "orders", ("row_count > 0", "pass", 5), at=T0 + dt.timedelta(days=1)
    )
    incident = open_by_rule(world, make_rule(), world.orders_fail, world.customers_fail)
    incidents.record_passes({incident.pk: [orders_pass]}, by=accounts.system_user())

    def kinds(name: str) -> list[str]:
        return [e["type"] for e in api(world, name).get(f"/api/v1/incidents/{incident.pk}/timeline").json()]

    assert "checkPassed" in kinds("viewer")
    assert "checkPassed" not in kinds("outsider")
    assert "event-checkPassed" in page(world, f"/incidents/{incident.number}", "viewer")
    assert "event-checkPassed" not in page(world, f"/incidents/{incident.number}", "outsider")


# --- The web pages ----------------------------------------------------------------------------------------


def test_the_incident_page_names_the_rule_and_shows_passing_since(world: World, story: Story) -> None:
    incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=story.quell)

    content = page(world, f"/incidents/{story.incident.number}")

    reporter = content.split('<dd id="fact-reporter">')[1].split("</dd>")[0]
    assert text(reporter) == f"Quell, rule '{RULE_NAME}'"
    badges = text(content.split('<p class="badges">')[1].split("</p>")[0])
    assert badges.endswith("All checks passing since 2026-11-02 07:00")
    assert '<time datetime="2026-11-02T07:00:00+01:00"' in content


def test_the_incident_page_names_no_rule_once_it_is_deleted(world: World, story: Story) -> None:
    story.rule.delete()

    content = page(world, f"/incidents/{story.incident.number}")

    assert '<dd id="fact-reporter">Quell</dd>' in content
    # The timeline keeps the name the rule had when it acted.
    assert f"Quell, rule '{RULE_NAME}', created the incident" in timeline_text(content)


def test_the_incident_page_timeline_tells_what_quell_did(world: World, story: Story) -> None:
    play_the_story(world, story)
    incidents.fold_results({story.incident.pk: [story.warned]}, by=story.quell)

    said = timeline_text(page(world, f"/incidents/{story.incident.number}"))

    assert f"Quell, rule '{RULE_NAME}', created the incident" in said
    assert f"Quell, rule '{RULE_NAME}', attached the check result row_count > 0" in said
    assert "Check row_count > 0 passed: ✓ Pass 5 at 2026-11-02 07:00" in said
    assert f"Quell, rule '{RULE_NAME}', changed the status from ○ Reported to ● Resolved" in said
    assert f"Quell, rule '{RULE_NAME}', gave the resolution reason Recovered" in said
    assert f"Quell, rule '{RULE_NAME}', reopened the incident: ● Resolved to ○ Reported" in said
    # Folding is the organisation's setting, not a rule's: Quell alone, and "automatically".
    assert "Quell attached the check result row_count > 0: ! Warn 1 at 2026-11-04 07:00 automatically" in said
    assert "Manager commented" in said


def test_the_passing_badge_leaves_with_the_resolution(world: World, story: Story) -> None:
    incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=story.quell)
    incidents.update_incident(
        story.incident.pk, by=world.manager, status="resolved", resolution_notes="Reloaded the table."
    )

    assert "All checks passing since" not in page(world, f"/incidents/{story.incident.number}")
    assert "All checks passing since" not in page(world, "/incidents/")


@pytest.mark.parametrize("where", ["incidents", "dataset tab"])
def test_both_incident_lists_name_the_rule_and_show_passing_since(
    world: World, story: Story, where: str
) -> None:
    by_hand = incidents.create_incident(
        by=world.editor, title="Orders late", check_result_ids=[world.orders_fail_2.pk]
    )
    incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=story.quell)
    path = "/incidents/" if where == "incidents" else f"/datasets/{world.orders.pk}/incidents"

    content = page(world, path)

    rows = {row.split("</td>")[0].strip(): row for row in content.split('<td class="num">')[1:]}
    ours, theirs = rows[str(story.incident.number)], rows[str(by_hand.number)]
    assert f"Quell, rule '{RULE_NAME}'" in text(ours)
    assert "All checks passing since 2026-11-02 07:00" in text(ours)
    assert "Editor" in text(theirs)
    assert "rule '" not in text(theirs)
    assert "All checks passing since" not in text(theirs)


def test_the_lists_say_just_quell_once_the_rule_is_deleted(world: World, story: Story) -> None:
    story.rule.delete()

    content = page(world, "/incidents/")

    assert '<td class="wide">Quell</td>' in content
    assert "rule '" not in text(content)


def test_the_home_page_shows_passing_since_on_the_incidents_you_lead(world: World, story: Story) -> None:
    incidents.set_passing_since({story.incident.pk: PASSING_SINCE}, by=story.quell)

    content = page(world, "/", "manager")

    mine = content.split('id="mine-heading"')[1].split("</section>")[0]
    assert f"#{story.incident.number} Orders failed" in mine
    assert "All checks passing since" in mine


# --- A fixed number of queries, whatever the number of rules ----------------------------------------------


def queries(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def open_by_rules(world: World, start: int, count: int) -> None:
    for n in range(start, start + count):
        (result,) = push(world.admin, "warehouse", "orders", (f"check {n}", "fail", n))
        incident = open_by_rule(world, make_rule(f"Rule {n}"), result, title=f"Problem {n}")
        incidents.set_passing_since({incident.pk: PASSING_SINCE}, by=accounts.system_user())


@pytest.mark.parametrize("user", ["admin", "viewer"])
def test_the_api_list_costs_the_same_for_3_and_for_15_incidents_of_as_many_rules(
    world: World, user: str
) -> None:
    by = world.user(user)

    def list_page() -> None:
        rows = list(incident_queries.list_incidents(incident_queries.IncidentFilters(), by=by)[:100])
        incident_out(rows, incident_details.details_of(rows, by=by))

    open_by_rules(world, 0, 3)
    few = queries(list_page)
    open_by_rules(world, 3, 12)

    assert queries(list_page) == few


def test_the_incidents_page_costs_the_same_for_3_and_for_15_incidents_of_as_many_rules(world: World) -> None:
    client = Client()
    client.force_login(world.viewer)
    open_by_rules(world, 0, 3)
    few = queries(lambda: client.get("/incidents/"))
    open_by_rules(world, 3, 12)

    assert queries(lambda: client.get("/incidents/")) == few


def test_the_timeline_costs_the_same_however_many_passes_and_folds(world: World, story: Story) -> None:
    def read() -> None:
        timeline_out(incident_queries.timeline(story.incident.pk, by=world.viewer))

    few = queries(read)
    for day in range(3, 9):
        (result,) = push(
            world.admin, "warehouse", "orders", ("row_count > 0", "pass", 5), at=T0 + dt.timedelta(days=day)
        )
        incidents.record_passes({story.incident.pk: [result]}, by=story.quell)
        (result,) = push(
            world.admin,
            "warehouse",
            "orders",
            ("row_count > 0", "fail", 0),
            at=T0 + dt.timedelta(days=day, hours=1),
        )
        incidents.fold_results({story.incident.pk: [result]}, by=story.quell)

    assert queries(read) == few


# --- The organisation's folding setting -------------------------------------------------------------------


def test_folding_is_on_by_default_and_the_api_says_so(world: World) -> None:
    assert api(world, "viewer").get("/api/v1/organization").json()["foldResults"] is True


def test_an_admin_turns_folding_off_and_on_through_the_api(world: World) -> None:
    off = api(world, "admin").put(
        "/api/v1/organization", {"foldResults": False}, content_type="application/json"
    )

    assert off.status_code == 200
    assert off.json()["foldResults"] is False
    assert Organization.get().fold_results is False

    named = api(world, "admin").put(
        "/api/v1/organization", {"name": "Renamed"}, content_type="application/json"
    )

    assert named.json()["foldResults"] is False  # left out: unchanged
    on = api(world, "admin").put(
        "/api/v1/organization", {"foldResults": True}, content_type="application/json"
    )
    assert on.json()["foldResults"] is True
    assert on.json()["name"] == "Renamed"
    assert Organization.get().fold_results is True


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("manager", 403),
        ("editor", 403),
        ("viewer", 403),
        ("outsider", 403),
        ("anonymous", 401),
        ("badkey", 401),
    ],
)
def test_only_admins_may_change_folding(world: World, name: str, status: int) -> None:
    response = api(world, name).put(
        "/api/v1/organization", {"foldResults": False}, content_type="application/json"
    )

    assert response.status_code == status
    assert response.json()["code"] == {401: "unauthorized", 403: "forbidden"}[status]
    assert Organization.get().fold_results is True


def test_folding_must_be_true_or_false(world: World) -> None:
    response = api(world, "admin").put(
        "/api/v1/organization",
        {"foldResults": "sometimes", "name": "Renamed"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert {"code", "message"} <= response.json().keys()
    org = Organization.get()
    assert org.fold_results is True
    assert org.name != "Renamed"


def settings_form(client: Client) -> dict[str, Any]:
    """The organisation form's fields as the page fills them in."""
    form = client.get("/settings/").context["form"]
    data = {name: form[name].value() for name in ("name", "default_role")}
    return {name: ("" if value is None else value) for name, value in data.items()}


def test_the_settings_page_has_the_folding_checkbox(world: World) -> None:
    content = page(world, "/settings/", "admin")

    assert "Attach new warn and fail results of a check to its open incident automatically" in content
    assert re.search(r'<input type="checkbox" name="fold_results"[^>]* checked', content)


def test_an_admin_turns_folding_off_and_on_on_the_settings_page(world: World) -> None:
    client = Client()
    client.force_login(world.admin)
    form = settings_form(client)

    unchecked = client.post("/settings/", form)

    assert unchecked.status_code == 302
    assert Organization.get().fold_results is False
    assert not re.search(r'name="fold_results"[^>]* checked', client.get("/settings/").content.decode())

    client.post("/settings/", form | {"fold_results": "on"})

    assert Organization.get().fold_results is True


@pytest.mark.parametrize("name", ["manager", "editor", "viewer", "outsider", "anonymous"])
def test_only_admins_may_change_folding_on_the_settings_page(world: World, name: str) -> None:
    client = Client()
    if name != "anonymous":
        client.force_login(world.user(name))

    response = client.post("/settings/", {"name": "Renamed", "default_role": ""})

    assert response.status_code in (302, 403)
    if name == "anonymous":
        assert response["Location"].startswith("/login/")
    else:
        assert response.status_code == 403
    assert Organization.get().fold_results is True
    assert Organization.get().name != "Renamed"


# --- Webhooks, Slack and Teams ---------------------------------------------------------------------------


def test_the_webhook_payload_names_the_rule_and_quell(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    add_webhook(world, receiver.url)
    rule = make_rule()
    opened = open_by_rule(world, rule, world.orders_fail)
    incidents.create_incident(
        by=world.admin, title="Customers short", check_result_ids=[world.customers_fail.pk]
    )
    incidents.update_incident(
        opened.pk,
        by=accounts.system_user(),
        rule=rule,
        status="resolved",
        resolution_notes="Every check passed again.",
        resolution_reason="recovered",
    )
    drain()

    created, hand_made, resolved = (request.json() for request in receiver.wait_for(3))
    assert created["event"] == "incidentCreated"
    assert created["incident"]["rule"] == {"id": rule.pk, "name": RULE_NAME}
    assert created["incident"]["reporter"]["name"] == "Quell"
    assert created["changedBy"] == {
        "id": accounts.system_user().pk,
        "email": accounts.SYSTEM_EMAIL,
        "name": "Quell",
    }
    assert created["changedByRule"] == {"id": rule.pk, "name": RULE_NAME}
    assert hand_made["incident"]["rule"] is None
    assert hand_made["changedByRule"] is None
    assert hand_made["changedBy"]["email"] == "alice@example.com"
    assert resolved["incident"]["resolutionReason"] == "recovered"
    assert resolved["changedByRule"] == {"id": rule.pk, "name": RULE_NAME}
    # Soda's fields stay as they were: receivers written for Soda keep working.
    assert {
        "id",
        "sodaCloudUrl",
        "number",
        "title",
        "description",
        "severity",
        "status",
        "createdTimestamp",
        "lastUpdatedTimestamp",
        "resolutionNotes",
        "resolutionReason",
        "resolutionTimestamp",
        "links",
        "lead",
        "reporter",
        "datasets",
        "checkResults",
        "checkResultCount",
        "version",
    } <= created["incident"].keys()


def test_folding_is_sent_as_quell_without_a_rule(
    world: World, receiver: Receiver, fast: LazySettings
) -> None:
    opened = open_by_rule(world, make_rule(), world.orders_fail)
    add_webhook(world, receiver.url)

    incidents.fold_results({opened.pk: [world.orders_fail_2]}, by=accounts.system_user())
    drain()

    (request,) = receiver.wait_for(1)
    body = request.json()
    assert body["event"] == "incidentUpdated"
    assert body["addedCheckResults"] == [world.orders_fail_2.pk]
    assert body["changedBy"]["name"] == "Quell"
    assert body["changedByRule"] is None


def message_lines(message: dict[str, Any], kind: str) -> str:
    """Everything a Slack or Teams message says, as one text."""

    def texts(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [
                str(v) for k, v in value.items() if k in ("text", "title", "value") and isinstance(v, str)
            ] + [t for v in value.values() for t in texts(v)]
        if isinstance(value, list):
            return [t for v in value for t in texts(v)]
        return []

    return "\n".join(texts(message))


@pytest.mark.parametrize("kind", ["slack", "msteams"])
def test_chat_messages_say_quell_and_the_rule(
    world: World, receiver: Receiver, fast: LazySettings, kind: str
) -> None:
    add_webhook(world, receiver.url, kind=kind)
    rule = make_rule()
    quell = accounts.system_user()
    opened = open_by_rule(world, rule, world.orders_fail)
    incidents.fold_results({opened.pk: [world.orders_fail_2]}, by=quell)
    incidents.update_incident(
        opened.pk,
        by=quell,
        rule=rule,
        status="resolved",
        resolution_notes="Every check passed again.",
        resolution_reason="recovered",
    )
    drain()

    created, folded, resolved = (message_lines(r.json(), kind) for r in receiver.wait_for(3))
    assert f"Opened by Quell, rule '{RULE_NAME}'" in created
    assert "By Quell" in folded
    assert "rule '" not in folded
    assert f"By Quell, rule '{RULE_NAME}'" in resolved
    assert "Resolved (Recovered): Every check passed again." in resolved
