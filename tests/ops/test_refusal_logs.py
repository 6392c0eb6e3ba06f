"""A refused request (403) is logged in one line, never with a traceback: on the pages and in the API."""

from __future__ import annotations

import base64
import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from quell.lib.logs import JsonFormatter, TextFormatter
from tests.conftest import World


def one_line_each(records: list[logging.LogRecord]) -> bool:
    return all(
        "\n" not in formatter.format(record)
        for record in records
        for formatter in (TextFormatter(), JsonFormatter())
    )


def test_a_refused_page_is_one_warning_line_that_gives_the_reason(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    browser = Client()
    browser.force_login(world.viewer)

    response = browser.get("/settings/")

    assert response.status_code == 403
    (refusal,) = [record for record in caplog.records if record.name == "django.request"]
    assert refusal.levelname == "WARNING"
    assert refusal.getMessage() == (
        "Forbidden (Permission denied): /settings/: Only an admin can open the settings."
    )
    assert refusal.exc_info is None
    assert one_line_each(caplog.records)
    assert [record.getMessage() for record in caplog.records if record.name == "quell.request"] == [
        "GET /settings/ 403"
    ]


def test_a_refused_api_call_is_one_line(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    key = base64.b64encode(":".join(world.keys["viewer"]).encode()).decode()

    response = Client().get(
        f"/api/v1/datasets/{world.orders.pk}/responsibilities", HTTP_AUTHORIZATION=f"Basic {key}"
    )

    assert response.status_code == 403
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO] == [
        f"GET /api/v1/datasets/{world.orders.pk}/responsibilities 403"
    ]
    assert not any(record.exc_info for record in caplog.records)
    assert one_line_each(caplog.records)


def test_a_server_error_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("django.request")
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        logger.error("Internal Server Error: %s", "/x", exc_info=error, extra={"status_code": 500})

    (record,) = caplog.records
    assert record.exc_info is not None
    assert "Traceback" in TextFormatter().format(record)


def test_the_refusal_reason_cannot_start_a_line_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("django.request")
    error = PermissionDenied("No.\nERROR forged line")
    logger.warning("Forbidden (Permission denied): %s", "/x", exc_info=error, extra={"status_code": 403})

    (record,) = caplog.records
    assert record.getMessage() == "Forbidden (Permission denied): /x: No.\\nERROR forged line"
    assert one_line_each([record])
