"""/metrics: who may read it, and what it counts (by URL pattern, never by path), across processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import LazySettings
from django_tasks_db.models import DBTaskResult

from quell.integrations.models import Delivery
from tests.conftest import ClientFor, World
from tests.integrations.conftest import Receiver, Reply, add_webhook
from tests.ops.conftest import Process, metric, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "s3cret-metrics-token-for-tests"


def get(url: str, **options: Any) -> httpx.Response:
    # The live server's first request imports the whole URLconf, which takes a few seconds.
    return httpx.get(url, timeout=30, **options)


@pytest.fixture
def metrics_url(live_server: Any) -> str:
    return f"{live_server.url}/metrics"


@pytest.fixture
def api(client_for: ClientFor) -> httpx.Client:
    return client_for("admin")


def test_loopback_may_read_metrics_by_default(metrics_url: str) -> None:
    # A histogram appears once something was observed: a fresh data directory has no samples yet.
    get(metrics_url.removesuffix("/metrics") + "/login/")

    response = get(metrics_url)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "quell_http_request_duration_seconds" in response.text


def test_a_client_outside_the_allowed_networks_is_refused(metrics_url: str, settings: LazySettings) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    response = get(metrics_url)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "QUELL_METRICS_TOKEN" in response.json()["message"]


def test_with_a_token_configured_only_the_right_token_gets_in(
    metrics_url: str, settings: LazySettings
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_TOKEN = TOKEN

    anonymous = get(metrics_url)
    wrong = get(metrics_url, headers={"Authorization": "Bearer not-the-token"})
    basic = get(metrics_url, auth=("metrics", TOKEN))
    right = get(metrics_url, headers={"Authorization": f"Bearer {TOKEN}"})

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert wrong.json() == {"code": "unauthorized", "message": "The metrics token is wrong."}
    assert basic.status_code == 401
    assert right.status_code == 200
    assert "quell_tasks" in right.text


def test_a_wrong_token_is_refused_even_from_loopback(metrics_url: str, settings: LazySettings) -> None:
    settings.METRICS_TOKEN = TOKEN

    assert get(metrics_url, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_request_relayed_by_an_unknown_proxy_is_not_taken_for_loopback(metrics_url: str) -> None:
    # A proxy on the same machine connects from 127.0.0.1 on behalf of anyone on the internet.
    response = get(metrics_url, headers={"X-Forwarded-For": "203.0.113.9"})

    assert response.status_code == 403


def test_behind_a_trusted_proxy_the_forwarded_client_address_decides(
    metrics_url: str, settings: LazySettings
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]

    inside = get(metrics_url, headers={"X-Forwarded-For": "192.0.2.7"})
    outside = get(metrics_url, headers={"X-Forwarded-For": "203.0.113.9"})
    # The client wrote the leftmost entry itself; only the proxy's own entry counts.
    spoofed = get(metrics_url, headers={"X-Forwarded-For": "192.0.2.7, 203.0.113.9"})

    assert inside.status_code == 200
    assert outside.status_code == 403
    assert spoofed.status_code == 403


def test_request_latency_is_counted_by_url_pattern_not_by_path(
    api: httpx.Client, world: World, scrape: Callable[[], str], live_server: Any
) -> None:
    route = {"route": "/api/v1/incidents/<incident_id>", "method": "GET", "status": "4xx"}
    before = scrape()

    assert api.get("/incidents/987654").status_code == 404
    assert api.get("/incidents/987655").status_code == 404
    assert get(f"{live_server.url}/no/such/page/123").status_code in {302, 404}

    after = scrape()
    name = "quell_http_request_duration_seconds_count"
    assert metric(after, name, **route) - metric(before, name, **route) == 2
    assert metric(after, name, route="unmatched") > metric(before, name, route="unmatched")
    # A sample's value may contain any digits; what must never appear is the id in a label.
    assert "/incidents/987654" not in after
    assert '"987654"' not in after
    assert "/no/such/page" not in after


def test_ingested_scans_and_results_are_counted_by_source_and_outcome(
    api: httpx.Client, world: World, scrape: Callable[[], str]
) -> None:
    before = scrape()
    body: dict[str, Any] = {
        "dataTimestamp": "2026-11-26T06:00:00Z",
        "results": [
            {
                "dataSource": "warehouse",
                "dataset": "payments",
                "check": {"name": "row_count > 0"},
                "outcome": "fail",
            },
            {
                "dataSource": "warehouse",
                "dataset": "payments",
                "check": {"name": "no nulls"},
                "outcome": "pass",
            },
            {"dataSource": "warehouse", "dataset": "payments", "check": {"name": "fresh"}, "outcome": "pass"},
        ],
    }
    assert api.post("/checkResults", json=body).status_code in {200, 201}
    rejected = {**body, "results": [{**body["results"][0], "outcome": "sideways"}]}
    assert api.post("/checkResults", json=rejected).status_code == 400

    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("quell_ingested_scans_total", source="api") == 1
    assert grew("quell_ingested_check_results_total", source="api", outcome="fail") == 1
    assert grew("quell_ingested_check_results_total", source="api", outcome="pass") == 2


def test_queue_depths_are_read_from_the_database(
    world: World, receiver: Receiver, fast: LazySettings, scrape: Callable[[], str], api: httpx.Client
) -> None:
    add_webhook(world, receiver.url)
    created = api.post(
        "/incidents", json={"title": "Nobody delivers this", "checkResultIds": [world.customers_fail.pk]}
    )
    assert created.status_code == 201

    text = scrape()

    pending = Delivery.objects.filter(status="pending").count()
    assert pending >= 1
    assert metric(text, "quell_deliveries", status="pending") == pending
    assert metric(text, "quell_tasks", state="ready") == DBTaskResult.objects.ready().count() >= 1
    assert metric(text, "quell_tasks_oldest_ready_age_seconds") >= 0


def test_delivery_outcomes_counted_by_a_worker_show_in_the_web_servers_metrics(
    world: World,
    receiver: Receiver,
    fast: LazySettings,
    scrape: Callable[[], str],
    api: httpx.Client,
    start_worker: Callable[..., Process],
) -> None:
    add_webhook(world, receiver.url)
    receiver.script = [Reply(503)]  # the first attempt fails and is retried
    receiver.default = Reply(200)
    before = scrape()
    start_worker()

    api.post(
        "/incidents", json={"title": "Delivered eventually", "checkResultIds": [world.customers_fail.pk]}
    )
    wait_until(
        lambda: Delivery.objects.filter(status="delivered").exists(), what="the worker delivering the event"
    )

    after = scrape()
    name = "quell_delivery_attempts_total"
    assert (
        metric(after, name, kind="webhook", outcome="retrying")
        - metric(before, name, kind="webhook", outcome="retrying")
        == 1
    )
    assert (
        metric(after, name, kind="webhook", outcome="delivered")
        - metric(before, name, kind="webhook", outcome="delivered")
        == 1
    )
    assert (
        metric(
            after, "quell_task_runs_total", task="quell.integrations.delivery.deliver", status="successful"
        )
        >= 2
    )
