"""How `quell serve` runs gunicorn: its settings and the hooks Quell needs.

Gunicorn runs in-process (`QuellWebServer`, a gunicorn BaseApplication), so `quell serve` needs no
config file and no second entry point; operators tune it with `quell serve` options or QUELL_WEB_*.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.wsgi import get_wsgi_application
from django.db import connections
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]
from gunicorn.workers.base import Worker  # type: ignore[import-untyped]

from quell.lib.metrics import mark_process_dead
from quell.lib.multiproc import remove_files_of_dead_processes

# The longest request line (method, path and query string) gunicorn reads, its own maximum; longer
# ones get 414. The API's schema bounds every query string so that a valid one fits
# (tests/test_openapi.py adds up the longest), as do common proxies' defaults (nginx's 8 KiB).
LIMIT_REQUEST_LINE = 8190


@dataclass(frozen=True)
class ServeOptions:
    bind: str
    workers: int
    threads: int
    timeout: int
    graceful_timeout: int
    log_level: str


class QuellGunicornLogger(Logger):  # type: ignore[misc,unused-ignore]
    """Gunicorn's own lines (listening, workers booting or dying) go through Quell's logging.

    Its default handler writes `[date] [pid] [LEVEL] message` beside Quell's lines, whatever
    QUELL_LOG_FORMAT says: text among JSON, or a second text format on a terminal. Without a handler
    of its own (errorlog None) and propagating, each line takes Quell's format and request-id filter.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.propagate = True


def pre_fork(server: Arbiter, worker: Worker) -> None:
    # A database connection open in the master would be shared by every child's copy of it.
    connections.close_all()
    # The loaded app (about 230,000 objects) goes into the collector's permanent generation, as the
    # gc docs advise before a fork: a child's full collections then skip it (a full collection took
    # 0.1-0.3 s, and large requests such as a 1,000-check Soda scan set one off every other time),
    # and do not write to the shared pages, so the children keep sharing the master's memory.
    gc.freeze()


def on_starting(server: Arbiter) -> None:
    # Metric files of processes that died since the last start would otherwise count forever.
    remove_files_of_dead_processes()


def child_exit(server: Arbiter, worker: Worker) -> None:
    # Prometheus' multiprocess mode keeps one file per process; a dead worker's gauges must go.
    mark_process_dead(worker.pid)


def gunicorn_settings(options: ServeOptions) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bind": [options.bind],
        "workers": options.workers,
        "threads": options.threads,
        # gthread keeps idle keep-alive connections off the worker threads; sync has one thread only.
        "worker_class": "gthread" if options.threads > 1 else "sync",
        "timeout": options.timeout,
        "graceful_timeout": options.graceful_timeout,
        "keepalive": 5,
        "limit_request_line": LIMIT_REQUEST_LINE,
        # The app loads once in the master and the children share its memory; nothing in it holds a
        # connection or a thread at import time.
        "preload_app": True,
        # Quell's own request logging replaces gunicorn's access log; gunicorn's errors go to Quell's
        # log (stderr, in QUELL_LOG_FORMAT).
        "accesslog": None,
        "errorlog": None,
        "logger_class": QuellGunicornLogger,
        "loglevel": options.log_level.lower(),
        # Django alone decides whether X-Forwarded-Proto counts (QUELL_TRUST_FORWARDED_PROTO). Gunicorn
        # would otherwise believe it from any local client and mark the request secure.
        "secure_scheme_headers": {},
        # Its default control socket is one path per user, shared by every server that user runs.
        "control_socket_disable": True,
        "proc_name": "quell-web",
        "on_starting": on_starting,
        "pre_fork": pre_fork,
        "child_exit": child_exit,
    }
    # The heartbeat file is touched every second; tmpfs keeps that off a disk that may stall.
    if Path("/dev/shm").is_dir():  # noqa: S108 - gunicorn makes its own private file in it
        settings["worker_tmp_dir"] = "/dev/shm"  # noqa: S108
    return settings


class QuellWebServer(BaseApplication):  # type: ignore[misc,unused-ignore]
    def __init__(self, options: ServeOptions) -> None:
        self.settings = gunicorn_settings(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return get_wsgi_application()
