"""Log-in tokens for the Soda Cloud protocol, which carries a token in each request body."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from quell.accounts.models import ApiKey


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash suffices and a stolen table yields nothing usable.
    return hashlib.sha256(token.encode()).hexdigest()


class SodaToken(models.Model):
    """What `login` hands Soda Core: valid until `expires_at`, and only while its API key is live."""

    token_hash = models.CharField(max_length=64, unique=True)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="soda_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Clearing out expired tokens at each login.
            models.Index(fields=["expires_at"], name="soda_token_expiry"),
        ]

    def __str__(self) -> str:
        return f"token for {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M}"

    @classmethod
    def issue(cls, api_key: ApiKey, lifetime: timedelta) -> tuple[SodaToken, str]:
        """Create a token and return it with its clear text, which is not stored."""
        token = secrets.token_urlsafe(32)
        now = timezone.now()
        row = cls.objects.create(
            token_hash=hash_token(token),
            api_key=api_key,
            user=api_key.user,
            created_at=now,
            expires_at=now + lifetime,
        )
        return row, token
