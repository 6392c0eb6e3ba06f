"""The Soda Core 4.x contract on its dataset's page, and every link the API hands out leading to a page."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.test import Client
from django.utils.html import escape

from quell.catalog.models import Dataset
from tests.conftest import ClientFor, World
from tests.ingest.conftest import SodaFor
from tests.web.conftest import V3, V4, ClientAs, push_soda_4

CONTRACT = V4["sodaCoreUploadContractFile"]["body"]["contents"]


def test_the_dataset_page_shows_the_contract_soda_core_verified(client_as: ClientAs, world: World) -> None:
    push_soda_4(world)
    dataset = Dataset.objects.get(data_source__name="crm4")

    body = client_as("viewer").get(f"/datasets/{dataset.pk}").content.decode()
    section = body.split('id="contract-heading"')[1].split("</section>")[0]

    assert f'<pre class="contract-text"><code>{escape(CONTRACT)}</code></pre>' in section
    assert "<code>contract.yml</code>" in section
    assert dataset.contract_updated_at is not None
    assert f"{dataset.contract_updated_at:%Y-%m-%d %H:%M}" in section


def test_a_dataset_without_a_contract_shows_no_contract_section(client_as: ClientAs, world: World) -> None:
    body = client_as("viewer").get(f"/datasets/{world.orders.pk}").content.decode()

    assert "contract-heading" not in body


def test_the_data_source_page_points_to_each_datasets_contract(client_as: ClientAs, world: World) -> None:
    push_soda_4(world)
    dataset = Dataset.objects.get(data_source__name="crm4")

    body = client_as("viewer").get(f"/data-sources/{dataset.data_source_id}").content.decode()

    assert f'href="/datasets/{dataset.pk}#contract-heading">contract.yml</a>' in body


def cloud_urls(value: object) -> list[str]:
    """Every `cloudUrl` anywhere in an API answer."""
    if isinstance(value, dict):
        found = [value["cloudUrl"]] if isinstance(value.get("cloudUrl"), str) else []
        return found + [url for item in value.values() for url in cloud_urls(item)]
    if isinstance(value, list):
        return [url for item in value for url in cloud_urls(item)]
    return []


def soda_insert(soda_for: SodaFor, version: dict[str, dict[str, dict[str, object]]]) -> dict[str, object]:
    """Send a captured upload as the editor; for 4.x upload its contract first."""
    soda = soda_for("editor")
    token = soda.login()
    body = dict(version["sodaCoreInsertScanResults"]["body"])
    if "contract" in body:
        contents = version["sodaCoreUploadContractFile"]["body"]["contents"]
        uploaded = soda.command({"type": "sodaCoreUploadContractFile", "contents": contents}, token)
        body["contract"] = {**body["contract"], "fileId": uploaded.json()["fileId"]}  # type: ignore[dict-item]
    response = soda.command(body, token)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer, dict)
    return answer


def test_every_cloud_url_the_apis_hand_out_opens_a_page_for_the_user(
    client_for: ClientFor, soda_for: SodaFor, world: World
) -> None:
    answers: list[object] = [soda_insert(soda_for, V3), soda_insert(soda_for, V4)]
    api = client_for("editor")
    (result,) = api.get(f"/checks/{world.orders_fail.check_ref_id}/results").json()["content"]
    created = api.post("/incidents", json={"title": "Orders are empty", "checkResultIds": [result["id"]]})
    assert created.status_code == 201, created.text
    answers.append(created.json())
    for path in ("/datasets", "/checks", "/scans", "/incidents"):
        listed = api.get(path, params={"size": 100})
        assert listed.status_code == 200, listed.text
        answers.append(listed.json())
    urls = sorted({url for answer in answers for url in cloud_urls(answer)})
    browser = Client()
    browser.force_login(world.editor)

    kinds = {urlsplit(url).path.split("/")[1] for url in urls}
    assert kinds == {"datasets", "checks", "scans", "incidents"}
    for url in urls:
        assert url.startswith(settings.BASE_URL + "/"), url
        assert browser.get(urlsplit(url).path).status_code == 200, url


def test_a_cloud_url_of_a_private_dataset_is_not_found_for_an_outsider(
    client_for: ClientFor, world: World
) -> None:
    orders = client_for("editor").get(f"/datasets/{world.orders.pk}").json()
    browser = Client()
    browser.force_login(world.outsider)

    assert browser.get(urlsplit(orders["cloudUrl"]).path).status_code == 404
    assert client_for("outsider").get(f"/datasets/{world.orders.pk}").status_code == 404


def test_the_soda_core_4_answer_links_the_dataset_page(soda_for: SodaFor, world: World) -> None:
    answer = soda_insert(soda_for, V4)
    dataset = Dataset.objects.get(data_source__name="crm4")
    browser = Client()
    browser.force_login(world.viewer)

    assert answer["cloudUrl"] == f"{settings.BASE_URL}/datasets/{dataset.pk}"
    body = browser.get(f"/datasets/{dataset.pk}").content.decode()
    assert "main/customers" in body
    assert "contract-heading" in body
