"""Log-in for Soda Core: API key in, short-lived token out; the token then stands for the key's user."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from quell.accounts.auth import user_for_api_key
from quell.accounts.models import ApiKey, User
from quell.ingest.models import SodaToken, hash_token
from quell.lib.errors import QuellError


class Unauthenticated(QuellError):
    """The token or key is unknown, expired or revoked; Soda Core answers a 401 by logging in again."""

    status = 401
    code = "unauthorized"


def log_in(api_key_id: str, api_key_secret: str) -> str:
    """A new token for the user owning this live API key."""
    user = user_for_api_key(api_key_id, api_key_secret) if api_key_id and api_key_secret else None
    if user is None:
        raise Unauthenticated("The API key id or secret is wrong, or the key was revoked.")
    key = ApiKey.objects.get(key_id=api_key_id)
    now = timezone.now()
    SodaToken.objects.filter(expires_at__lt=now).delete()
    _, token = SodaToken.issue(key, timedelta(seconds=settings.SODA_TOKEN_SECONDS))
    return token


def user_for_token(token: object) -> User:
    """The user a live token stands for; Unauthenticated when it is missing, unknown or expired."""
    if not isinstance(token, str) or not token:
        raise Unauthenticated("Log in first: the request carries no token.")
    row = (
        SodaToken.objects.select_related("user")
        .filter(
            token_hash=hash_token(token),
            expires_at__gt=timezone.now(),
            api_key__revoked_at__isnull=True,
            user__is_active=True,
        )
        .first()
    )
    if row is None:
        raise Unauthenticated("The token is unknown or has expired; log in again.")
    return row.user
