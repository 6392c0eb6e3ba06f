"""The REST API's plumbing: authentication, the error shape, paging. Routers live in each app's api.py."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Generic, TypeVar, cast

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja import Field
from ninja import Schema as NinjaSchema  # noqa: TID251 (the one subclass)
from ninja.errors import HttpError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBasicAuth, SessionAuth
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    Strict,
    TypeAdapter,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError

from quell.accounts.auth import user_for_api_key
from quell.accounts.models import User
from quell.lib.jsontext import MAX_DEPTH, parse_json, unstorable
from quell.lib.text import ONE_LINE_PATTERN


class ApiKeyBasicAuth(HttpBasicAuth):
    """HTTP Basic with `apiKeyId:apiKeySecret`, as Soda Cloud's API takes it."""

    def authenticate(self, request: HttpRequest, username: str, password: str) -> User | None:
        return user_for_api_key(username, password)


class BrowserSessionAuth(SessionAuth):
    """The signed-in browser session (with CSRF), so the UI's own scripts can call the API."""

    def _get_key(self, request: HttpRequest) -> str | None:
        # Without a signed-in session there is nothing for a forged request to ride on, so skip the
        # CSRF check: a POST with a bad API key or none must answer 401, not "CSRF check Failed" (403).
        user = request.user
        if not (isinstance(user, User) and user.is_active):
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = request.user
        if isinstance(user, User) and user.is_active:
            return user
        return None


class StorableJSONParser(Parser):
    """JSON bodies and query strings, refusing text that no database could keep, before any handler runs."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        # ninja turns whatever this raises into a 400 "Cannot parse request body" caused by it;
        # http_error below answers the UnreadableJSON's own message instead.
        return cast(dict[str, Any], parse_json(request.body))

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        parsed = super().parse_querydict(data, list_fields, request)
        problem = unstorable(parsed)
        if problem:
            raise HttpError(400, f"The query string {problem}.")
        return parsed


class Schema(NinjaSchema):
    """ninja's Schema, read from a JSON object or an object's attributes, never from another JSON value.

    ninja reads a Schema from any object's attributes, so that an answer can be a model row. That
    also read a body of `null`, `"x"`, `123` or `[null]` as an object without fields: every
    optional field took its default, and an update whose fields are all optional answered 200
    having changed nothing. Every schema of the API derives from this one (ruff refuses ninja's).
    """

    # A wrap validator, because pydantic runs "before" model validators only after ninja's wrap one
    # has turned the value into an attribute reader; this one runs outside it, on the value itself.
    @model_validator(mode="wrap")
    @classmethod
    def _from_objects_only(cls, value: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if value is None or isinstance(value, str | bytes | int | float | list | tuple):
            raise PydanticCustomError("object_type", "Input should be a JSON object")
        return handler(value)


class Body(Schema):
    """A request body, read as its JSON schema reads it: `"5"` is no integer and `0` no boolean.

    pydantic's lax mode would take `false` for a number of days (as 0, "keep forever") and `"true"`
    for a boolean, values the schema says are invalid, so a client could rely on a spelling the
    documentation refuses. Date-times stay lax: JSON carries them as text.
    """

    model_config = ConfigDict(strict=True)


class ErrorOut(Schema):
    code: str = Field(
        description="What went wrong, for programs: `invalid_request` for a request the schema refuses, "
        "or a code naming the rule (`title_required`, `lead_cannot_manage`, ...).",
        examples=["title_required"],
    )
    message: str = Field(
        description="What went wrong and what to do, for people.", examples=["An incident needs a title."]
    )
    field: str | None = Field(
        None,
        description="The request field the error is about, when there is one (`title`, `results[2].dataset`).",
        examples=["title"],
    )


T = TypeVar("T")


class Page(Schema, Generic[T]):
    """Soda Cloud's page shape: `number` counts from 0."""

    content: list[T] = Field(description="The items on this page.")
    first: bool = Field(description="Whether this is the first page.")
    last: bool = Field(description="Whether this is the last page.")
    number: int = Field(description="This page's number, from 0.")
    size: int = Field(description="The page size asked for (the last page may hold fewer items).")
    totalElements: int = Field(description="How many items there are on all pages together.")
    totalPages: int = Field(description="How many pages of this size there are.")


def caller(request: HttpRequest) -> User:
    user = request.auth  # type: ignore[attr-defined]
    assert isinstance(user, User)
    return user


def rows_response(schema: Any, data: Any, *, status: int = 200) -> HttpResponse:
    """Answer `data`, built from database rows in `schema`'s shape, without validating it again.

    ninja validates every answer against its schema through a wrapper object per field: a quarter of
    the time of a 50-incident page. The endpoints that answer lists build plain dicts of the right
    types instead and return them through here (the operation still declares `schema`, so the
    OpenAPI document is unchanged). With settings.API_CHECK_RESPONSES, as in the test suite, the
    data is validated by the schema as ninja would, and must encode to the very same bytes.
    """
    content = json.dumps(data, cls=NinjaJSONEncoder)
    if settings.API_CHECK_RESPONSES:
        adapter = _adapter(schema)
        expected = json.dumps(adapter.dump_python(adapter.validate_python(data)), cls=NinjaJSONEncoder)
        if expected != content:
            raise AssertionError(
                f"A rows_response differs from its schema {schema!r}:\n{content}\n{expected}"
            )
    return HttpResponse(content, status=status, content_type=_CONTENT_TYPE)


_CONTENT_TYPE = f"{JSONRenderer.media_type}; charset={JSONRenderer.charset}"


@cache
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)


