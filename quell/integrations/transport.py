"""How an event reaches a receiver: one Transport per kind, over one guarded HTTP poster.

`Transport.notify()` returns what the receiver answered, or raises TransportError; with
`permanent=True` the delivery is not retried, and with `disable=True` the integration is turned off.
Subclasses build the request (`build`) and may read a successful answer (`accept`); the status code
rules and the HTTP plumbing live here once for every kind.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings

from quell.integrations.models import Delivery, Event, Integration
from quell.integrations.netguard import DestinationRefused, guarded_client, url_refusal
from quell.lib.jsontext import UnreadableJSON, parse_json

# httpx logs every request's full URL at INFO; a Slack or Teams URL is itself the credential.
logging.getLogger("httpx").setLevel(logging.WARNING)

USER_AGENT = "Quell-Webhooks/1"
# What an attempt keeps of the answer, for the delivery log.
EXCERPT_CHARS = 1000
# What is read of an answer at most (enough for a link-back JSON); the rest is not waited for.
MAX_ANSWER_BYTES = 64 * 1024
# 4xx answers that mean "not now" rather than "never".
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
# A Retry-After longer than this is not believed.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0
# RFC 9110: a field name is a token.
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Visible ASCII with spaces or tabs only between visible characters: httpx encodes values as ASCII,
# and h11 refuses control characters and whitespace at either end.
HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[ \t]*[\x21-\x7e])*)?")


@dataclass
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    status_code: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def excerpt(self) -> str:
        return self.body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]

    def json(self) -> Any:
        try:
            return parse_json(self.body, subject="The answer")
        except UnreadableJSON:
            return None


@dataclass
class Sent:
    """A successful delivery: what the receiver answered, and the link it gave back, if any."""

    status_code: int
    excerpt: str
    link: tuple[str, str] | None = None


class TransportError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        disable: bool = False,
        status_code: int | None = None,
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent or disable
        self.disable = disable
        self.status_code = status_code
        self.excerpt = excerpt
        self.retry_after = retry_after


def header_problem(name: str, value: str) -> str | None:
    """Why HTTP cannot carry this custom header exactly as it is, or None.

    The settings refuse such a header when it is given, and a delivery refuses it for good (one stored
    before this rule existed) rather than failing on it every time.
    """
    if not HEADER_NAME.fullmatch(name):
        return (
            f"The header name {name!r} may hold only letters, digits and !#$%&'*+-.^_`|~ "
            "(no spaces or colons)."
        )
    if HEADER_VALUE.fullmatch(value):
        return None
    if "\r" in value or "\n" in value:
        return f"The value of {name} must be on one line."
    odd = next((ch for ch in value if not (" " <= ch <= "~" or ch == "\t")), None)
    if odd is not None and not odd.isascii():
        return f"The value of {name} holds {odd!r}, which an HTTP header cannot carry: use ASCII characters only."
    if odd is not None:
        return f"The value of {name} holds a control character (U+{ord(odd):04X}), which HTTP does not allow."
    return f"The value of {name} starts or ends with a space or tab, which HTTP does not allow."


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def post(request: OutboundRequest, timeout: float | None = None) -> Answer:
    """POST through the guarded client, reading at most MAX_ANSWER_BYTES within `timeout` seconds overall."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS if timeout is None else timeout
    # The judgement the settings made when the URL was given, made again: a URL stored before a rule
    # existed fails for good with the same words instead of being retried for days.
    refusal = url_refusal(request.url)
    if refusal:
        raise TransportError(f"Refused: {refusal.message}", permanent=True)
    deadline = time.monotonic() + timeout
    headers = {"content-type": "application/json", "user-agent": USER_AGENT, **request.headers}
    try:
        with (
            guarded_client(timeout) as client,
            client.stream("POST", request.url, content=request.body, headers=headers) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_ANSWER_BYTES:
                    break
                if time.monotonic() > deadline:
                    raise TransportError(f"The receiver took more than {timeout:g} s to answer.")
            return Answer(response.status_code, b"".join(chunks)[:MAX_ANSWER_BYTES], dict(response.headers))
    except DestinationRefused as refused:
        raise TransportError(f"Refused: {refused}", permanent=True) from None
    except httpx.TimeoutException:
        raise TransportError(f"No answer within {timeout:g} s.") from None
    except httpx.TooManyRedirects:
        raise TransportError("The receiver redirected more than 5 times.") from None
    except httpx.UnsupportedProtocol as error:
        raise TransportError(f"Unsupported URL: {error}", permanent=True) from None
    except httpx.HTTPError as error:
        raise TransportError(f"{type(error).__name__}: {error}") from None


class Transport:
    """Sends events to one integration."""

    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def notify(self, event: Event, delivery: Delivery) -> Sent:
        raise NotImplementedError


class HttpTransport(Transport):
    def build(self, event: Event, delivery: Delivery) -> OutboundRequest:
        raise NotImplementedError

    def notify(self, event: Event, delivery: Delivery) -> Sent:
        answer = post(self.build(event, delivery))
        self.raise_for_answer(answer)
        return self.accept(event, answer)

    def raise_for_answer(self, answer: Answer) -> None:
        status = answer.status_code
        if 200 <= status < 300:
            return
        described = f"The receiver answered {status}."
        if status == 410:
            raise TransportError(
                f"{described} It says this URL is gone, so Quell turned the integration off.",
                disable=True,
                status_code=status,
                excerpt=answer.excerpt,
            )
        if 400 <= status < 500 and status not in RETRYABLE_4XX:
            raise TransportError(
                f"{described} Not retried: the request itself was refused.",
                permanent=True,
                status_code=status,
                excerpt=answer.excerpt,
            )
        raise TransportError(
            described,
            status_code=status,
            excerpt=answer.excerpt,
            retry_after=parse_retry_after(answer.headers.get("retry-after")),
        )

    def accept(self, event: Event, answer: Answer) -> Sent:
        return Sent(answer.status_code, answer.excerpt)


def compact_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
