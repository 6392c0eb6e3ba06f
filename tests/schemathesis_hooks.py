"""Schemathesis's hooks for Quell's API (SCHEMATHESIS_HOOKS=tests.schemathesis_hooks; tests/test_openapi.py
sets it).

Quell answers a request that fits the schema but breaks a rule the schema cannot state (an id that
names nothing the caller can see, a lead who may not manage the dataset, resolving without notes)
with a 400, as it has since its first API and as Soda Cloud's API does, so clients that test for
400 keep working. schemathesis.toml therefore lets positive_data_acceptance expect a 400, and this
check takes back what that gives away: a schema-valid request may be refused only with a code that
the operation's description names. A 400 `invalid_request`, or any code the description does not
name, means the schema failed to state a limit the server enforces, and fails the run.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

# A code as the descriptions name them: `resolution_notes_required`.
NAMED_CODE = re.compile(r"`([a-z][a-z0-9_]*)`")
# The codes of a request that breaks the schema itself: never the answer to a schema-valid one.
SCHEMA_CODES = {"invalid_request", "invalid_json"}


def codes_named_by(operation: Any) -> set[str]:
    raw = operation.definition.raw
    named = set(NAMED_CODE.findall(raw.get("description", "")))
    return named - SCHEMA_CODES


@schemathesis.check
def refused_only_for_a_named_rule(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    named = codes_named_by(case.operation)
    if code not in named:
        raise AssertionError(
            f"A request that fits the schema was refused with 400 `{code}`, which the operation's "
            f"description does not name (it names {sorted(named) or 'no rule'}): the schema should "
            f"state this limit, or the description the rule. Answer: {response.text[:300]}"
        )
    return None
