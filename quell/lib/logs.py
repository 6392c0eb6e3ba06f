"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to.

The request id lives in a context variable: the request middleware sets it for the request, and a
task enqueued during the request takes it along as its `request_id` keyword, which the task signals
below set again while the task runs. A filter on the handler copies it onto every record, so log lines
of Quell, Django and libraries alike carry it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id_var: ContextVar[str] = ContextVar("quell_request_id", default="")

# Long enough for the UUIDs, ULIDs and hex ids proxies generate; the charset keeps logs unforgeable.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

task_logger = logging.getLogger("quell.task")

FORMATS = ("json", "text")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID if it is a sane id, otherwise a new one."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def task_kwargs() -> dict[str, str]:
    """Keyword arguments that carry the current request id into a task being enqueued."""
    request_id = current_request_id()
    return {"request_id": request_id} if request_id else {}


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record that does not already carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or None
        return True


class OneLineRefusals(logging.Filter):
    """django.request's record of a refused request (a 4xx, such as PermissionDenied's 403) in one line.

    Django attaches the exception, so each refusal came with a traceback that only shows where Quell
    said no. The line keeps the refusal's reason instead; 5xx records keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and record.exc_info:
            reason = str(record.exc_info[1] or "")
            if reason:
                # Escaped as Django escapes the path: a reason never starts a line of its own.
                record.msg = f"{record.getMessage()}: {reason.encode('unicode_escape').decode('ascii')}"
                record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(_JsonFormatter):
    """timestamp (UTC, ISO 8601), level, logger, message, then the record's extra fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        # django.request attaches the request object, whose repr is only its method and full path.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)


class TextFormatter(logging.Formatter):
    """For people at a terminal: time, level, logger, request id (or -), message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "request_id", None):
            record.request_id = "-"
        return super().format(record)


def log_format() -> str:
    """QUELL_LOG_FORMAT, or text when a person is watching stderr and JSON for everything else."""
    value = os.environ.get("QUELL_LOG_FORMAT", "").strip().lower()
    if not value:
        return "text" if sys.stderr.isatty() else "json"
    if value not in FORMATS:
        raise ValueError(f"QUELL_LOG_FORMAT must be json or text, not {value!r}")
    return value


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """Django's LOGGING: everything to stderr through one handler, in `fmt` (json or text)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "quell.lib.logs.RequestIdFilter"},
            "one_line_refusals": {"()": "quell.lib.logs.OneLineRefusals"},
        },
        "formatters": {
            "json": {"()": "quell.lib.logs.JsonFormatter"},
            "text": {"()": "quell.lib.logs.TextFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            "django.request": {"filters": ["one_line_refusals"]},
        },
    }


# --- Tasks --------------------------------------------------------------------------------------------

_task_clocks: dict[str, tuple[float, Any]] = {}


def task_started(sender: object, task_result: Any, **kwargs: Any) -> None:
    """Run the task inside the request id it was enqueued with."""
    request_id = task_result.kwargs.get("request_id")
    token = request_id_var.set(request_id if isinstance(request_id, str) else "")
    _task_clocks[str(task_result.id)] = (time.monotonic(), token)


def task_finished(sender: object, task_result: Any, **kwargs: Any) -> None:
    """One line per task run: its name, outcome and duration, under the request id it ran with."""
    from quell.lib import metrics

    started, token = _task_clocks.pop(str(task_result.id), (None, None))
    duration_ms = round((time.monotonic() - started) * 1000, 1) if started is not None else None
    status = str(task_result.status).lower()
    name = task_result.task.module_path
    returned = task_result.return_value if status == "successful" else None
    task_logger.log(
        logging.INFO if status == "successful" else logging.ERROR,
        "Task %s %s",
        name,
        status,
        extra={
            "task": name,
            "task_id": str(task_result.id),
            "outcome": status,
            "duration_ms": duration_ms,
            "result": returned if isinstance(returned, str | int | float | bool) else None,
        },
    )
    metrics.count_task_run(name, status)
    if token is not None:
        request_id_var.reset(token)
