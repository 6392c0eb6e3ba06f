"""The titles of the incidents a rule opens, from its title template (shared by the rules' validation
and quell.automation, so a template that is accepted always renders)."""

from __future__ import annotations

import string
from collections.abc import Mapping

from quell.lib.errors import Invalid

# What a template may name: {check} {dataset} {dataSource} {outcome} {column}.
PLACEHOLDERS = ("check", "dataset", "dataSource", "outcome", "column")
TITLE_MAX = 300


def check_title_template(template: str) -> str:
    """The template, stripped; Invalid when it is empty, malformed or names an unknown placeholder."""
    template = (template or "").strip()
    if not template:
        raise Invalid("A rule needs a title template.", code="title_template_required", field="titleTemplate")
    if len(template) > TITLE_MAX:
        raise Invalid(
            f"The title template is longer than {TITLE_MAX} characters.",
            code="too_long",
            field="titleTemplate",
        )
    try:
        fields = [
            name for _, name, spec, conversion in string.Formatter().parse(template) if name is not None
        ]
    except ValueError as error:
        raise Invalid(
            f"The title template is malformed ({error}); write a literal brace as {{{{ or }}}}.",
            code="invalid_title_template",
            field="titleTemplate",
        ) from None
    if any(spec or conversion for _, name, spec, conversion in string.Formatter().parse(template) if name):
        # render_title fills in text, for which a format spec such as {check:d} raises.
        raise Invalid(
            "The title template names a placeholder with a format or conversion ({check:d}, {check!r}); "
            "name it plainly, as {check}.",
            code="invalid_title_template",
            field="titleTemplate",
        )
    unknown = sorted({name for name in fields if name not in PLACEHOLDERS})
    if unknown or any(not name for name in fields):
        named = ", ".join("{" + name + "}" for name in unknown) or "{}"
        allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        raise Invalid(
            f"The title template names {named}; it may name {allowed}.",
            code="invalid_title_template",
            field="titleTemplate",
        )
    return template


def render_title(template: str, values: Mapping[str, str]) -> str:
    """The title for these values (every placeholder of PLACEHOLDERS), cut to fit an incident's
    title and kept on one line (a check's name may span several)."""
    shown = {name: " ".join(str(values.get(name, "")).split()) for name in PLACEHOLDERS}
    title = " ".join(string.Formatter().vformat(template, (), shown).split())
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title or "Incident"
