"""The OpenAPI schema tells the whole truth: every operation, field and limit is described, every body
has an example that works on the demo, and Schemathesis, with every check it has, finds nothing to
report against a live server."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jsonschema_rs
import pytest
from django.core.validators import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from quell.accounts.models import ApiKey, DatasetRole, User, UserGroup
from quell.api.accounts import EMAIL_MAX, EMAIL_PATTERN
from quell.catalog.models import CheckResult, Dataset, Scan
from quell.demo import load_demo
from quell.incidents.models import Incident
from quell.lib.text import (
    NON_BLANK_ONE_LINE_PATTERN,
    NON_BLANK_TEXT_PATTERN,
    ONE_LINE_PATTERN,
    TEXT_PATTERN,
    TRIMMED_ONE_LINE_PATTERN,
    WHITESPACE,
    refused_character,
)
from quell.web.gunicorn_conf import LIMIT_REQUEST_LINE
from tests.conftest import ClientFor, World
from tests.schemathesis_hooks import refused_only_for_a_named_rule

REPO = Path(__file__).resolve().parent.parent
DEMO_NOW = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.UTC)
# Few examples per operation keep the run to a few minutes; the coverage phase, which tries each
# field's boundaries and each keyword's violations, does not depend on it.
SCHEMATHESIS_EXAMPLES = 5


def openapi(client: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


# --- The document -----------------------------------------------------------------------------------


def test_the_schema_is_openapi_3_1_and_the_docs_page_leads_back_to_quell(client_for: ClientFor) -> None:
    client = client_for("anonymous")
    schema = openapi(client)
    assert schema["openapi"].startswith("3.1")
    assert "[back to Quell](/)" in schema["info"]["description"]

    docs = client.get("/docs")

    assert docs.status_code == 200
    assert 'href="/"' in docs.text
    assert "Back to Quell" in docs.text
    # Quell works offline: the docs page loads its scripts and styles from Quell, not from a CDN.
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text)
    assert assets
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert "cdn." not in docs.text


def test_every_operation_has_a_summary_and_a_description(client_for: ClientFor) -> None:
    undescribed = [
        f"{method} {path}"
        for method, path, operation in operations(openapi(client_for("anonymous")))
        if not operation.get("summary") or len(operation.get("description", "")) < 10
    ]
    assert undescribed == []


def test_a_schema_valid_request_may_be_refused_only_for_a_rule_its_operation_names() -> None:
    """The hook check Schemathesis runs below: a 400 to a valid request must carry a named rule's code."""
    operation = SimpleNamespace(
        definition=SimpleNamespace(
            raw={"description": "Needs notes to resolve (400 `resolution_notes_required`)."}
        )
    )
    positive = SimpleNamespace(generation=SimpleNamespace(mode=GenerationMode.POSITIVE))
    negative = SimpleNamespace(generation=SimpleNamespace(mode=GenerationMode.NEGATIVE))

    def answer(status: int, code: str) -> Any:
        return httpx.Response(status, json={"code": code, "message": "No."})

    def check(meta: Any, response: Any) -> bool | None:
        result: bool | None = refused_only_for_a_named_rule(
            None, response, SimpleNamespace(meta=meta, operation=operation)
        )
        return result

    assert check(positive, answer(400, "resolution_notes_required")) is None
    assert check(negative, answer(400, "invalid_request")) is None
    assert check(positive, answer(201, "")) is None
    with pytest.raises(AssertionError, match="invalid_request"):
        check(positive, answer(400, "invalid_request"))
    with pytest.raises(AssertionError, match="lead_cannot_manage"):
        check(positive, answer(400, "lead_cannot_manage"))


