"""What a name, a title or a multi-line text may hold: no control characters, no bidi overrides.

A control character (a bell, an escape, a NUL) or a bidirectional override/isolate (U+202A-U+202E,
U+2066-U+2069) in a name is invisible or reorders what follows it, so two names that look the same
differ, or a name shows something other than what it is ("Trojan Source"). They are refused, not
stripped: stripping would silently rename what a tool pushed (and could merge two of its names into
one), while a refusal names the field and the character, and the sender can fix the source. Joiners
(U+200C, U+200D) and the left-to-right/right-to-left marks stay allowed: scripts and emoji need them.
"""

from __future__ import annotations

import re
import unicodedata

from quell.lib.errors import Invalid

# Character classes (the inside of [...]). C0 and C1 controls and DEL; line and paragraph separators;
# bidi embeddings, overrides and isolates. Surrogates are refused too (a lone one cannot be stored as
# UTF-8), by the regexes below only: JSON Schema's patterns cannot name them, and no JSON text that
# reaches a service holds one (quell.lib.jsontext refuses them first).
_ONE_LINE_REFUSED = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
# The same, less the tab, line feed and carriage return a multi-line text is made of (a browser sends
# a textarea's lines with CR LF).
_TEXT_REFUSED = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
_REFUSED_IN_ONE_LINE = re.compile(f"[{_ONE_LINE_REFUSED}{_SURROGATES}]")
_REFUSED_IN_TEXT = re.compile(f"[{_TEXT_REFUSED}{_SURROGATES}]")
# What str.strip() removes (str.isspace()), so that "not blank once stripped" can be written as a pattern.
WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def escaped(character_class: str) -> str:
    """A character class written with \\uXXXX escapes, which Python's, JavaScript's and Rust's regular
    expressions (the API's clients and its fuzzer) all read alike; "-" stays a range."""
    return "".join(ch if ch == "-" else f"\\u{ord(ch):04x}" for ch in character_class)


# The rules above as JSON Schema patterns, for the API's schema (quell.api.base): a one-line name,
# a multi-line text, and each of them with at least one character that is not whitespace.
ONE_LINE_PATTERN = f"^[^{escaped(_ONE_LINE_REFUSED)}]*$"
TEXT_PATTERN = f"^[^{escaped(_TEXT_REFUSED)}]*$"
NON_BLANK_ONE_LINE_PATTERN = (
    f"^[^{escaped(_ONE_LINE_REFUSED)}]*"
    f"[^{escaped(_ONE_LINE_REFUSED)}{escaped(WHITESPACE)}]"
    f"[^{escaped(_ONE_LINE_REFUSED)}]*$"
)
# One line, not blank, and no whitespace at either end: a value that str.strip() leaves as it is.
TRIMMED_ONE_LINE_PATTERN = (
    f"^[^{escaped(_ONE_LINE_REFUSED)}{escaped(WHITESPACE)}]"
    f"(?:[^{escaped(_ONE_LINE_REFUSED)}]*[^{escaped(_ONE_LINE_REFUSED)}{escaped(WHITESPACE)}])?$"
)
NON_BLANK_TEXT_PATTERN = f"^[^{escaped(_TEXT_REFUSED)}]*[^{escaped(_TEXT_REFUSED)}{escaped(WHITESPACE)}][^{escaped(_TEXT_REFUSED)}]*$"


def refused_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of `value` that a name (or, with `multiline`, a text) may not hold."""
    found = (_REFUSED_IN_TEXT if multiline else _REFUSED_IN_ONE_LINE).search(value)
    return found.group() if found else None


def describe(character: str) -> str:
    """A character as messages name it: U+202E (RIGHT-TO-LEFT OVERRIDE), or U+0007 if it has no name."""
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X}" + (f" ({name})" if name else "")


def require_plain_text(value: str, field: str, *, label: str = "", multiline: bool = False) -> str:
    """`value` unchanged, or Invalid (code `invisible_character`, naming `field`) if it holds a
    control character or a bidi override; `multiline` allows line breaks and tabs. `label` is how
    the message names the field ("The title"); the field's own name by default."""
    character = refused_character(value, multiline=multiline)
    if character is None:
        return value
    label = label or field
    if character in "\n\r\u2028\u2029":
        message = f"{label} must be one line: remove the line break ({describe(character)})."
    else:
        message = f"{label} must not contain invisible control characters: remove {describe(character)}."
    raise Invalid(message, code="invisible_character", field=field)
