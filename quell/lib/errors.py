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
