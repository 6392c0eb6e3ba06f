"""Domain errors: values a caller can act on, mapped to `{"code", "message"}` and an HTTP status."""

from __future__ import annotations

from typing import Any


class QuellError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class Invalid(QuellError):
    """The request is well-formed but breaks a rule; nothing was written."""

    status = 400
    code = "invalid"


class NotFound(QuellError):
    """The object does not exist, or the caller may not know that it exists."""

    status = 404
    code = "not_found"


class Forbidden(QuellError):
    """The caller can see the object but may not do this to it."""

    status = 403
    code = "forbidden"


class Conflict(QuellError):
    """The caller's copy is stale: someone changed the object since it was read."""

    status = 409
    code = "conflict"

    def __init__(self, message: str, *, current: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current = current

    def as_dict(self) -> dict[str, Any]:
        body = super().as_dict()
        if self.current is not None:
            body["current"] = self.current
        return body


class Taken(Invalid):
    """The name (or email address) is already another object's; nothing was written.

    A 409: the request conflicts with what exists, and asking again cannot succeed. It is an
    Invalid, so a form shows it next to its field like any other refusal.
    """

    status = 409
    code = "taken"


class Unprocessable(Invalid):
    """The request fits the API's schema but breaks a rule the schema cannot state; nothing was written.

    Rules that depend on what is stored (an id that names nothing the caller can see, a result that
    passed, a lead who may not manage the dataset, a wrong current password), on the installation
    (an address its network policy refuses), on a document's own format (a dbt file that is not
    one), or that relate items of a list to each other (the same user named twice).

    A 400, as every refusal of a request has been since Quell's first API (Soda Cloud's API answers
    400 too, and clients test for it), but one whose `code` the operation's description names: a
    400 with any other code means the request breaks the schema, which states every limit it can
    (tests/schemathesis_hooks.py holds Schemathesis to that). It is an Invalid, so a form shows it
    next to its field like any other refusal.
    """

    status = 400
    code = "unprocessable"
