"""Whether to offer the settings page of incident rules to someone who is not an admin."""

from __future__ import annotations

from typing import Any

from django import template

from quell.accounts.models import User
from quell.incidents import rule_queries

register = template.Library()


@register.filter
def makes_rules(user: Any) -> bool:
    """Whether `user` may make incident rules (an admin, or someone who configures a dataset): the
    top navigation then leads them to the rules. One probe of their responsibilities."""
    return isinstance(user, User) and rule_queries.may_make_rules(user)
