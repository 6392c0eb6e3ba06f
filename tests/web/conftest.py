"""Fixtures for the web pages: an incident on the private `orders` dataset, signed-in clients, and scans
as Soda Core sends them."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable

import pytest
from django.test import Client

from quell.accounts.models import Responsibility, User
from quell.catalog import ingest as catalog_ingest
from quell.catalog.models import CheckResult, Dataset, Scan
from quell.incidents import services as incidents
from quell.incidents.models import Incident
from tests.conftest import T0, World
from tests.ingest.conftest import (
    captured_upload,
    soda_for,  # noqa: F401  (a fixture: links are checked against real uploads)
)

ROLES = ["admin", "manager", "editor", "viewer", "outsider"]
ClientAs = Callable[[str], Client]


@pytest.fixture
def client_as(world: World) -> ClientAs:
    """`client_as("editor")` is a Django test client signed in as that user; "anonymous" is not signed in."""

    def make(name: str) -> Client:
        client = Client()
        if name != "anonymous":
            client.force_login(world.user(name))
        return client

    return make


@pytest.fixture
def orders_incident(world: World) -> Incident:
    """An incident on the private orders dataset, reported by the editor, from its failing row count."""
    return incidents.create_incident(
        by=world.editor,
        title="Orders table is empty",
        description="The nightly load wrote no rows.",
        severity="critical",
        check_result_ids=[world.orders_fail.pk],
    )


def push_at(
    by: User, dataset: str, at: dt.datetime, *results: tuple[str, str, float | None]
) -> list[CheckResult]:
    """Ingest one scan into warehouse/<dataset> at a given data time."""
    _, stored = catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=at,
            results=[
                catalog_ingest.ResultInput(
                    data_source="warehouse",
                    dataset=dataset,
                    check=catalog_ingest.CheckInput(name=name),
                    outcome=outcome,
                    value=value,
                )
                for name, outcome, value in results
            ],
        ),
        by=by,
    )
    return stored


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


# --- Scans as Soda Core sends them ------------------------------------------------------------------

V3 = captured_upload("soda-core-3.5.6-upload.json")
V4 = captured_upload("soda-core-4.28.0-upload.json")
# Rows Soda Core 3.x would upload for "No missing customers": order_id, customer_id, status, amount.
SAMPLE_ROWS = b'[2, null, "lost_in_transit", 700.0]\n[5, null, "paid", 12.5]\n'


def soda_token(client: Client, world: World, user: str) -> str:
    key_id, secret = world.keys[user]
    response = client.post(
        "/api/command",
        {"type": "login", "apiKeyId": key_id, "apiKeySecret": secret},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


def push_soda_3(world: World, *, user: str = "admin", data_source: str = "warehouse") -> Scan:
    """Soda Core 3.5.6's captured scan of `orders`, sent through the protocol endpoints into `data_source`,
    with a two-row failed-rows sample uploaded first and attached to "No missing customers"."""
    client = Client(HTTP_USER_AGENT="SodaCore/3.5.6")
    token = soda_token(client, world, user)
    uploaded = client.post(
        "/api/scan/upload",
        SAMPLE_ROWS,
        content_type="application/octet-stream",
        HTTP_AUTHORIZATION=token,
        HTTP_IS_V3="true",
        HTTP_FILE_PATH="soda_core_cli/orders_customer_id_failed_rows.jsonl",
    )
    assert uploaded.status_code == 200, uploaded.content
    body = json.loads(
        json.dumps(V3["sodaCoreInsertScanResults"]["body"]).replace('"shop"', json.dumps(data_source))
    )
    # Two orders lack a customer in this scan, and both are in the sample.
    diagnostics = body["checks"][2]["diagnostics"]
    diagnostics["value"] = 2
    block = diagnostics["blocks"][0]
    block["totalFailingRows"] = block["sampleRowCount"] = 2
    block["file"]["totalRowCount"] = block["file"]["storedRowCount"] = 2
    block["file"]["reference"] = {"type": "sodaCloudStorage", "fileId": uploaded.json()["fileId"]}
    body["token"] = token
    response = client.post("/api/command", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return Scan.objects.get(pk=int(response.json()["scanId"]))


def push_soda_4(world: World, *, user: str = "admin") -> Scan:
    """Soda Core 4.28's captured contract verification of crm4/main/customers, contract first."""
    client = Client(HTTP_USER_AGENT="SodaCore/4.28.0")
    token = soda_token(client, world, user)
    contents = V4["sodaCoreUploadContractFile"]["body"]["contents"]
    uploaded = client.post(
        "/api/command",
        {"type": "sodaCoreUploadContractFile", "contents": contents, "token": token},
        content_type="application/json",
    )
    assert uploaded.status_code == 200, uploaded.content
    body = copy.deepcopy(V4["sodaCoreInsertScanResults"]["body"])
    body["contract"]["fileId"] = uploaded.json()["fileId"]
    body["token"] = token
    response = client.post("/api/command", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return Scan.objects.get(pk=int(response.json()["scanId"]))


@pytest.fixture
def soda_scan(world: World) -> Scan:
    """The captured Soda Core 3.x scan, in the private warehouse/orders dataset."""
    return push_soda_3(world)


def missing_customers(scan: Scan) -> CheckResult:
    """The scan's result that carries the failed-rows sample."""
    return scan.results.get(check_ref__name="No missing customers")


@pytest.fixture
def vault(world: World) -> Dataset:
    """A data source whose only dataset, vault/secrets, is private to the manager, editor and viewer."""
    catalog_ingest.ingest_scan(
        catalog_ingest.ScanInput(
            data_timestamp=day(1),
            results=[
                catalog_ingest.ResultInput(
                    "vault", "secrets", catalog_ingest.CheckInput(name="row_count > 0"), "pass", 5
                )
            ],
        ),
        by=world.admin,
    )
    dataset = Dataset.objects.get(data_source__name="vault", name="secrets")
    Responsibility.objects.filter(dataset=dataset).delete()
    for user, role in ((world.manager, "Manager"), (world.editor, "Editor"), (world.viewer, "Viewer")):
        Responsibility.objects.create(dataset=dataset, user=user, role=world.role(role))
    return dataset
