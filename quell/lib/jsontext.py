"""The one reader of JSON that someone else wrote: request bodies, Soda Core's protocol, uploads, files.

`parse_json` answers the parsed value or raises `UnreadableJSON` (an `Invalid`, so a 400) whose
message names what is wrong and where. Besides what `json.loads` refuses it refuses what Quell
could not keep or walk safely:

- nesting deeper than `MAX_DEPTH` (json.loads would raise RecursionError far deeper, and every
  later walk over the value, pydantic's included, recurses too);
- NUL, raw or as `\\u0000` (PostgreSQL text cannot hold it; SQLite would, so refusing it on both
  keeps the databases alike);
- lone surrogates such as `\\ud800` (not Unicode: no database can store them as UTF-8);
- `NaN`, `Infinity` and numbers too large for a 64-bit float (not JSON; JSON columns refuse them);
- bytes that are not valid UTF-8 (or UTF-16/32, which JSON's detection also reads).

Duplicate names in an object are accepted and the last one wins, as in JavaScript and Python:
RFC 8259 allows it, and nothing in front of Quell reads bodies for it to disagree with.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from quell.lib.errors import Invalid

# Deeper than any results file or payload Quell reads (dbt manifests, the deepest, stay under 20),
# and far inside Python's recursion limit for every walk that follows the parse.
MAX_DEPTH = 100


class UnreadableJSON(Invalid):
    """A JSON text Quell cannot read; `problem` is the clause after the subject, for callers that
    name the text themselves (a file's path)."""

    code = "invalid_json"

    def __init__(self, subject: str, problem: str, *, field: str | None = None) -> None:
        super().__init__(f"{subject} {problem}.", field=field)
        self.problem = problem


def parse_json(raw: bytes | str, *, subject: str = "The request body") -> Any:
    """The value of the JSON text `raw`, or UnreadableJSON naming `subject` and the problem.

    Bytes are decoded as json.loads does (UTF-8, with or without a byte order mark, or UTF-16/32),
    but strictly: a malformed sequence is an error, not a character to carry on with.
    """
    text = raw if isinstance(raw, str) else _decode(raw, subject)
    nul = text.find("\x00")
    if nul >= 0:
        raise UnreadableJSON(subject, f"contains a NUL character (\\u0000) at {_where(text, nul)}")
    numbers: list[str] = []

    def not_a_number(literal: str) -> object:
        # Kept in place as a marker, so that the refusal can name where it is (results[1].value).
        numbers.append(literal)
        return _NOT_A_NUMBER

    def finite(literal: str) -> float | object:
        number = float(literal)
        return number if math.isfinite(number) else not_a_number(literal)

    try:
        value = json.loads(text, parse_constant=not_a_number, parse_float=finite)  # noqa: TID251
    except RecursionError:
        raise UnreadableJSON(subject, f"is nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as error:
        raise UnreadableJSON(subject, f"is not JSON ({error})") from None
    except ValueError:
        # Python's limit on the digits of an integer (4,300), far past any 64-bit column.
        raise UnreadableJSON(subject, "contains a number with too many digits") from None
    if numbers:
        literal = numbers[0] if len(numbers[0]) <= 20 else f"{numbers[0][:20]}..."
        path = _path_of(value, lambda item: item is _NOT_A_NUMBER)
        where = path or "the top level"
        problem = (
            f"contains {literal} at {where}, which is not JSON (send null or a number)"
            if literal in ("NaN", "Infinity", "-Infinity")
            else f"contains the number {literal} at {where}, too large for a 64-bit float"
        )
        raise UnreadableJSON(subject, problem, field=path)
    # Counting brackets is far cheaper than walking the value, and bounds its depth from above.
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(MAX_DEPTH, value):
        raise UnreadableJSON(subject, f"is nested more than {MAX_DEPTH} levels deep")
    # A NUL or a lone surrogate in a value can only come from a \u escape in the text, so a text
    # without one (nearly all of them) skips the walk over every string.
    if _ESCAPED_UNSTORABLE.search(text):
        found = _unstorable_at(value)
        if found:
            raise UnreadableJSON(subject, found[0], field=found[1])
    return value


# What a non-finite number parses to, until the parse is over and its place can be named.
_NOT_A_NUMBER = object()


_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _decode(raw: bytes, subject: str) -> str:
    encoding = json.detect_encoding(raw)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1].hex()
        name = encoding.upper().replace("-SIG", "")
        raise UnreadableJSON(
            subject, f"is not valid {name}: byte 0x{byte} at offset {error.start} ({error.reason})"
        ) from None


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line} column {column}"


def _deeper_than(limit: int, value: Any) -> bool:
    """Whether `value` nests containers more than `limit` deep: level by level, so any depth is safe."""
    level = [value] if value.__class__ is dict or value.__class__ is list else []
    for _ in range(limit):
        below = []
        for item in level:
            for child in item.values() if item.__class__ is dict else item:
                # json.loads makes exactly dict and list, so a class check is enough (and cheapest).
                if child.__class__ is dict or child.__class__ is list:
                    below.append(child)
        if not below:
            return False
        level = below
    return True


def unstorable(value: Any) -> str | None:
    """What in `value` (parsed JSON, a query string's values) no database could store: a NUL or a
    lone surrogate, as a clause naming where ("contains a NUL character (\\u0000) at results[0].name")."""
    found = _unstorable_at(value)
    return found[0] if found else None


def _unstorable_at(value: Any) -> tuple[str, str | None] | None:
    """unstorable's clause and the path it names (None for the top level)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            problem = _unstorable_text(item)
            if problem:
                return f"contains {problem} at {path or 'the top level'}", path or None
        elif isinstance(item, dict):
            for key in item:
                problem = _unstorable_text(key)
                if problem:
                    where = path or "the top level"
                    return f"contains {problem} in a name in the object at {where}", path or None
            # Reversed, so that the first problem in the text is the one reported.
            stack.extend((item[key], f"{path}.{key}" if path else key) for key in reversed(item))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in reversed(list(enumerate(item))))
    return None


def _path_of(value: Any, wanted: Callable[[Any], bool]) -> str | None:
    """The path of the first item in `value` (in the text's order) that is `wanted`, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if wanted(item):
            return path
        if isinstance(item, dict):
            stack.extend((item[key], f"{path}.{key}" if path else key) for key in reversed(item))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in reversed(list(enumerate(item))))
    return None


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"a lone surrogate (\\u{ord(text[error.start]):04x})"
    return None
