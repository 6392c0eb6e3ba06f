"""The profile page with API keys, the home page, and the datasets list."""

from __future__ import annotations

import re

from quell.accounts.auth import user_for_api_key
from quell.accounts.models import ApiKey
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import World
from tests.web.conftest import ClientAs, day, push_at


def test_creating_an_api_key_shows_its_secret_once(client_as: ClientAs, world: World) -> None:
    client = client_as("editor")

    response = client.post("/profile/api-keys", {"name": "soda-core in CI"})

    body = response.content.decode()
    key_id = re.search(r'id="new-key-id">([^<]+)<', body)
    secret = re.search(r'id="new-key-secret">([^<]+)<', body)
    assert key_id
    assert secret
    assert user_for_api_key(key_id.group(1), secret.group(1)) == world.editor
    assert response["Cache-Control"].startswith("max-age=0")
    assert secret.group(1) not in client.get("/profile/").content.decode()
    assert ApiKey.objects.get(key_id=key_id.group(1)).name == "soda-core in CI"


def test_revoking_a_key_stops_it_working(client_as: ClientAs, world: World) -> None:
    key, secret = ApiKey.issue(world.editor, name="old")

    response = client_as("editor").post(f"/profile/api-keys/{key.pk}/revoke")

    assert response.status_code == 302
    assert user_for_api_key(key.key_id, secret) is None
    assert "Revoked" in client_as("editor").get("/profile/").content.decode()


def test_nobody_can_revoke_someone_elses_key(client_as: ClientAs, world: World) -> None:
    key, secret = ApiKey.issue(world.editor, name="mine")

    response = client_as("admin").post(f"/profile/api-keys/{key.pk}/revoke")

    assert response.status_code == 404
    assert user_for_api_key(key.key_id, secret) == world.editor


def test_the_profile_lists_only_your_own_keys(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get("/profile/").content.decode()

    assert world.keys["viewer"][0] in body
    assert world.keys["editor"][0] not in body


def test_home_counts_open_incidents_by_severity(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    incidents.create_incident(
        by=world.admin, title="Few customers", severity="minor", check_result_ids=[world.customers_fail.pk]
    )

    body = client_as("viewer").get("/").content.decode()
    tiles = body.split('id="open-heading"')[1].split("</section>")[0]

    assert re.search(r'"tile-count">1</span> <span class="badge severity-critical"', tiles)
    assert re.search(r'"tile-count">1</span> <span class="badge severity-minor"', tiles)
    assert re.search(r'"tile-count">0</span> <span class="badge severity-major"', tiles)


def test_open_counts_are_exact_for_each_person_and_follow_severity_and_status_changes(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    for n in range(2):
        incidents.create_incident(
            by=world.admin,
            title=f"Also critical {n}",
            severity="critical",
            check_result_ids=[world.orders_fail.pk],
            allow_duplicate=True,
        )
    on_customers = incidents.create_incident(
        by=world.admin, title="Customers", severity="minor", check_result_ids=[world.customers_fail.pk]
    )
    incidents.update_incident(on_customers.pk, by=world.admin, severity="critical")
    incidents.update_incident(
        orders_incident.pk, by=world.admin, status="resolved", resolution_notes="Fixed."
    )

    def tiles(who: str) -> str:
        page = client_as(who).get("/").content.decode()
        return page.split('id="open-heading"')[1].split("</section>")[0]

    # The viewer sees orders and customers; the outsider customers only (Everyone's dataset).
    assert re.search(r'"tile-count">3</span> <span class="badge severity-critical"', tiles("viewer"))
    assert re.search(r'"tile-count">3</span> open in all', tiles("viewer"))
    assert re.search(r'"tile-count">1</span> <span class="badge severity-critical"', tiles("outsider"))
    assert re.search(r'"tile-count">1</span> open in all', tiles("outsider"))
    assert re.search(r'"tile-count">3</span> <span class="badge severity-critical"', tiles("admin"))


def test_home_lists_the_open_incidents_you_lead(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    mine = client_as("editor").get("/").content.decode().split('id="mine-heading"')[1].split("</section>")[0]
    theirs = (
        client_as("manager").get("/").content.decode().split('id="mine-heading"')[1].split("</section>")[0]
    )

    assert "Orders table is empty" in mine
    assert "Orders table is empty" not in theirs


def test_home_lists_datasets_failing_without_an_open_incident(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    quiet = (
        client_as("viewer").get("/").content.decode().split('id="quiet-heading"')[1].split("</section>")[0]
    )

    assert "warehouse/customers" in quiet
    assert "warehouse/orders" not in quiet  # it has an open incident


def test_home_does_not_list_datasets_whose_checks_pass_again(client_as: ClientAs, world: World) -> None:
    push_at(world.admin, "customers", day(1), ("row_count > 10", "pass", 50))

    quiet = (
        client_as("viewer").get("/").content.decode().split('id="quiet-heading"')[1].split("</section>")[0]
    )

    assert "warehouse/customers" not in quiet


def test_the_datasets_list_shows_counts_and_searches(
    client_as: ClientAs, world: World, orders_incident: Incident
) -> None:
    body = client_as("viewer").get("/datasets/").content.decode()
    orders_row = body.split(f'href="/datasets/{world.orders.pk}">orders</a>')[1].split("</tr>")[0]

    assert re.findall(r'class="num">(?:<strong>|<a [^>]+>)?(\d+)', orders_row) == ["4", "3", "1"]
    assert "customers" not in client_as("viewer").get("/datasets/?q=ord").content.decode().split("<tbody>")[1]


def test_the_datasets_list_hides_private_datasets(client_as: ClientAs, world: World) -> None:
    body = client_as("outsider").get("/datasets/").content.decode()

    assert ">customers</a>" in body
    assert ">orders</a>" not in body
