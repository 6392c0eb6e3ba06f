"""Django settings for Quell, read from QUELL_* environment variables (see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from quell.lib.env import (
    default_data_dir,
    envbool,
    envfloat,
    envint,
    envlist,
    envstr,
    persistent_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(envstr("QUELL_DATA_DIR") or default_data_dir()).expanduser().resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = envstr("QUELL_SECRET_KEY") or persistent_secret_key(DATA_DIR)
DEBUG = envbool("QUELL_DEBUG", False)
ALLOWED_HOSTS = envlist("QUELL_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
BASE_URL = envstr("QUELL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = [BASE_URL]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "quell.accounts",
    "quell.catalog",
    "quell.incidents",
    "quell.ingest",
    "quell.integrations",
    "quell.ops",
    "quell.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "quell.sqlite3")}
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["quell.accounts.auth.EmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
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
# Serving from the finders keeps `pip install` + start free of a collectstatic step.
WHITENOISE_USE_FINDERS = True

# A request body larger than this is refused with 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("QUELL_MAX_REQUEST_BYTES", 10 * 1024 * 1024)

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("QUELL_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Page sizes in the API follow Soda Cloud's limits.
API_MAX_PAGE_SIZE = 1000

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
