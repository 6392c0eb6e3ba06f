"""Muting a check or a whole dataset until a time: who may, what is refused, how a mute ends, and
where it shows (the API's checks and datasets, the checkEvaluation events integrations hear).

On the private dataset `orders` the manager and the editor hold Manage incidents, the viewer does
not, and the outsider cannot see it (tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from quell.api.catalog import _with_counts, check_out, dataset_out
from quell.catalog import queries as catalog_queries
from quell.incidents import mute_services
from quell.incidents.models import Mute
from quell.incidents.mutes import (
    mute_of_dataset,
    muted_check_ids,
    mutes_of_check,
    mutes_of_checks,
    mutes_of_datasets,
)
from quell.integrations.models import Event
from quell.lib.errors import Forbidden, Invalid, NotFound, Unprocessable
from tests.conftest import ClientFor, World, push
from tests.integrations.conftest import add_webhook

DAY = dt.timedelta(days=1)


def soon(days: float = 1) -> dt.datetime:
    """A moment `days` from now, to the second: mutes must end in the future, whenever the test runs
    (and the API writes times to the millisecond)."""
    return timezone.now().replace(microsecond=0) + dt.timedelta(days=days)


def mutes() -> list[tuple[int | None, int | None, str]]:
    """Every stored mute as (check id, dataset id, reason)."""
    return list(Mute.objects.order_by("pk").values_list("check_ref_id", "dataset_id", "reason"))


def stored() -> list[tuple[Any, ...]]:
    return list(Mute.objects.order_by("pk").values_list())


# --- The services ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "manager", "editor"])
def test_anyone_with_manage_incidents_mutes_a_check_until_a_time_with_a_reason(
    world: World, role: str
) -> None:
    check_id = world.orders_fail.check_ref_id
    until = soon(2)

    mute = mute_services.mute_check(
        check_id, by=world.user(role), until=until, reason="  Migrating the load.  "
    )

    assert (mute.check_ref_id, mute.dataset_id, mute.until, mute.reason) == (
        check_id,
        None,
        until,
        "Migrating the load.",
    )
    assert mute.created_by == world.user(role)
    assert muted_check_ids([(check_id, world.orders.pk)]) == {check_id}


def test_a_viewer_may_not_mute_or_unmute_and_nothing_changes(world: World) -> None:
    check_id = world.orders_fail.check_ref_id
    mute_services.mute_check(check_id, by=world.manager, until=soon(), reason="Planned.")
    before = stored()

    with pytest.raises(Forbidden, match="Manage incidents"):
        mute_services.mute_check(check_id, by=world.viewer, until=soon(3))
    with pytest.raises(Forbidden, match="Manage incidents"):
        mute_services.unmute_check(check_id, by=world.viewer)
    with pytest.raises(Forbidden, match="Manage incidents"):
        mute_services.mute_dataset(world.orders.pk, by=world.viewer, until=soon(3))
    with pytest.raises(Forbidden, match="Manage incidents"):
        mute_services.unmute_dataset(world.orders.pk, by=world.viewer)

    assert stored() == before


def test_a_check_or_dataset_the_caller_cannot_see_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        mute_services.mute_check(world.orders_fail.check_ref_id, by=world.outsider, until=soon())
    with pytest.raises(NotFound):
        mute_services.mute_dataset(world.orders.pk, by=world.outsider, until=soon())
    with pytest.raises(NotFound):
        mute_services.unmute_check(world.orders_fail.check_ref_id, by=world.outsider)
    with pytest.raises(NotFound):
        mute_services.unmute_dataset(world.orders.pk, by=world.outsider)
    with pytest.raises(NotFound):
        mute_services.mute_check(10**9, by=world.admin, until=soon())

    assert mutes() == []


def test_everyone_views_customers_but_only_the_admin_may_mute_it(world: World) -> None:
    with pytest.raises(Forbidden):
        mute_services.mute_dataset(world.customers.pk, by=world.manager, until=soon())

    mute_services.mute_dataset(world.customers.pk, by=world.admin, until=soon())

    assert mutes() == [(None, world.customers.pk, "")]


@pytest.mark.parametrize(
    ("until", "reason", "code"),
    [
        (lambda: timezone.now() - dt.timedelta(minutes=1), "", "mute_until_past"),
        (lambda: timezone.now(), "", "mute_until_past"),
        (lambda: timezone.now() + mute_services.LONGEST_MUTE + DAY, "", "mute_until_too_far"),
        (lambda: soon(), "x" * (mute_services.REASON_MAX + 1), "too_long"),
        (lambda: soon(), "Paused\u202eevil", "invisible_character"),
    ],
    ids=["past", "now", "over a year ahead", "reason too long", "control character in the reason"],
)
def test_a_refused_mute_says_why_and_changes_nothing(
    world: World, until: Callable[[], dt.datetime], reason: str, code: str
) -> None:
    check_id = world.orders_fail.check_ref_id
    mute_services.mute_check(check_id, by=world.editor, until=soon(), reason="The first mute.")
    before = stored()

    with pytest.raises(Invalid) as refused:
        mute_services.mute_check(check_id, by=world.editor, until=until(), reason=reason)
    with pytest.raises(Invalid):
        mute_services.mute_dataset(world.orders.pk, by=world.editor, until=until(), reason=reason)

    assert refused.value.code == code
    assert refused.value.field == ("reason" if "reason" in refused.value.message.lower() else "until")
    assert stored() == before


def test_a_time_in_the_past_is_refused_as_a_rule_not_as_a_malformed_request(world: World) -> None:
    with pytest.raises(Unprocessable):
        mute_services.mute_check(world.orders_fail.check_ref_id, by=world.editor, until=soon(-1))


def test_muting_again_replaces_the_mute_by_whoever_mutes_it_then(world: World) -> None:
    check_id = world.orders_fail.check_ref_id
    mute_services.mute_check(check_id, by=world.editor, until=soon(1), reason="First.")
    later = soon(5)

    mute_services.mute_check(check_id, by=world.manager, until=later, reason="Second.")

    (mute,) = Mute.objects.all()
    assert (mute.until, mute.reason, mute.created_by) == (later, "Second.", world.manager)


def test_a_mute_made_without_a_reason_has_an_empty_one(world: World) -> None:
    mute = mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon())

    assert mute.reason == ""


def test_unmuting_lifts_the_mute_and_unmuting_again_is_no_error(world: World) -> None:
    check_id = world.orders_fail.check_ref_id
    mute_services.mute_check(check_id, by=world.editor, until=soon())
    mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon())

    assert mute_services.unmute_check(check_id, by=world.editor) is True
    assert mute_services.unmute_check(check_id, by=world.editor) is False
    assert mutes() == [(None, world.orders.pk, "")]
    assert mute_services.unmute_dataset(world.orders.pk, by=world.manager) is True
    assert mute_services.unmute_dataset(world.orders.pk, by=world.manager) is False
    assert mutes() == []


# --- Reading mutes --------------------------------------------------------------------------------


def pairs(world: World) -> list[tuple[int, int]]:
    return [
        (world.orders_fail.check_ref_id, world.orders.pk),
        (world.orders_warn.check_ref_id, world.orders.pk),
        (world.customers_fail.check_ref_id, world.customers.pk),
    ]


def test_a_muted_dataset_mutes_every_check_of_it_and_only_those(world: World) -> None:
    mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon(), reason="Rebuilding.")

    found = mutes_of_checks(pairs(world))

    assert set(found) == {world.orders_fail.check_ref_id, world.orders_warn.check_ref_id}
    assert {mute.dataset_id for mute in found.values()} == {world.orders.pk}
    assert muted_check_ids(pairs(world)) == set(found)


def test_a_check_muted_itself_and_with_its_dataset_is_muted_until_the_later_end(world: World) -> None:
    check_id = world.orders_fail.check_ref_id
    mute_services.mute_check(check_id, by=world.editor, until=soon(3), reason="Own.")
    mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon(1), reason="Dataset.")

    assert mutes_of_checks(pairs(world)[:1])[check_id].reason == "Own."
    both = mutes_of_check(check_id, world.orders.pk)
    assert (both.own and both.own.reason, both.dataset and both.dataset.reason) == ("Own.", "Dataset.")
    assert both.effective is both.own

    mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon(7), reason="Longer.")

    assert mutes_of_checks(pairs(world)[:1])[check_id].reason == "Longer."
    assert mutes_of_check(check_id, world.orders.pk).effective.reason == "Longer."  # type: ignore[union-attr]


def test_a_mute_ends_by_itself_when_its_time_passes(world: World) -> None:
    check_id = world.orders_fail.check_ref_id
    check_mute = mute_services.mute_check(check_id, by=world.editor, until=soon(1))
    mute_services.mute_dataset(world.customers.pk, by=world.admin, until=soon(2))
    after_both = soon(3)

    assert muted_check_ids(pairs(world), at=check_mute.until - dt.timedelta(seconds=1)) == {
        check_id,
        world.customers_fail.check_ref_id,
    }
    assert muted_check_ids(pairs(world), at=check_mute.until) == {world.customers_fail.check_ref_id}
    assert muted_check_ids(pairs(world), at=after_both) == set()
    assert mutes_of_checks(pairs(world), at=after_both) == {}
    assert mutes_of_datasets([world.orders.pk, world.customers.pk], at=after_both) == {}
    assert mute_of_dataset(world.customers.pk, at=after_both) is None
    assert mutes_of_check(check_id, world.orders.pk, at=after_both) == (None, None)


def test_an_ended_mute_shows_nowhere_and_muting_again_replaces_it(world: World) -> None:
    check_id = world.orders_fail.check_ref_id
    Mute.objects.create(check_ref_id=check_id, until=timezone.now() - DAY, reason="Long over.")

    assert mutes_of_checks(pairs(world)) == {}
    assert check_out([catalog_queries.get_check(check_id, by=world.viewer)])[0]["muted"] is None

    mute_services.mute_check(check_id, by=world.editor, until=soon(), reason="Again.")

    assert mutes() == [(check_id, None, "Again.")]


def test_a_page_of_checks_or_datasets_reads_its_mutes_in_one_statement(world: World) -> None:
    def statements() -> int:
        with CaptureQueriesContext(connection) as captured:
            check_out(catalog_queries.list_checks(by=world.viewer))
            dataset_out(_with_counts(catalog_queries.list_datasets(by=world.viewer)))
        return len(captured.captured_queries)

    none_muted = statements()
    for n in range(5):
        push(world.admin, "warehouse", "orders", (f"extra {n}", "fail", n))
    for check in catalog_queries.list_checks(by=world.admin):
        mute_services.mute_check(check.pk, by=world.admin, until=soon(), reason=check.name)
    mute_services.mute_dataset(world.orders.pk, by=world.admin, until=soon())

    assert statements() == none_muted


# --- The API --------------------------------------------------------------------------------------


def mute_body(days: float = 1, reason: str = "Planned migration.") -> dict[str, Any]:
    return {"until": soon(days).isoformat(), "reason": reason}


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("admin", 200),
        ("manager", 200),
        ("editor", 200),
        ("viewer", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ],
)
def test_muting_a_check_through_the_api_answers_each_caller_as_the_permissions_say(
    client_for: ClientFor, world: World, role: str, status: int
) -> None:
    check_id = world.orders_fail.check_ref_id
    until = timezone.now().replace(microsecond=0) + dt.timedelta(hours=30)

    response = client_for(role).post(
        f"/checks/{check_id}/mute",
        json={
            "until": until.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(),
            "reason": "Planned.",
        },
    )

    assert response.status_code == status, response.text
    if status != 200:
        assert {"code", "message"} <= set(response.json())
        assert mutes() == []
        return
    user = world.user(role)
    body = response.json()
    assert body == {
        "until": until.isoformat().replace("+00:00", "Z"),
        "reason": "Planned.",
        "scope": "check",
        "createdBy": {"id": user.pk, "email": user.email, "name": user.name},
        "createdAt": body["createdAt"],
    }
    assert mutes() == [(check_id, None, "Planned.")]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("admin", 204),
        ("manager", 204),
        ("editor", 204),
        ("viewer", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ],
)
def test_unmuting_a_dataset_through_the_api_answers_each_caller_as_the_permissions_say(
    client_for: ClientFor, world: World, role: str, status: int
) -> None:
    mute_services.mute_dataset(world.orders.pk, by=world.admin, until=soon(), reason="Rebuilding.")

    response = client_for(role).delete(f"/datasets/{world.orders.pk}/mute")

    assert response.status_code == status, response.text
    assert mutes() == ([] if status == 204 else [(None, world.orders.pk, "Rebuilding.")])


def test_a_dataset_and_its_check_are_muted_and_unmuted_through_the_api(
    client_for: ClientFor, world: World
) -> None:
    editor = client_for("editor")
    check_id = world.orders_fail.check_ref_id

    muted = editor.post(f"/datasets/{world.orders.pk}/mute", json=mute_body(reason="Rebuilding."))
    again = editor.post(f"/datasets/{world.orders.pk}/mute", json=mute_body(days=2, reason="Longer."))

    assert muted.status_code == again.status_code == 200
    assert again.json()["scope"] == "dataset"
    assert mutes() == [(None, world.orders.pk, "Longer.")]
    assert editor.delete(f"/checks/{check_id}/mute").status_code == 204  # not muted itself: a no-op
    assert editor.delete(f"/datasets/{world.orders.pk}/mute").status_code == 204
    assert editor.delete(f"/datasets/{world.orders.pk}/mute").status_code == 204
    assert mutes() == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (lambda: {"until": (timezone.now() - DAY).isoformat()}, "mute_until_past"),
        (lambda: {"until": (timezone.now() + dt.timedelta(days=400)).isoformat()}, "mute_until_too_far"),
        (lambda: {"until": soon().isoformat(), "reason": "x" * 2001}, "invalid_request"),
        (lambda: {"until": soon().isoformat(), "reason": "bell\x07"}, "invisible_character"),
        (lambda: {"until": "next tuesday"}, "invalid_request"),
        (lambda: {"until": 1893456000}, "invalid_request"),
        (lambda: {"reason": "No end given."}, "invalid_request"),
    ],
    ids=["past", "over a year", "reason too long", "control character", "not a time", "a number", "no until"],
)
def test_a_refused_mute_through_the_api_is_a_400_that_changes_nothing(
    client_for: ClientFor, world: World, body: Callable[[], dict[str, Any]], code: str
) -> None:
    editor = client_for("editor")
    mute_services.mute_check(world.orders_fail.check_ref_id, by=world.editor, until=soon(), reason="Kept.")
    before = stored()

    for path in (f"/checks/{world.orders_fail.check_ref_id}/mute", f"/datasets/{world.orders.pk}/mute"):
        response = editor.post(path, json=body())

        assert response.status_code == 400, response.text
        assert response.json()["code"] == code
        assert response.json()["message"]
    assert stored() == before


def by_id(response: httpx.Response) -> dict[int, Any]:
    assert response.status_code == 200, response.text
    return {item["id"]: item["muted"] for item in response.json()["content"]}


def test_the_api_marks_muted_checks_and_datasets_in_lists_and_answers_alike(
    client_for: ClientFor, world: World
) -> None:
    viewer = client_for("viewer")
    own = world.orders_fail.check_ref_id
    with_dataset = world.orders_warn.check_ref_id
    customers = world.customers_fail.check_ref_id
    check_mute = mute_services.mute_check(own, by=world.editor, until=soon(5), reason="Own.")
    dataset_mute = mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon(1), reason="All.")

    def shown(mute: Mute, scope: str) -> dict[str, Any]:
        return {"until": mute.until.isoformat().replace("+00:00", "Z"), "reason": mute.reason, "scope": scope}

    checks = by_id(viewer.get("/checks"))
    datasets = by_id(viewer.get("/datasets"))

    assert checks[own] == shown(check_mute, "check")
    assert checks[with_dataset] == shown(dataset_mute, "dataset")
    assert checks[customers] is None
    assert datasets == {world.orders.pk: shown(dataset_mute, "dataset"), world.customers.pk: None}
    assert viewer.get(f"/checks/{own}").json()["muted"] == shown(check_mute, "check")
    assert viewer.get(f"/checks/{with_dataset}").json()["muted"] == shown(dataset_mute, "dataset")
    assert viewer.get(f"/datasets/{world.orders.pk}").json()["muted"] == shown(dataset_mute, "dataset")
    assert viewer.get(f"/datasets/{world.customers.pk}").json()["muted"] is None


def test_the_api_shows_an_ended_mute_as_none(client_for: ClientFor, world: World) -> None:
    Mute.objects.create(dataset=world.orders, until=timezone.now() - dt.timedelta(minutes=1), reason="Over.")

    assert client_for("viewer").get(f"/datasets/{world.orders.pk}").json()["muted"] is None
    assert set(by_id(client_for("viewer").get("/checks")).values()) == {None}


def test_the_documented_examples_mute_from_now_on(client_for: ClientFor, world: World) -> None:
    document = client_for("anonymous").get("/openapi.json").json()
    operation = document["paths"]["/api/v1/checks/{check_id}/mute"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]

    for example in examples.values():
        until = dt.datetime.fromisoformat(example["value"]["until"])
        assert timezone.now() < until < timezone.now() + dt.timedelta(days=8)
        response = client_for("admin").post(
            f"/checks/{world.orders_fail.check_ref_id}/mute", json=example["value"]
        )
        assert response.status_code == 200, response.text


# --- Integrations hear nothing of muted checks ------------------------------------------------------


def evaluations() -> list[list[str]]:
    """The check names of each checkEvaluation event recorded, in order."""
    return [
        [result["name"] for result in event.payload["checkResults"]]
        for event in Event.objects.filter(type="checkEvaluation").order_by("pk")
    ]


def test_check_evaluation_leaves_out_the_results_of_muted_checks(world: World) -> None:
    add_webhook(world, "https://example.com/hook", events=["checkEvaluation"])
    mute_services.mute_check(world.orders_fail.check_ref_id, by=world.editor, until=soon())

    push(
        world.admin,
        "warehouse",
        "orders",
        ("row_count > 0", "fail", 0),
        ("missing_count(id) = 0", "warn", 3),
        ("freshness(updated_at) < 1d", "fail", 30),
    )

    assert evaluations() == [["missing_count(id) = 0", "freshness(updated_at) < 1d"]]
    (event,) = Event.objects.filter(type="checkEvaluation")
    assert event.payload["checkResultCount"] == 2


def test_check_evaluation_sends_nothing_when_every_failing_check_is_muted(world: World) -> None:
    add_webhook(world, "https://example.com/hook", events=["checkEvaluation"])
    mute_services.mute_dataset(world.orders.pk, by=world.editor, until=soon())

    push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0), ("late", "warn", 1))
    push(world.admin, "warehouse", "customers", ("row_count > 10", "fail", 2))

    assert evaluations() == [["row_count > 10"]]


def test_check_evaluation_hears_of_a_check_again_once_its_mute_is_lifted(world: World) -> None:
    add_webhook(world, "https://example.com/hook", events=["checkEvaluation"])
    mute_services.mute_check(world.orders_fail.check_ref_id, by=world.editor, until=soon())
    push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0))
    mute_services.unmute_check(world.orders_fail.check_ref_id, by=world.editor)

    push(world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0))

    assert evaluations() == [["row_count > 0"]]
