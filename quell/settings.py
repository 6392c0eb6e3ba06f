"""Django settings for Quell, read from QUELL_* environment variables (see README)."""

from __future__ import annotations

from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor  # type: ignore[import-untyped]

from quell.lib.env import (
    SQLITE_FILE,
    data_dir,
    envbool,
    envfloat,
    envint,
    envlist,
    envstr,
    persistent_secret_key,
)
from quell.lib.logs import log_format, logging_config
from quell.lib.mailurl import EmailUrlError, parse_email_url
from quell.lib.multiproc import configure as configure_metrics_dir
from quell.ops.datadir import make_private, private_umask, sqlite_files

# The data directory holds the database, the secret key and backups: whatever this process creates
# (SQLite's -wal and -shm files included, whenever it makes them) is for Quell's user alone.
private_umask()
BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = data_dir()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
# Before anything imports prometheus_client, which picks its per-process storage at import.
METRICS_DIR = configure_metrics_dir(DATA_DIR)

SECRET_KEY = envstr("QUELL_SECRET_KEY") or persistent_secret_key(DATA_DIR)
DEBUG = envbool("QUELL_DEBUG", False)
BASE_URL = envstr("QUELL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
_base = urlsplit(BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname:
    raise ImproperlyConfigured(f"QUELL_BASE_URL must be an http:// or https:// URL, not {BASE_URL!r}.")
BASE_URL_IS_HTTPS = _base.scheme == "https"
# Email (docs/notifications.md): one URL, as for the database; off when unset. QUELL_EMAIL_FROM is the
# sender people see; by default Quell at the host people use.
try:
    EMAIL_CONFIG = parse_email_url(envstr("QUELL_EMAIL_URL"))
except EmailUrlError as error:
    raise ImproperlyConfigured(str(error)) from None
globals().update(EMAIL_CONFIG.as_settings())
EMAIL_ENABLED = EMAIL_CONFIG.enabled
DEFAULT_FROM_EMAIL = envstr("QUELL_EMAIL_FROM").strip() or f"Quell <quell@{_base.hostname}>"
if "@" not in parseaddr(DEFAULT_FROM_EMAIL)[1]:
    raise ImproperlyConfigured(
        f"QUELL_EMAIL_FROM must be an address, as in 'Quell <quell@example.com>', not {DEFAULT_FROM_EMAIL!r}."
    )
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The host people use plus loopback, so a health check on the machine itself gets through; an operator
# who lists hosts replaces the whole list. An unknown Host header gets 400 rather than a page whose
# absolute links point at an attacker's name.
_base_host = f"[{_base.hostname}]" if ":" in _base.hostname else _base.hostname
ALLOWED_HOSTS = envlist("QUELL_ALLOWED_HOSTS") or list(
    dict.fromkeys([_base_host, "127.0.0.1", "localhost", "[::1]"])
)
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # intcomma: counts read "10,000+", not "10000+".
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "quell.accounts",
    "quell.catalog",
    "quell.incidents",
    "quell.automation",
    "quell.ingest",
    "quell.integrations",
    "quell.notifications",
    "quell.ops",
    "quell.web",
]

MIDDLEWARE = [
    # First, so every answer (a refused Host, a CSRF failure, a static file) is timed and logged.
    "quell.ops.middleware.RequestLogMiddleware",
    "quell.ops.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "quell.web.middleware.ReaderZoneMiddleware",  # times on pages in the reader's zone
    "quell.ops.middleware.GroupsRememberedMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "quell.urls"
WSGI_APPLICATION = "quell.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, Any]:
    url = envstr("QUELL_DATABASE_URL")
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    else:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / SQLITE_FILE)}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers go on while one process writes; IMMEDIATE takes the write lock when a
        # transaction starts, so two writers queue on busy_timeout instead of one failing with
        # "database is locked" when it upgrades a read lock midway.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"),
        }
        # Tests run a real HTTP server in a thread, which needs a file both can open.
        config["TEST"] = {"NAME": str(DATA_DIR / "test-quell.sqlite3")}
    return config


