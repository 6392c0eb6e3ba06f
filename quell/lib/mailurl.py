"""Email settings from one URL, QUELL_EMAIL_URL (docs/notifications.md), as the database's come from
QUELL_DATABASE_URL.

- unset or empty: email is off (Django's dummy backend; the settings page says so);
- `console://`: messages are printed to the process's standard output (the quick start's demo);
- `smtp://user:password@host:587`: SMTP with STARTTLS (port 587 by default). A relay on the same
  machine or network that offers no TLS takes `?starttls=false` (port 25 is then the usual one);
- `smtps://user:password@host:465`: SMTP over implicit TLS (port 465 by default).

The user name and password are URL-encoded (`%40` for `@`). `?timeout=N` sets how many seconds a
connection may take (10 by default). Anything else is refused when Quell starts, with the reason,
rather than at the first message. dj-email-url reads such URLs too, but its `smtps` means
STARTTLS, not implicit TLS as here, and it has not changed since 2022; these twenty lines are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
OFF_BACKEND = "django.core.mail.backends.dummy.EmailBackend"


class EmailUrlError(ValueError):
    """QUELL_EMAIL_URL cannot be used; the message says why."""


@dataclass(frozen=True)
class EmailConfig:
    backend: str = OFF_BACKEND
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False
    timeout: int = 10

    @property
    def enabled(self) -> bool:
        return self.backend != OFF_BACKEND

    def describe(self) -> str:
        """How messages leave, for the settings page (never the password)."""
        if self.backend == OFF_BACKEND:
            return "off"
        if self.backend == CONSOLE_BACKEND:
            return "printed to the console (console://)"
        security = "implicit TLS" if self.use_ssl else "STARTTLS" if self.use_tls else "no TLS"
        login = f", logging in as {self.username}" if self.username else ""
        return f"SMTP to {self.host}:{self.port} ({security}{login})"

    def as_settings(self) -> dict[str, Any]:
        return {
            "EMAIL_BACKEND": self.backend,
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_HOST_USER": self.username,
            "EMAIL_HOST_PASSWORD": self.password,
            "EMAIL_USE_TLS": self.use_tls,
            "EMAIL_USE_SSL": self.use_ssl,
            "EMAIL_TIMEOUT": self.timeout,
        }


_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


def parse_email_url(url: str) -> EmailConfig:
    """The email settings QUELL_EMAIL_URL asks for (see the module); EmailUrlError when it cannot."""
    url = url.strip()
    if not url:
        return EmailConfig()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "console":
        return EmailConfig(backend=CONSOLE_BACKEND)
    if scheme not in _DEFAULT_PORTS:
        raise EmailUrlError(
            f"QUELL_EMAIL_URL must start with smtp://, smtps:// or console://, not {(scheme or url) + '://'!r}."
        )
    if not parts.hostname:
        raise EmailUrlError("QUELL_EMAIL_URL names no host, as in smtp://user:password@mail.example.com:587.")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise EmailUrlError("QUELL_EMAIL_URL's port must be a number from 1 to 65535.") from None
    options = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    allowed = {"timeout", "starttls"} if scheme == "smtp" else {"timeout"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise EmailUrlError(
            f"QUELL_EMAIL_URL has options Quell does not know: {', '.join(unknown)} "
            f"(it knows {', '.join(sorted(allowed))})."
        )
    timeout = options.get("timeout", "10")
    if not timeout.isdigit() or int(timeout) < 1:
        raise EmailUrlError(f"QUELL_EMAIL_URL's timeout must be a whole number of seconds, not {timeout!r}.")
    starttls = options.get("starttls", "true").lower()
    if starttls not in {"true", "false"}:
        raise EmailUrlError(f"QUELL_EMAIL_URL's starttls must be true or false, not {starttls!r}.")
    return EmailConfig(
        backend=SMTP_BACKEND,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=scheme == "smtp" and starttls == "true",
        use_ssl=scheme == "smtps",
        timeout=int(timeout),
    )
