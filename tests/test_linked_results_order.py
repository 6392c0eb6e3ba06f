"""An incident's check results are listed newest data first, whatever order they were linked in: in every
API answer that shows the incident and on its page."""

from __future__ import annotations

import datetime as dt
import re

from django.test import Client

from tests.conftest import T0, ClientFor, World, push


def test_an_incidents_results_are_newest_data_first_in_the_api_and_on_its_page(
    client_for: ClientFor, world: World
) -> None:
    (later,) = push(
        world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0), at=T0 + dt.timedelta(days=2)
    )
    (earlier,) = push(
        world.admin, "warehouse", "orders", ("row_count > 0", "fail", 0), at=T0 - dt.timedelta(days=1)
    )
    # orders_fail and orders_warn came in one scan at T0: one data time, kept in the scan's order.
    newest_first = [later.pk, world.orders_fail.pk, world.orders_warn.pk, earlier.pk]
    editor = client_for("editor")

    created = editor.post(
        "/incidents",
        json={
            "title": "Orders table is empty",
            "checkResultIds": [earlier.pk, world.orders_warn.pk, later.pk],
        },
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert [r["id"] for r in incident["checkResults"]] == [later.pk, world.orders_warn.pk, earlier.pk]

    # Linked last, shown between the others by its data time.
    attached = editor.post(
        f"/incidents/{incident['id']}/checkResults", json={"checkResultIds": [world.orders_fail.pk]}
    )
    assert attached.status_code == 200, attached.text
    assert [r["id"] for r in attached.json()["checkResults"]] == newest_first

    one = editor.get(f"/incidents/{incident['id']}").json()
    assert [r["id"] for r in one["checkResults"]] == newest_first
    times = [r["dataTimestamp"] for r in one["checkResults"]]
    assert times == sorted(times, reverse=True)
    (listed,) = editor.get("/incidents", params={"incidentIds": incident["id"]}).json()["content"]
    assert [r["id"] for r in listed["checkResults"]] == newest_first

    browser = Client()
    browser.force_login(world.editor)
    page = browser.get(f"/incidents/{incident['number']}").content.decode()
    table = page.split('id="results-heading"', 1)[1].split("</tbody>", 1)[0]
    rows = table.split("<tbody>", 1)[1].split("</tr>")[:-1]
    shown = [
        (
            re.search(r'href="/checks/\d+">([^<]+)</a>', row).group(1),  # type: ignore[union-attr]
            dt.datetime.fromisoformat(re.search(r'datetime="([^"]+)"', row).group(1)),  # type: ignore[union-attr]
        )
        for row in rows
    ]
    assert shown == [
        ("row_count &gt; 0", later.data_timestamp),
        ("row_count &gt; 0", T0),
        ("missing_count(id) = 0", T0),
        ("row_count &gt; 0", earlier.data_timestamp),
    ]
