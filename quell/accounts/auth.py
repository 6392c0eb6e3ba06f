"""Log-in by email (case-insensitive) and by API key."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.utils import timezone

from quell.accounts.models import ApiKey, User


class EmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = (username or kwargs.get("email") or "").strip().lower()
        if not email or password is None:
            return None
        user = User.objects.filter(email=email, is_system=False).first()
        if user is None:
            # Hash anyway so a missing account takes as long as a wrong password.
            User().set_password(password)
            return None
        if user.check_password(password) and user.is_active:
            return user
        return None


def user_for_api_key(key_id: str, secret: str) -> User | None:
    """The active user that owns this live key, or None. Never Quell itself (User.is_system): the
    services give it no key, and one put in the table by other means opens nothing either."""
    key = (
        ApiKey.objects.select_related("user")
        .filter(key_id=key_id, revoked_at__isnull=True, user__is_system=False)
        .first()
    )
    if key is None or not key.matches(secret) or not key.user.is_active:
        return None
    now = timezone.now()
    # Recording every use would write on every read; once a minute is enough to show "last used".
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user