def paginate(
    items: QuerySet[Any], page: int, size: int, serialize: Callable[[Iterable[Any]], list[Any]]
) -> dict[str, Any]:
    total = items.count()
    rows = list(items[page * size : page * size + size]) if total else []
    total_pages = math.ceil(total / size) if size else 0
    return {
        "content": serialize(rows),
        "first": page == 0,
        "last": page >= total_pages - 1,
        "number": page,
        "size": size,
        "totalElements": total,
        "totalPages": total_pages,
    }


# Responses every authenticated operation can give, declared so the schema documents them all.
COMMON_ERRORS: dict[int, Any] = {400: ErrorOut, 401: ErrorOut}
READ_ERRORS: dict[int, Any] = {**COMMON_ERRORS, 404: ErrorOut}
WRITE_ERRORS: dict[int, Any] = {**COMMON_ERRORS, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut}
# For operations with a rule the schema cannot state (quell.lib.errors.Unprocessable): still a 400,
# whose code each such operation's description names.
UNPROCESSABLE: dict[int, Any] = {400: ErrorOut}


def error(status: int, code: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"code": code, "message": message}


def describe_errors(errors: list[dict[str, Any]]) -> str:
    parts = []
    for item in errors[:5]:
        location = ".".join(
            str(part) for part in item.get("loc", ()) if part not in ("body", "payload", "query")
        )
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


def _whole(value: Any) -> Any:
    # JSON Schema's integers include 5.0, which a strict Body would refuse; a bool stays refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer of a request body, as JSON Schema reads one.
WholeNumber = BeforeValidator(_whole)
# Ids are 64-bit database keys; bounding them in the schema turns a huge number into a 400, not a 500.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID), WholeNumber]


def _to_utc(value: datetime) -> datetime:
    # Any offset moves a time in these years by less than a year, so it stays one Python (and
    # PostgreSQL) can hold; DATETIME_PATTERN says so in the schema.
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"the year must be from {FIRST_YEAR:04} to {LAST_YEAR}")
    # Databases keep UTC; an offset like -19:08 is valid ISO 8601 but PostgreSQL refuses it.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


def _iso_only(value: Any) -> Any:
    # pydantic reads a bare number as a Unix timestamp; the API documents ISO 8601, so a number is a
    # mistake to report rather than a date in 1970 to guess.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date-time such as 2026-11-26T06:00:00Z")
    if isinstance(value, str) and len(value) > DATETIME_MAX_LENGTH:
        raise ValueError(f"must be at most {DATETIME_MAX_LENGTH} characters")
    return value


class SchemaExtra:
    """Annotated metadata adding keywords to a type's JSON schema, for a rule a validator enforces.

    In what a request may send only: an answer holds what was stored, which other ways in (the Soda
    protocol, the CLI) may have stored under rules of their own.
    """

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: Any, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if handler.mode == "validation":
            schema.update(self.keywords)
        return schema


_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")

# Long enough for any ISO 8601 date-time (with nanoseconds and an offset), short enough for a query string.
DATETIME_MAX_LENGTH = 64
FIRST_YEAR, LAST_YEAR = 2, 9998
DATETIME_PATTERN = "^(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])-"
# An ISO 8601 date-time, converted to UTC (one without an offset is taken as UTC). Lax (Strict(False))
# inside a strict Body too: JSON carries a date-time as text.
UtcDatetime = Annotated[
    datetime,
    Strict(False),
    BeforeValidator(_iso_only),
    AfterValidator(_to_utc),
    SchemaExtra(pattern=DATETIME_PATTERN, maxLength=DATETIME_MAX_LENGTH),
]
MAX_PAGE = 1_000_000


