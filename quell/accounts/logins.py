"""Logging in with an email and a password, and the lockout after too many wrong passwords.

Every password check (a log-in, or the current password when changing one in
quell.accounts.services) goes through `check_password_throttled`, which records each attempt as a
failure before checking, so that simultaneous guesses count against each other. The failures are
rows of LoginFailure, which stop counting after LOGIN_WINDOW; the checks here and
quell.ops.housekeeping delete the old ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.contrib.auth import authenticate
from django.utils import timezone

from quell.accounts.models import LoginFailure, User
from quell.lib.errors import Invalid

# Five wrong passwords for one account within a quarter of an hour lock that account's web log-in
# for the rest of the quarter; an address gets more, since a whole office may share one. The address
# is the client's (quell.lib.network.client_address), never the reverse proxy's.
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_FAILURES_PER_EMAIL = 5
LOGIN_FAILURES_PER_IP = 30


@dataclass(frozen=True)
class LoginThrottle:
    blocked: bool
    retry_after_seconds: int = 0


class TooManyAttempts(Invalid):
    """Too many wrong passwords for this account or from this address lately; try again later."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after_seconds: int, *, field: str | None = None) -> None:
        minutes = max(1, -(-retry_after_seconds // 60))
        super().__init__(
            f"Too many wrong passwords. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            field=field,
        )
        self.retry_after_seconds = retry_after_seconds


def _login_email(email: str) -> str:
    return (email or "").strip().lower()[:254]


def _throttle(email: str, ip: str | None, now: datetime, *, besides: int | None = None) -> LoginThrottle:
    since = now - LOGIN_WINDOW
    failures = LoginFailure.objects.filter(at__gte=since)
    if besides is not None:
        failures = failures.exclude(pk=besides)
    checks = [(failures.filter(email=email), LOGIN_FAILURES_PER_EMAIL)]
    if ip:
        checks.append((failures.filter(ip=ip), LOGIN_FAILURES_PER_IP))
    wait = 0
    for counted, limit in checks:
        # The block ends when the oldest failure that still counts towards the limit leaves the window.
        times = list(counted.order_by("-at").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            wait = max(wait, int((times[-1] + LOGIN_WINDOW - now).total_seconds()) + 1)
    return LoginThrottle(blocked=wait > 0, retry_after_seconds=wait)


def login_throttle(email: str, ip: str | None) -> LoginThrottle:
    """Whether log-in attempts for this email or from this address are refused for now."""
    return _throttle(_login_email(email), ip, timezone.now())


def record_login_failure(email: str, ip: str | None) -> None:
    now = timezone.now()
    LoginFailure.objects.create(email=_login_email(email), ip=ip or None, at=now)
    # Old failures count for nothing; clearing them here keeps the table small without a cron job.
    LoginFailure.objects.filter(at__lt=now - 4 * LOGIN_WINDOW).delete()


def clear_login_failures(email: str) -> None:
    LoginFailure.objects.filter(email=_login_email(email)).delete()


Checked = TypeVar("Checked")


def check_password_throttled(
    email: str, ip: str | None, check: Callable[[], Checked | None], *, field: str | None = None
) -> Checked | None:
    """Run one password check (`check`, None meaning wrong) for `email` from `ip` under the lockout.

    Raises TooManyAttempts instead of checking while the email or the address is locked out. The
    attempt is written and committed as a failure *before* the check and counted together with
    everyone else's, so of any number of simultaneous guesses at most LOGIN_FAILURES_PER_EMAIL reach
    the check: each one sees every attempt committed before its own, so the n-th to commit counts n.
    A wrong password leaves the row as its failure; a right one forgets the account's failures up to
    it; a refused one takes its row back, so knocking at a locked door does not keep it locked. Call
    it outside a transaction, or the row stays invisible to the others until that commits.
    """
    email = _login_email(email)
    throttle = login_throttle(email, ip)  # a plain read first: a locked door costs no write
    if throttle.blocked:
        raise TooManyAttempts(throttle.retry_after_seconds, field=field)
    now = timezone.now()
    attempt = LoginFailure.objects.create(email=email, ip=ip or None, at=now)
    throttle = _throttle(email, ip, now, besides=attempt.pk)
    if throttle.blocked:
        LoginFailure.objects.filter(pk=attempt.pk).delete()
        raise TooManyAttempts(throttle.retry_after_seconds, field=field)
    passed = check()
    if passed is None:
        # Old failures count for nothing; clearing them here keeps the table small without a cron job.
        LoginFailure.objects.filter(at__lt=now - 4 * LOGIN_WINDOW).delete()
    else:
        # Up to this attempt only: guesses that began after it stay counted.
        LoginFailure.objects.filter(email=email, pk__lte=attempt.pk).delete()
    return passed


def log_in(email: str, password: str, *, ip: str | None) -> User | None:
    """The active user with this email and password, or None; TooManyAttempts while locked out."""

    def check() -> User | None:
        user = authenticate(None, username=email, password=password)
        return user if isinstance(user, User) else None

    return check_password_throttled(email, ip, check)
