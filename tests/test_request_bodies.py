"""Every JSON body, on /api/v1 and on Soda's /api/command and /api/query, is read one way: what cannot
be read is a 400 `{code, message}` naming the problem, never a 500, and a body that is not an
object is never taken for an empty one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from quell.catalog.models import FailedRowsSample, Scan
from quell.incidents import services as incidents
from quell.lib.jsontext import MAX_DEPTH
from tests.conftest import ClientFor, World

JSON = {"Content-Type": "application/json"}

# The probe's two bodies: 100,000 `[` then 100,000 `]`, and an object nested 5,000 deep.
DEEP_BODIES = {
    "brackets": b"[" * 100_000 + b"]" * 100_000,
    "objects": b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
}


@pytest.fixture
def site(live_server: Any) -> Iterator[httpx.Client]:
    """An anonymous client for the whole server, where Soda Core finds /api/command and /api/query."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def soda_token(site: httpx.Client, world: World, name: str = "editor") -> str:
    key_id, secret = world.keys[name]
    response = site.post("/api/command", json={"type": "login", "apiKeyId": key_id, "apiKeySecret": secret})
    token: str = response.json()["token"]
    return token


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the server logged as an error: an unhandled exception logs its traceback at ERROR."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def assert_error_shape(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "message"}
    assert body["code"] == code
    message: str = body["message"]
    return message