def test_every_field_and_parameter_has_a_description_and_no_generated_title(client_for: ClientFor) -> None:
    document = openapi(client_for("anonymous"))
    undescribed = []
    titled = []
    for name, schema in document["components"]["schemas"].items():
        for field, details in schema.get("properties", {}).items():
            if not details.get("description"):
                undescribed.append(f"{name}.{field}")
            if "title" in details:
                titled.append(f"{name}.{field}: {details['title']}")
    for method, path, operation in operations(document):
        for parameter in operation["parameters"]:
            where = f"{method} {path} {parameter['name']}"
            if not parameter.get("description"):
                undescribed.append(where)
            if "title" in parameter["schema"]:
                titled.append(f"{where}: {parameter['schema']['title']}")
    assert undescribed == []
    # pydantic titles a field after its name ("Checkresultids"), which the docs would show.
    assert titled == []


def test_every_request_body_has_examples_that_fit_its_schema(client_for: ClientFor) -> None:
    document = openapi(client_for("anonymous"))
    components = {"components": document["components"]}
    bodies = 0
    for method, path, operation in operations(document):
        if "requestBody" not in operation:
            continue
        bodies += 1
        media = operation["requestBody"]["content"]["application/json"]
        assert media.get("examples"), f"{method} {path} has no example"
        validator = jsonschema_rs.validator_for({**media["schema"], **components})
        for name, example in media["examples"].items():
            assert example["summary"], f"{method} {path} {name}"
            errors = [error.message for error in validator.iter_errors(example["value"])]
            assert errors == [], f"{method} {path} example {name}: {errors}"
    assert bodies >= 15


def test_every_query_the_schema_allows_fits_in_the_request_line_the_server_reads(
    client_for: ClientFor,
) -> None:
    """414s are not an answer the API gives: every query parameter is bounded, and together they fit."""
    document = openapi(client_for("anonymous"))
    for method, path, operation in operations(document):
        line = len(f"{method} {path} HTTP/1.1")
        for parameter in operation["parameters"]:
            schema = parameter["schema"]
            if parameter["in"] == "path":
                line += len(str(schema["maximum"])) - len(parameter["name"]) - 2
                continue
            name = len(parameter["name"]) + 2  # "?name=" or "&name="
            if schema.get("type") == "array":
                assert "maxItems" in schema, f"{method} {path} {parameter['name']}"
                line += schema["maxItems"] * (name + longest_value(schema["items"]))
            else:
                line += name + longest_value(schema)
        assert line <= LIMIT_REQUEST_LINE, f"{method} {path}: {line} bytes"


def longest_value(schema: dict[str, Any]) -> int:
    """The most bytes one value of `schema` takes in a query string."""
    options = [option for option in schema.get("anyOf", [schema]) if option.get("type") != "null"]
    longest = 0
    for option in options:
        if "enum" in option:
            longest = max(longest, *(len(value) for value in option["enum"]))
        elif option["type"] == "integer":
            longest = max(longest, len(str(option["maximum"])), len(str(option["minimum"])))
        else:
            limit = option.get("maxLength", schema.get("maxLength"))
            assert limit is not None, schema
            ascii_only = option.get("format") == "date-time" or _is_ascii_pattern(option.get("pattern", ""))
            # Outside ASCII a character is up to 4 bytes of UTF-8, each sent as %XX.
            longest = max(longest, limit * (1 if ascii_only else 12))
    return longest


def _is_ascii_pattern(pattern: str) -> bool:
    return bool(pattern) and re.fullmatch(r"\^\[[A-Za-z0-9_.:\-]+\]\*\$", pattern) is not None


# --- The rules the patterns state -------------------------------------------------------------------


def _python(pattern: str) -> re.Pattern[str]:
    # JSON Schema's `$` is the end of the string; Python's would allow a final newline before it.
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def test_the_text_patterns_refuse_exactly_the_characters_the_services_refuse() -> None:
    one_line, text = _python(ONE_LINE_PATTERN), _python(TEXT_PATTERN)
    whitespace = re.compile(f"[{WHITESPACE}]")
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # a lone surrogate never reaches a service (quell.lib.jsontext refuses it)
        ch = chr(code)
        assert bool(one_line.match(ch)) == (refused_character(ch) is None), hex(code)
        assert bool(text.match(ch)) == (refused_character(ch, multiline=True) is None), hex(code)
        assert bool(whitespace.fullmatch(ch)) == ch.isspace(), hex(code)


