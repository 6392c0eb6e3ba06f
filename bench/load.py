"""Load-test Quell as it runs in production: N web processes and M workers on one database, driven by locust.

    .venv/bin/python bench/load.py --database-url postgresql://root@127.0.0.1:5432/quell_load \\
        --web-processes 2 --workers 2 --users 50 --duration 2m --out load-pg.md
    .venv/bin/python bench/load.py --database-url sqlite:////tmp/quell-load/quell.sqlite3 \\
        --web-processes 1 --workers 1 --users 20 --duration 2m --out load-sqlite.md

The database is migrated and, if it holds no incidents, filled with `quell loadgen`. The report (requests,
failures, p50/p95 per route, webhooks expected and delivered, "database is locked" and 5xx in the logs)
is printed and written to --out; --json also writes it as JSON. The exit code is 1 if anything went
wrong. See bench/loadtest.py for what is checked, and docs/load-test.md for results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

if not __package__:
    # Run as a file (python bench/load.py), Python puts bench/ itself first on the path; the bench
    # package is imported from the checkout that holds it instead, as `python -m bench.load` would.
    sys.path[0] = str(Path(__file__).resolve().parents[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="sqlite:////abs/path or postgresql://...")
    parser.add_argument("--web-processes", type=int, default=2, help="Web server processes.")
    parser.add_argument("--workers", type=int, default=2, help="`quell worker` processes.")
    parser.add_argument("--users", type=int, default=20, help="Concurrent locust users.")
    parser.add_argument("--spawn-rate", type=float, default=5.0, help="Users started per second.")
    parser.add_argument(
        "--duration", default="30s", help="How long the load runs (locust's --run-time: 30s, 2m)."
    )
    parser.add_argument(
        "--incidents", type=int, default=2000, help="Scale for loadgen when the database is empty."
    )
    parser.add_argument("--days", type=int, default=60, help="Days of results per check for loadgen.")
    parser.add_argument(
        "--drain-seconds", type=float, default=180.0, help="How long to wait for webhooks after the load."
    )
    parser.add_argument(
        "--think-seconds",
        type=float,
        nargs=2,
        default=(0.2, 1.5),
        metavar=("MIN", "MAX"),
        help="Each user waits between MIN and MAX seconds between two requests (or pairs of them).",
    )
    parser.add_argument(
        "--server",
        choices=["auto", "serve", "gunicorn"],
        default="auto",
        help="`quell serve`, plain gunicorn, or auto (serve when this Quell has it).",
    )
    parser.add_argument("--out", type=Path, help="Write the Markdown report here.")
    parser.add_argument("--json", type=Path, help="Write the report as JSON here.")
    parser.add_argument(
        "--logs", type=Path, help="Directory for the processes' logs (default: a new temporary one)."
    )
    args = parser.parse_args()
    for name in ("web_processes", "workers", "users"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    os.environ["QUELL_DATABASE_URL"] = args.database_url
    os.environ.setdefault("QUELL_DATA_DIR", tempfile.mkdtemp(prefix="quell-load-data-"))
    # The receiver is on loopback, which Quell refuses to send to unless told.
    os.environ["QUELL_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
    import django

    django.setup()
    from bench.loadtest import LoadConfig, markdown, run

    config = LoadConfig(
        web_processes=args.web_processes,
        workers=args.workers,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration=args.duration,
        incidents=args.incidents,
        days=args.days,
        drain_seconds=args.drain_seconds,
        server=args.server,
        think_seconds=(args.think_seconds[0], args.think_seconds[1]),
    )
    if args.logs:
        config.out_dir = args.logs
    report = run(config)
    text = markdown(report)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