# --- Deep nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", DEEP_BODIES)
@pytest.mark.parametrize("endpoint", ["/api/command", "/api/query"])
def test_a_deeply_nested_body_to_soda_endpoints_from_anyone_is_a_400_without_a_traceback(
    site: httpx.Client, caplog: pytest.LogCaptureFixture, endpoint: str, shape: str
) -> None:
    response = site.post(endpoint, content=DEEP_BODIES[shape], headers=JSON)

    message = assert_error_shape(response, 400, "invalid_json")
    assert message == f"The request body is nested more than {MAX_DEPTH} levels deep."
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("endpoint", ["/api/command", "/api/query"])
def test_a_deeply_nested_value_in_a_logged_in_soda_message_is_a_400_without_a_traceback(
    site: httpx.Client, world: World, caplog: pytest.LogCaptureFixture, endpoint: str
) -> None:
    token = soda_token(site, world)
    deep = b"[" * 5_000 + b"]" * 5_000
    body = b'{"type": "sodaCoreInsertScanResults", "token": "%s", "logs": %s}' % (token.encode(), deep)

    response = site.post(endpoint, content=body, headers=JSON)

    assert_error_shape(response, 400, "invalid_json")
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("shape", DEEP_BODIES)
def test_a_deeply_nested_body_to_the_rest_api_is_a_400_without_a_traceback(
    client_for: ClientFor, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    response = client_for("editor").post("/incidents", content=DEEP_BODIES[shape], headers=JSON)

    message = assert_error_shape(response, 400, "invalid_request")
    assert message == f"The request body is nested more than {MAX_DEPTH} levels deep."
    assert tracebacks(caplog) == []


def test_a_deeply_nested_body_to_the_rest_api_without_credentials_is_a_401(
    client_for: ClientFor, caplog: pytest.LogCaptureFixture
) -> None:
    response = client_for("anonymous").post("/incidents", content=DEEP_BODIES["brackets"], headers=JSON)

    assert_error_shape(response, 401, "unauthorized")
    assert tracebacks(caplog) == []


def test_a_value_nested_to_the_limit_is_read_and_one_deeper_is_refused(client_for: ClientFor) -> None:
    editor = client_for("editor")

    def comment(depth: int) -> httpx.Response:
        # `text` must be a string, so a nested value there is a 400 either way: what differs is why.
        nested = "[" * (depth - 1) + "]" * (depth - 1)
        return editor.post("/incidents/1/comments", content=f'{{"text": {nested}}}', headers=JSON)

    assert "text" in assert_error_shape(comment(MAX_DEPTH), 400, "invalid_request")
    assert "nested" in assert_error_shape(comment(MAX_DEPTH + 1), 400, "invalid_request")


def test_a_deeply_nested_failed_rows_line_is_a_400_and_stores_nothing(
    site: httpx.Client, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    rows = b"[1]\n" + b"[" * 5_000 + b"]" * 5_000 + b"\n"

    response = site.post(
        "/api/scan/upload",
        content=rows,
        headers={"Authorization": soda_token(site, world), "Content-Type": "application/octet-stream"},
    )

    message = assert_error_shape(response, 400, "invalid_sample")
    assert message == f"Line 2 of the sample is nested more than {MAX_DEPTH} levels deep."
    assert not FailedRowsSample.objects.exists()
    assert tracebacks(caplog) == []


# --- Bodies that are not objects ------------------------------------------------------------------

NOT_OBJECTS = ["null", "[null]", '"x"', "123"]


def an_incident(world: World) -> int:
    incident = incidents.create_incident(
        by=world.admin, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    return incident.pk


@pytest.mark.parametrize("content", NOT_OBJECTS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/incidents/{incident}"),
        ("PUT", "/organization"),
        ("PUT", "/organization/retention"),
        ("POST", "/organization/failedRows"),
    ],
)
def test_a_body_that_is_not_an_object_is_a_400_and_changes_nothing(
    client_for: ClientFor, world: World, method: str, path: str, content: str
) -> None:
    admin = client_for("admin")
    url = path.format(incident=an_incident(world))
    before = admin.get(url).json()

    response = admin.request(method, url, content=content, headers=JSON)

    assert assert_error_shape(response, 400, "invalid_request") == "body: Input should be a JSON object"
    assert admin.get(url).json() == before


def test_a_list_item_that_is_not_an_object_is_named_in_the_400(client_for: ClientFor, world: World) -> None:
    body = {"dataTimestamp": "2026-11-01T00:00:00Z", "results": [None]}

    response = client_for("admin").post("/checkResults", json=body)

    assert assert_error_shape(response, 400, "invalid_request") == "results.0: Input should be a JSON object"


def operations_with_an_object_body(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation whose request body may be a JSON object."""
    components = schema["components"]["schemas"]

    def takes_an_object(body_schema: dict[str, Any]) -> bool:
        if "$ref" in body_schema:
            return takes_an_object(components[body_schema["$ref"].rsplit("/", 1)[-1]])
        if "anyOf" in body_schema:
            return any(takes_an_object(option) for option in body_schema["anyOf"])
        return bool(body_schema.get("type") == "object")

    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content and takes_an_object(content["application/json"]["schema"]):
                found.append((method.upper(), path.removeprefix("/api/v1")))
    return found


def test_every_operation_that_takes_an_object_refuses_a_body_that_is_not_one(
    client_for: ClientFor, world: World
) -> None:
    admin = client_for("admin")
    operations = operations_with_an_object_body(admin.get("/openapi.json").json())
    assert len(operations) >= 15
    # Bodies are validated before any handler runs, so an id of 1 serves every path.
    an_incident(world)

    for method, path in operations:
        url = path.replace("{", "").replace("}", "")
        for name in ("incident_id", "dataset_id", "integration_id"):
            url = url.replace(name, "1")
        for content in NOT_OBJECTS:
            response = admin.request(method, url, content=content, headers=JSON)
            assert response.status_code == 400, f"{method} {path} with {content}: {response.text}"
            assert set(response.json()) >= {"code", "message"}


# --- Text no database can store -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"title": "a\\u0000b"}',
            "The request body contains a NUL character (\\u0000) at title.",
        ),
        (
            b'{"title": "a\x00b"}',
            "The request body contains a NUL character (\\u0000) at line 1 column 13.",
        ),
        (
            b'{"title": "t", "description": "half a pair \\udb7c"}',
            "The request body contains a lone surrogate (\\udb7c) at description.",
        ),
        (
            b'{"title": "t", "checkResultIds": [1], "x": {"k\\ud800": 1}}',
            "The request body contains a lone surrogate (\\ud800) in a name in the object at x.",
        ),
    ],
)
def test_a_nul_or_a_lone_surrogate_in_a_body_is_named_in_the_400(
    client_for: ClientFor, content: bytes, message: str
) -> None:
    response = client_for("editor").post("/incidents", content=content, headers=JSON)

    assert assert_error_shape(response, 400, "invalid_request") == message


def test_a_nul_deep_in_pushed_results_is_refused_by_path_and_writes_nothing(
    client_for: ClientFor, world: World
) -> None:
    body = json.dumps(
        {
            "dataTimestamp": "2026-11-01T00:00:00Z",
            "results": [
                {"dataSource": "lake", "dataset": "t", "check": {"name": "c"}, "outcome": "pass"},
                {"dataSource": "lake", "dataset": "t", "check": {"name": "c\x00"}, "outcome": "fail"},
            ],
        }
    )
    scans = Scan.objects.count()

    response = client_for("editor").post("/checkResults", content=body, headers=JSON)

    message = assert_error_shape(response, 400, "invalid_request")
    assert message == "The request body contains a NUL character (\\u0000) at results[1].check.name."
    assert response.json()["field"] == "results[1].check.name"
    assert Scan.objects.count() == scans


def test_a_nul_in_a_soda_message_is_named_in_the_400(site: httpx.Client) -> None:
    response = site.post(
        "/api/command",
        content=json.dumps({"type": "sodaCoreInsertScanResults", "definitionName": "nightly\x00"}),
        headers=JSON,
    )

    message = assert_error_shape(response, 400, "invalid_json")
    assert message == "The request body contains a NUL character (\\u0000) at definitionName."


def test_nan_in_a_body_is_a_400(client_for: ClientFor) -> None:
    body = b'{"dataTimestamp": "2026-11-01T00:00:00Z", "results": [{"dataSource": "lake", "dataset": "t", "check": {"name": "c"}, "outcome": "pass", "value": NaN}]}'

    response = client_for("editor").post("/checkResults", content=body, headers=JSON)

    message = assert_error_shape(response, 400, "invalid_request")
    assert message == (
        "The request body contains NaN at results[0].value, which is not JSON (send null or a number)."
    )
    assert response.json()["field"] == "results[0].value"
