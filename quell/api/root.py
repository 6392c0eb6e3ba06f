"""The REST API's root: the NinjaAPI that mounts every domain's router, with its error handlers.

It sits above the routers (quell.api.accounts, .automation, .catalog, .mutes, .incidents, .integrations,
.ingest), which sit above the helpers they share (quell.api.base); nothing imports this module but the URLs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger
from ninja.openapi.schema import OpenAPISchema

from quell.api.accounts import router as accounts_router
from quell.api.automation import router as automation_router
from quell.api.base import (
    ApiKeyBasicAuth,
    BrowserSessionAuth,
    StorableJSONParser,
    describe_errors,
    tidy_schema,
)
from quell.api.catalog import router as catalog_router
from quell.api.incidents import router as incidents_router
from quell.api.ingest import router as ingest_router
from quell.api.integrations import router as integrations_router
from quell.api.mutes import date_the_examples
from quell.api.mutes import router as mutes_router
from quell.lib.errors import QuellError
from quell.lib.jsontext import MAX_DEPTH, UnreadableJSON

API_DESCRIPTION = f"""\
Quell's REST API ([back to Quell](/)). Shapes follow Soda Cloud's public API v1, so clients written for
Soda work against it.

**Authentication.** HTTP Basic with an API key: `apiKeyId:apiKeySecret` (create one on your profile page
or with `quell apikey create --email you@example.com`). A key acts as its user: every operation says
which permission it needs, and an operation on something you cannot see answers 404 as if it did not
exist. In the browser, the session you are signed in with works too (with its CSRF token).

**Errors** are `{{"code", "message", "field"}}`:

- **400** `invalid_request` and similar: the request breaks this schema. The schema states every limit
  Quell enforces (lengths, ranges, list sizes, allowed characters), so a request the schema allows is
  refused only for a rule the schema cannot state:
- **400 with a rule's code** (for example `resolution_notes_required`, `lead_cannot_manage`,
  `unknown_check_results`): the request fits the schema but breaks a rule that depends on what is
  stored (an id that names nothing you can see, a result that passed, a lead who may not manage the
  dataset), on this installation's settings, or on a document's own format. Each operation names the
  codes of its rules in its description.
- **401** without valid credentials, **403** without the permission, **404** for an object that does not
  exist or that you cannot see, **409** for a conflict (a name that is taken, an incident changed since
  you read it), **413** for a body over the installation's limit (10 MiB by default), **429** while a
  lockout lasts.

**Text.** Every string, in bodies and query strings alike, is free of NUL (U+0000); names and titles hold
no control characters or bidirectional overrides; JSON bodies nest at most {MAX_DEPTH} levels deep.

**Ids** are positive 64-bit integers. The examples name objects of the demo organisation (`quell demo`,
or the quick start), so "Try it out" works on a fresh demo installation.
"""


class QuellAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document states the rules Quell enforces everywhere (tidy_schema)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        tidy_schema(document)
        date_the_examples(document)
        return document


class QuellSwagger(Swagger):
    """ninja's Swagger UI page (its scripts from Quell's static files) with a way back to Quell."""

    template = "api/docs.html"


def build_api() -> NinjaAPI:
    api = QuellAPI(
        title="Quell API",
        version="1",
        description=API_DESCRIPTION,
        urls_namespace="api",
        auth=[ApiKeyBasicAuth(), BrowserSessionAuth()],
        parser=StorableJSONParser(),
        docs=QuellSwagger(),
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
        return respond(request, 400, {"code": "invalid_request", "message": describe_errors(exc.errors)})

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

    api.add_router("/", accounts_router)
    api.add_router("/", catalog_router)
    api.add_router("/", mutes_router)
    api.add_router("/", incidents_router)
    api.add_router("/", automation_router)
    api.add_router("/integrations", integrations_router)
    api.add_router("/", ingest_router)
    return api
