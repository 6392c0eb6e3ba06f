"""Structured logs: a JSON line per request and per task run, tied together by the request id."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import LazySettings

from quell.integrations.models import Delivery
from tests.conftest import World
from tests.integrations.conftest import Receiver, add_webhook
from tests.ops.conftest import Process, process_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def lines_of(process: Process, logger: str) -> list[dict[str, Any]]:
    return [line for line in process.log_lines() if line.get("logger") == logger]


def api(web: Process, world: World, user: str = "admin") -> httpx.Client:
    return httpx.Client(base_url=f"{web.url}/api/v1", auth=world.keys[user], timeout=30)


def test_each_request_is_one_json_line_with_the_callers_request_id(
    world: World, start_web: Callable[..., Process]
) -> None:
    web = start_web()
    with api(web, world, "viewer") as client:
        response = client.get("/incidents/424242", headers={"X-Request-ID": "lb-7f3a9c"})

    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "lb-7f3a9c"
    wait_until(lambda: lines_of(web, "quell.request"), what="the request's log line")
    (line,) = lines_of(web, "quell.request")
    assert line["request_id"] == "lb-7f3a9c"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/incidents/<incident_id>"
    assert line["path"] == "/api/v1/incidents/424242"
    assert line["status"] == 404
    assert line["user_id"] == world.viewer.pk
    assert line["remote_addr"] == "127.0.0.1"
    assert line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float)
    assert "timestamp" in line


@pytest.mark.parametrize("incoming", ["", "has spaces", "<script>", "x" * 129, "semi;colon"])
def test_an_unusable_request_id_is_replaced_with_a_new_one(
    world: World, live_server: Any, incoming: str
) -> None:
    response = httpx.get(f"{live_server.url}/healthz", headers={"X-Request-ID": incoming}, timeout=30)

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_a_capability_in_the_url_is_not_written_to_the_log(
    world: World, start_web: Callable[..., Process]
) -> None:
    web = start_web()
    token = "capability-token-that-must-stay-secret"

    response = httpx.post(
        f"{web.url}/api/v1/integrations/incident-links/{token}",
        json={"url": "https://x.example/1"},
        timeout=30,
    )

    assert response.status_code in {400, 404}
    wait_until(lambda: lines_of(web, "quell.request"), what="the request's log line")
    (line,) = lines_of(web, "quell.request")
    assert line["path"] == "/api/v1/integrations/incident-links/<token>"
    assert token not in web.log.read_text()


def test_the_request_id_follows_the_event_into_the_workers_delivery(
    world: World,
    receiver: Receiver,
    fast: LazySettings,
    start_web: Callable[..., Process],
    start_worker: Callable[..., Process],
) -> None:
    add_webhook(world, receiver.url)
    web = start_web()
    worker = start_worker()

    with api(web, world) as client:
        created = client.post(
            "/incidents",
            json={"title": "Traced", "checkResultIds": [world.customers_fail.pk]},
            headers={"X-Request-ID": "trace-0001"},
        )
    assert created.status_code == 201
    wait_until(lambda: Delivery.objects.filter(status="delivered").exists(), what="the delivery")
    wait_until(lambda: lines_of(worker, "quell.task"), what="the task's log line")

    (task,) = lines_of(worker, "quell.task")
    assert task["task"] == "quell.integrations.delivery.deliver"
    assert task["outcome"] == "successful"
    assert task["result"] == "delivered"
    assert task["request_id"] == "trace-0001"
    assert isinstance(task["duration_ms"], float)
    # Every line the worker wrote while running the task carries the id, whoever wrote it.
    during = [line for line in worker.log_lines() if line.get("request_id") == "trace-0001"]
    assert {line["logger"] for line in during} >= {"quell.task", "django_tasks"}
    # The sweeper and the heartbeat run outside any request.
    assert all(line["request_id"] in (None, "trace-0001") for line in worker.log_lines())


def test_text_logs_for_a_person_at_a_terminal(world: World, start_web: Callable[..., Process]) -> None:
    web = start_web(QUELL_LOG_FORMAT="text")

    httpx.get(f"{web.url}/login/", headers={"X-Request-ID": "by-hand-1"}, timeout=30)

    wait_until(lambda: "[by-hand-1]" in web.log.read_text(), what="the text line")
    line = next(line for line in web.log.read_text().splitlines() if "[by-hand-1]" in line)
    assert "INFO quell.request [by-hand-1] GET /login/ 200" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_an_unknown_log_format_stops_quell_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "quell", "check"],
        env={**process_env(), "QUELL_LOG_FORMAT": "yaml"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.getcwd(),
    )

    assert result.returncode != 0
    assert "QUELL_LOG_FORMAT must be json or text, not 'yaml'" in result.stderr
