"""Remembering that a service already checked an object for a user.

A page asks several services about one incident or check (its timeline, its links, what may be
attached to it). Each service checks visibility itself, which re-read the object with its details
every time: the incident page loaded its incident four times. A service that fetched an object for a
user marks it; another service given that object for the same user uses it as it is, and anything
else (an id, an object fetched some other way or for someone else) is fetched and checked again.

The user is any model instance (accounts' User in practice): lib sits below every app and imports none.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)

_ATTR = "_quell_checked_for"


def mark_checked(obj: M, user: models.Model) -> M:
    """Record that `obj` was fetched through a service's visibility check for `user`."""
    setattr(obj, _ATTR, user.pk)
    return obj


def checked_for(obj: object, user: models.Model) -> bool:
    """Whether `obj` is a model instance a service fetched and checked for this `user`."""
    return isinstance(obj, models.Model) and getattr(obj, _ATTR, None) == user.pk
