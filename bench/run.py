"""Measure Quell's hot operations on one database at one scale and print a Markdown table.

    .venv/bin/python bench/run.py --database-url sqlite:////tmp/quell-bench/quell.sqlite3 --incidents 10000
    .venv/bin/python bench/run.py --database-url postgresql://root@127.0.0.1:5432/quell_bench_pg --incidents 10000

The database is migrated, filled with `quell loadgen` if it holds no incidents, then measured (see
bench/harness.py for what each column means, docs/performance.md for the operations). Writes
(creating incidents, attaching results, ingesting scans) add rows, so later runs on the same
database measure a slightly bigger one. `--json` output feeds `python -m bench.plot`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if not __package__:
    # Run as a file (python bench/run.py), Python puts bench/ itself first on the path; the bench
    # package is imported from the checkout that holds it instead, as `python -m bench.run` would.
    sys.path[0] = str(Path(__file__).resolve().parents[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="sqlite:////abs/path or postgresql://...")
    parser.add_argument(
        "--incidents", type=int, default=10_000, help="Scale for loadgen when the database is empty."
    )
    parser.add_argument("--days", type=int, default=365, help="Days of results per check for loadgen.")
    parser.add_argument("--repeats", type=int, default=30, help="Timed calls per operation and figure.")
    parser.add_argument(
        "--analyze", action="store_true", help="Run ANALYZE first, so the planner has statistics."
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="Seconds per figure after which fewer calls are enough (at least 5); keeps a slow case bounded.",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=300.0,
        help="Seconds an HTTP call may take before its figure is reported as failed.",
    )
    parser.add_argument(
        "--server", choices=("serve", "runserver"), default="serve", help="Which Quell web server to measure."
    )
    parser.add_argument("--out", type=Path, help="Also write the table (with a header) to this file.")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON (for bench/plot.py).")
    parser.add_argument(
        "--server-log", type=Path, help="Where the server's output goes (default: discarded)."
    )
    args = parser.parse_args()

    os.environ["QUELL_DATABASE_URL"] = args.database_url
    os.environ.setdefault("QUELL_DATA_DIR", tempfile.mkdtemp(prefix="quell-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
    import logging

    import django

    django.setup()
    # One log line per request would bury the table.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("quell").setLevel(logging.WARNING)
    from django.core.management import call_command
    from django.db import connection

    from bench import harness
    from quell.incidents.models import Incident
    from quell.ops import loadgen

    call_command("migrate", verbosity=0)
    if not Incident.objects.exists():
        scale = loadgen.Scale(incidents=args.incidents, days=args.days)
        print(f"Filling the database: {loadgen.describe(scale)}", file=sys.stderr)
        started = time.monotonic()
        loadgen.generate(scale, progress=sys.stderr.isatty())
        print(f"  took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    targets = harness.pick_targets()
    creds = harness.credentials(targets)
    ops = harness.operations(targets, creds)
    with harness.server(args.server_log, args.server) as base_url:
        results = harness.measure(
            ops,
            base_url,
            creds,
            repeats=args.repeats,
            budget=args.budget,
            progress=lambda name: print(f"  measuring {name}", file=sys.stderr, flush=True),
            request_timeout=args.request_timeout,
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version")
        version = cursor.fetchone()[0]
    header = (
        f"{connection.vendor} {version}, {targets.total:,} incidents, {args.repeats} calls per figure "
        f"(fewer past {args.budget:.0f} s), server `quell {args.server}`, Python {platform.python_version()}, "
        f"ANALYZE {'run first' if args.analyze else 'not run'}\n\n"
    )
    table = header + harness.markdown(results)
    print(table)
    if args.out:
        args.out.write_text(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "database": connection.vendor,
                    "version": str(version),
                    "incidents": targets.total,
                    "server": args.server,
                    "analyze": args.analyze,
                    "repeats": args.repeats,
                    "measurements": harness.as_json(results),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