@pytest.mark.parametrize(
    ("value", "one_line", "text", "trimmed"),
    [
        ("Orders are late", True, True, True),
        ("  padded  ", True, True, False),
        (" \u3000\t", False, False, False),
        ("two\nlines", False, True, False),
        ("a\u202eb", False, False, False),
        ("", False, False, False),
    ],
)
def test_a_title_or_name_must_hold_more_than_whitespace(
    value: str, one_line: bool, text: bool, trimmed: bool
) -> None:
    assert bool(_python(NON_BLANK_ONE_LINE_PATTERN).match(value)) is one_line
    assert bool(_python(NON_BLANK_TEXT_PATTERN).match(value)) is text
    assert bool(_python(TRIMMED_ONE_LINE_PATTERN).match(value)) is trimmed
    assert one_line == (bool(value.strip()) and refused_character(value) is None)


@settings(max_examples=300, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.from_regex(EMAIL_PATTERN[1:-1], fullmatch=True).filter(lambda email: len(email) <= EMAIL_MAX))
def test_every_email_address_the_schema_allows_is_one_django_accepts(email: str) -> None:
    validate_email(email.strip().lower())


# --- The live API -----------------------------------------------------------------------------------


def test_every_operation_declares_its_error_answers(client_for: ClientFor) -> None:
    for method, path, operation in operations(openapi(client_for("anonymous"))):
        declared = set(operation["responses"])
        assert {"400", "401"} <= declared, f"{method} {path} declares {sorted(declared)}"
        if method != "GET":
            assert {"403", "413"} <= declared, f"{method} {path} declares {sorted(declared)}"


def test_a_wrong_method_is_answered_with_the_error_shape(client_for: ClientFor) -> None:
    response = client_for("editor").delete("/incidents")
    assert response.status_code == 405


