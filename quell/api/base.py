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
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja import Field, NinjaAPI, Path
from ninja import Schema as NinjaSchema  # noqa: TID251 (the one subclass)
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBasicAuth, SessionAuth
from pydantic import AfterValidator, BeforeValidator, ModelWrapValidatorHandler, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from quell.accounts.auth import user_for_api_key
from quell.accounts.models import User
from quell.lib.errors import QuellError
from quell.lib.jsontext import UnreadableJSON, parse_json, unstorable


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


class ErrorOut(Schema):
    code: str
    message: str
    field: str | None = None


T = TypeVar("T")


class Page(Schema, Generic[T]):
    """Soda Cloud's page shape: `number` counts from 0."""

    content: list[T]
    first: bool
    last: bool
    number: int
    size: int
    totalElements: int
    totalPages: int


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


def error(status: int, code: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"code": code, "message": message}


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for item in errors[:5]:
        location = ".".join(
            str(part) for part in item.get("loc", ()) if part not in ("body", "payload", "query")
        )
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="Quell API",
        version="1",
        description=(
            "Quell's REST API. Shapes follow Soda Cloud's public API v1 so clients written for Soda work. "
            "Authenticate with HTTP Basic `apiKeyId:apiKeySecret` (create a key on your profile page or "
            "with `quell apikey create`). Errors are `{code, message}`."
        ),
        urls_namespace="api",
        auth=[ApiKeyBasicAuth(), BrowserSessionAuth()],
        parser=StorableJSONParser(),
    )

    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        response = api.create_response(request, body, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Basic realm="Quell"'
        return response

    @api.exception_handler(QuellError)
    def domain_error(request: HttpRequest, exc: QuellError) -> HttpResponse:
        response = respond(request, exc.status, exc.as_dict())
        # A refusal that lasts a while (a locked account) says when to try again.
        retry_after = getattr(exc, "retry_after_seconds", None)
        if isinstance(retry_after, int):
            response["Retry-After"] = str(max(1, retry_after))
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return respond(request, 400, {"code": "invalid_request", "message": _describe(exc.errors)})

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = "Authenticate with HTTP Basic using an API key id and secret."
        return respond(request, 401, {"code": "unauthorized", "message": message})

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, UnreadableJSON):
            # The reader's own message, under the code /api/v1 has always given an unreadable body
            # (the Soda protocol's endpoints keep theirs, invalid_json).
            return respond(request, 400, exc.__cause__.as_dict() | {"code": "invalid_request"})
        codes = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            429: "too_many_requests",
        }
        return respond(
            request, exc.status_code, {"code": codes.get(exc.status_code, "error"), "message": str(exc)}
        )

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, {"code": "not_found", "message": "Not found."})

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return respond(
            request, 413, {"code": "body_too_large", "message": f"The body is over {limit} bytes."}
        )

    from quell.accounts.api import router as accounts_router
    from quell.catalog.api import router as catalog_router
    from quell.incidents.api import router as incidents_router
    from quell.ingest.api import router as ingest_router
    from quell.integrations.api import router as integrations_router

    api.add_router("/", accounts_router)
    api.add_router("/", catalog_router)
    api.add_router("/", incidents_router)
    api.add_router("/integrations", integrations_router)
    api.add_router("/", ingest_router)
    return api


# Ids are 64-bit database keys; bounding them in the schema turns a huge number into a 400, not a 500.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _to_utc(value: datetime) -> datetime:
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
    return value


_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")

UtcDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_to_utc)]


class PageParams(Schema):
    page: int = Field(0, ge=0, le=1_000_000, description="Page number, from 0.")
    size: int = Field(100, ge=1, le=settings.API_MAX_PAGE_SIZE, description="Items per page.")


class UserRef(Schema):
    id: int
    email: str
    name: str


def user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "name": user.name}