DATABASES = {"default": _database()}
# An installation from before files were private has a 755 folder and 644 files: tightened here, at
# every start, before anything reads or writes them (`quell check --deploy` reports what could not be).
make_private(DATA_DIR, sqlite_files(DATABASES["default"]))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["quell.accounts.auth.EmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    # Refuses a password too like the user's email or name (Quell's users have no Django username or
    # first/last name). It sees only the user it is given: every service that sets a password passes
    # the user, an unsaved one while creating them.
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("QUELL_STATIC_ROOT") or DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Collected static files are private like everything else Quell writes (Django's default is 644).
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, gzip- and brotli-compressed copies once `quell collectstatic` has run (`quell serve` and
    # `quell start` run it when the files changed); before that, plain names served from the finders.
    "staticfiles": {"BACKEND": "quell.web.staticfiles.QuellStaticFilesStorage"},
}
# Serving from the finders keeps `pip install` + start free of a collectstatic step.
WHITENOISE_USE_FINDERS = True
# Pages link only hashed names, and the finders still serve plain ones; compressing both would double
# collectstatic's time. Source maps are for developer tools only and are the largest files by far.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]

# A request body larger than this is refused with 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("QUELL_MAX_REQUEST_BYTES", 10 * 1024 * 1024)

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Security (docs/deploy.md) -----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Pages carry the CSRF token in their markup (hx-headers, forms); no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# People reach an https base URL over TLS, so cookies must never travel over plain http.
SESSION_COOKIE_SECURE = BASE_URL_IS_HTTPS
CSRF_COOKIE_SECURE = BASE_URL_IS_HTTPS
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HSTS is sent only on https requests and is hard to take back, so the operator turns it on.
# includeSubDomains covers only names under Quell's own host, which nothing else should serve.
SECURE_HSTS_SECONDS = envint("QUELL_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("QUELL_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("QUELL_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = envbool("QUELL_SSL_REDIRECT", False)
# Behind a proxy that ends TLS, the request reaching Quell is plain http; the proxy's
# X-Forwarded-Proto says what the browser used. Anyone can send that header, so it counts only when
# the operator says every request comes through a proxy that overwrites it.
if envbool("QUELL_TRUST_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = envbool("QUELL_TRUST_FORWARDED_HOST", False)
SILENCED_SYSTEM_CHECKS = [
    # security.W021 asks for HSTS preload, a commitment for the whole domain made at hstspreload.org,
    # not something one application on it should assume; QUELL_HSTS_PRELOAD=true opts in.
    "security.W021",
]
# Everything comes from Quell itself: no inline script, style or event handler anywhere in the UI
# (tests/web/test_csp_browser.py visits the pages in Chromium and fails on any violation).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Pico's and Swagger UI's icons are data: SVGs in their stylesheets.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# One JSON object per line (or text for a person at a terminal), each with its request id (docs/operations.md).
LOG_FORMAT = log_format()
LOGGING = logging_config(envstr("QUELL_LOG_LEVEL", "INFO"), LOG_FORMAT)

# Page sizes in the API follow Soda Cloud's limits.
API_MAX_PAGE_SIZE = 1000
# The hot lists answer JSON built straight from rows, without pydantic validating the output
# (quell.api.base.rows_response). With this on (the test suite turns it on) each such answer is also
# validated by its schema and must encode to the same bytes, so a drift from the schema fails a test.
API_CHECK_RESPONSES = envbool("QUELL_API_CHECK_RESPONSES", False)

# How long a Soda Core log-in token lives; the client logs in again when it gets a 401.
SODA_TOKEN_SECONDS = envint("QUELL_SODA_TOKEN_SECONDS", 12 * 3600)

# Outbound webhooks, Slack and Teams (quell/integrations). Loopback, private, link-local and metadata
# addresses are refused unless listed here (host names and CIDRs), e.g. "127.0.0.1,10.0.0.0/8".
WEBHOOK_ALLOWED_NETWORKS = envlist("QUELL_WEBHOOK_ALLOWED_NETWORKS")
WEBHOOK_TIMEOUT_SECONDS = envfloat("QUELL_WEBHOOK_TIMEOUT_SECONDS", 10.0)
# Retries back off exponentially from BASE to MAX (with jitter) and stop WINDOW after the event.
WEBHOOK_RETRY_BASE_SECONDS = envfloat("QUELL_WEBHOOK_RETRY_BASE_SECONDS", 5.0)
WEBHOOK_RETRY_MAX_SECONDS = envfloat("QUELL_WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600.0)
WEBHOOK_RETRY_WINDOW_SECONDS = envfloat("QUELL_WEBHOOK_RETRY_WINDOW_SECONDS", 3 * 24 * 3600.0)
# A worker holds a delivery this long; past it, a worker that died mid-delivery is presumed gone.
WEBHOOK_LEASE_SECONDS = envfloat("QUELL_WEBHOOK_LEASE_SECONDS", 60.0)
WEBHOOK_SWEEP_SECONDS = envfloat("QUELL_WEBHOOK_SWEEP_SECONDS", 15.0)

# How often one worker applies the organisation's retention settings (quell.ops.housekeeping).
HOUSEKEEPING_SECONDS = envfloat("QUELL_HOUSEKEEPING_SECONDS", 3600.0)

# --- Health, metrics (docs/operations.md) ------------------------------------------------------
# Each `quell worker` records that it is alive this often; /readyz wants one within READY_WORKER_SECONDS
# (0: no worker check, for a web tier deployed apart from its workers).
HEARTBEAT_SECONDS = envfloat("QUELL_HEARTBEAT_SECONDS", 10.0)
READY_WORKER_SECONDS = envfloat("QUELL_READY_WORKER_SECONDS", 60.0)
# /metrics answers a bearer token, or clients in these networks (loopback unless set).
METRICS_TOKEN = envstr("QUELL_METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = envlist("QUELL_METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1")
# Reverse proxies whose X-Forwarded-For is believed for the client address (logs, metrics access).
TRUSTED_PROXIES = envlist("QUELL_TRUSTED_PROXIES")