def test_json_that_is_not_an_object_is_a_400(client_for: ClientFor) -> None:
    response = client_for("editor").post(
        "/incidents", content=b"[1, 2", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_an_unknown_path_under_the_api_is_a_404(client_for: ClientFor) -> None:
    assert client_for("editor").get("/nothing-here").status_code == 404


def test_a_body_is_read_as_its_schema_reads_it(client_for: ClientFor, world: World) -> None:
    """`false` is no number of days and `"true"` no boolean, but 5.0 is an integer, as in JSON Schema."""
    admin = client_for("admin")
    assert admin.put("/organization/retention", json={"deliveryLogDays": False}).status_code == 400
    assert admin.post("/organization/failedRows", json={"collectFailedRows": "true"}).status_code == 400
    response = admin.put("/organization/retention", json={"deliveryLogDays": 30.0})
    assert response.status_code == 200
    assert response.json()["deliveryLogDays"] == 30


def test_text_a_database_cannot_store_is_refused_before_anything_is_written(client_for: ClientFor) -> None:
    editor = client_for("editor")
    body = b'{"dataTimestamp": "2026-11-01T00:00:00Z", "results": [{"dataSource": "a\\u0000b", "dataset": "t", "check": {"name": "c"}, "outcome": "fail"}]}'
    response = editor.post("/checkResults", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    lone_surrogate = b'{"title": "\\udb7c", "checkResultIds": [1]}'
    response = editor.post("/incidents", content=lone_surrogate, headers={"content-type": "application/json"})
    assert response.status_code == 400
    response = editor.get("/incidents", params={"search": "a\x00b"})
    assert response.status_code == 400
    assert "NUL" in response.json()["message"]


# --- On the demo ------------------------------------------------------------------------------------


@dataclass
class Demo:
    api: httpx.Client
    url: str
    key: tuple[str, str]


@pytest.fixture
def demo(django_db_reset_sequences: None, builtin_rows: None, live_server: Any) -> Iterator[Demo]:
    """The demo organisation, with the ids a fresh installation gives it, and its admin's API key."""
    load_demo(now=DEMO_NOW)
    key, secret = ApiKey.issue(User.objects.get(email="admin@quell.example"))
    with httpx.Client(
        base_url=f"{live_server.url}/api/v1", auth=httpx.BasicAuth(key.key_id, secret), timeout=60
    ) as client:
        yield Demo(client, live_server.url, (key.key_id, secret))


def test_the_examples_name_what_the_demo_holds(demo: Demo) -> None:
    """The ids the examples use, looked up by name, so that a change to the demo shows here first."""
    assert Dataset.objects.get(data_source__name="snowflake_prod", name="inventory").pk == 4
    assert Dataset.objects.get(data_source__name="snowflake_prod", name="orders").pk == 5
    assert [DatasetRole.objects.get(name=name).pk for name in ("Manager", "Editor", "Viewer")] == [2, 3, 4]
    assert [User.objects.get(email=email).pk for email in ("marco@quell.example", "elena@quell.example")] == [
        2,
        3,
    ]
    assert UserGroup.objects.get(name="Everyone").pk == 1
    incident = Incident.objects.get(pk=3)
    assert (incident.title, incident.status) == (
        "Sessions data arriving late from the event collector",
        "investigating",
    )
    for result_id, dataset, check, outcome in (
        (397, "customers", "missing_count(email) = 0", "fail"),
        (194, "users", "invalid_percent(country) < 1%", "warn"),
        (540, "sessions", "missing_percent(user_id) < 5%", "warn"),
        (1045, "customers", "invalid_percent(country) < 1%", "fail"),
    ):
        result = CheckResult.objects.select_related("dataset", "check_ref").get(pk=result_id)
        assert (result.dataset.name, result.check_ref.name, result.outcome) == (dataset, check, outcome)
    assert Scan.objects.filter(pk=84).exists()


def test_every_request_body_example_is_accepted_on_the_demo(demo: Demo) -> None:
    """As "Try it out" sends them on a fresh demo installation, with the path parameters' examples."""
    calls = []
    for method, path, operation in operations(openapi(demo.api)):
        if "requestBody" not in operation:
            continue
        url = path.removeprefix("/api/v1")
        for parameter in operation["parameters"]:
            url = url.replace(f"{{{parameter['name']}}}", str(parameter["example"]))
        for name, example in operation["requestBody"]["content"]["application/json"]["examples"].items():
            calls.append((method, url, name, example["value"]))
    # The examples are tried in the document's order, in which every object an example names exists
    # by then (an integration before it is changed); the admin's own password changes last.
    calls.sort(key=lambda call: call[1] == "/users/me/password")

    refused = []
    for method, url, name, body in calls:
        response = demo.api.request(method, url, json=body)
        if not 200 <= response.status_code < 300:
            refused.append(f"{method} {url} {name}: {response.status_code} {response.text}")

    assert refused == []
    assert len(calls) >= 30


def test_schemathesis_with_every_check_finds_nothing_to_report(demo: Demo) -> None:
    """Schemathesis's every phase (examples, coverage, fuzzing, stateful), with valid and invalid
    requests and every check it has (schemathesis.toml says what it allows, and why), as the demo's
    admin, who may call every operation. Derandomized: the same requests on every run. Only
    max_response_time stays off, as it is off unless given a limit: it measures wall-clock time."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(REPO / "schemathesis.toml"),
            "run",
            f"{demo.url}/api/v1/openapi.json",
            "--checks",
            "all",
            "--auth",
            ":".join(demo.key),
            "--max-examples",
            str(SCHEMATHESIS_EXAMPLES),
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "60",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"},
    )

    report = done.stdout[-30_000:] + done.stderr[-5_000:]
    assert done.returncode == 0, report
    assert re.search(r"\b\d+ passed\b", done.stdout), report