class PageParams(Schema):
    page: int = Field(0, ge=0, le=MAX_PAGE, description="Page number, from 0.")
    size: int = Field(100, ge=1, le=settings.API_MAX_PAGE_SIZE, description="Items per page.")


class UserRef(Schema):
    id: int = Field(description="The user's id.")
    email: str = Field(description="The user's email address, which they log in with.")
    name: str = Field(description="The user's name (may be empty).")


def text(
    default: Any = ...,
    *,
    description: str,
    max_length: int | None = None,
    min_length: int | None = None,
    pattern: str = ONE_LINE_PATTERN,
    examples: list[Any] | None = None,
    alias: str | None = None,
) -> Any:
    """A text field: `pattern` (one of quell.lib.text's) goes into the schema only, since the service
    that takes the text refuses what it excludes itself, with a message naming the character."""
    return Field(
        default,
        description=description,
        max_length=max_length,
        min_length=min_length,
        examples=examples,
        alias=alias,
        json_schema_extra={"pattern": pattern},
    )


def request_examples(**examples: tuple[str, Any]) -> dict[str, Any]:
    """An operation's `openapi_extra` giving its JSON body named examples: name=(summary, value)."""
    return {
        "requestBody": {
            "content": {
                "application/json": {
                    "examples": {
                        name: {"summary": summary, "value": value}
                        for name, (summary, value) in examples.items()
                    }
                }
            }
        }
    }


# --- The schema's statement of Quell's own rules -----------------------------------------------------

# quell.lib.jsontext refuses NUL anywhere in a body or a query string; this says so for every string.
NUL_FREE = "^[^\\u0000]*$"
STORABLE_JSON = "StorableJson"
_STORABLE_REF = {"$ref": f"#/components/schemas/{STORABLE_JSON}"}
_STORABLE_JSON_SCHEMA: dict[str, Any] = {
    "description": (
        "Any JSON value whose strings and property names hold no NUL (U+0000), nested at most "
        f"{MAX_DEPTH} levels deep. A number written with a fraction or an exponent must fit a 64-bit "
        "float (`1e400` is refused); NaN and Infinity are not JSON."
    ),
    "anyOf": [
        {"type": "string", "pattern": NUL_FREE},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _STORABLE_REF},
        {"type": "object", "propertyNames": {"pattern": NUL_FREE}, "additionalProperties": _STORABLE_REF},
    ],
}
# Keywords that already bound a string's characters more tightly than NUL_FREE.
_BOUNDED_STRING = ("pattern", "format", "enum", "const")


def tidy_schema(document: dict[str, Any]) -> None:
    """State in the OpenAPI document what Quell enforces on every request, and drop generated titles.

    pydantic titles each property after its name ("Checkresultids"), which the docs show as if it
    meant something; the descriptions say what a field is. Every string gets NUL_FREE unless
    something stricter bounds it, every free-form object NUL-free property names, and a value of
    any type (a `dict[str, Any]` item) the StorableJson it must be.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for component in schemas.values():
        _tidy(component, titled=True)
    schemas[STORABLE_JSON] = _STORABLE_JSON_SCHEMA
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _tidy(parameter["schema"])
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _tidy(media["schema"])
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    _tidy(media["schema"])


def _tidy(node: Any, *, titled: bool = False) -> None:
    if not isinstance(node, dict):
        return
    if not titled:
        node.pop("title", None)
    types = node.get("type")
    if (types == "string" or (isinstance(types, list) and "string" in types)) and not any(
        key in node for key in _BOUNDED_STRING
    ):
        node["pattern"] = NUL_FREE
    if node.get("type") == "object":
        # Names and values a body may carry besides its fields are read (and refused) like any.
        node.setdefault("propertyNames", {"pattern": NUL_FREE})
        if node.get("additionalProperties", True) is True:
            node["additionalProperties"] = dict(_STORABLE_REF)
    for name, child in list(node.get("properties", {}).items()):
        if isinstance(child, dict) and _is_any(child):
            node["properties"][name] = {**child, **_STORABLE_REF}
        _tidy(node["properties"][name])
    for key in ("items", "additionalProperties", "propertyNames", "not"):
        _tidy(node.get(key))
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for child in node.get(key, []):
            _tidy(child)


def _is_any(schema: dict[str, Any]) -> bool:
    """Whether a property's schema allows any value (`Any` in pydantic): it has no keyword but notes."""
    return not set(schema) - {"title", "description", "default", "examples"}


def user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "name": user.name}
