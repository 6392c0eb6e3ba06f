"""Measure what the incident rules cost a 1,000-check Soda ingest, side by side with the rules off.

    .venv/bin/python -m bench.rules --database-url sqlite:////tmp/quell-bench/quell.sqlite3
    .venv/bin/python -m bench.rules --database-url postgresql://root@127.0.0.1:5432/quell_bench_pg

The database is migrated and filled with `quell loadgen` if it holds no incidents, as bench/run.py
does; the scene (20 rules, 200 open incidents among the scan's checks) is then set up on it and the
ingest timed with the rules on and off in interleaved rounds, rolled back and committed (see
bench/rules_harness.py). The bench's rules are left disabled and the organisation's folding setting
as it was, so bench/run.py measures the same database as before. `--json FILE` also writes the
figures, every round's time included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not __package__:
    # Run as a file (python bench/rules.py), Python puts bench/ itself first on the path; the bench
    # package is imported from the checkout that holds it instead, as `python -m bench.rules` would.
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
    parser.add_argument("--rounds", type=int, default=15, help="Timed ingests each way, per figure.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed ingests each way first, per figure.")
    parser.add_argument(
        "--checks", type=int, default=1000, help="Checks of the scan (at most 1,000; fewer for a quick try)."
    )
    parser.add_argument(
        "--new-failures",
        type=int,
        help="Checks that newly fail each night (default: one in 25, 40 of 1,000); the rules open their incidents.",
    )
    parser.add_argument("--out", type=Path, help="Also write the tables to this file.")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON.")
    args = parser.parse_args()
    if not 20 <= args.checks <= 1000:
        parser.error("--checks must be between 20 and 1000")
    if args.new_failures is not None and not 0 <= args.new_failures <= (args.checks * 4 // 5) // 2:
        parser.error("--new-failures must be between 0 and half the checks in no incident (400 of 1,000)")
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")

    os.environ["QUELL_DATABASE_URL"] = args.database_url
    os.environ.setdefault("QUELL_DATA_DIR", tempfile.mkdtemp(prefix="quell-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quell.settings")
    import logging

    import django

    django.setup()
    # A rule that cannot act logs a warning; the figures are what this prints.
    logging.getLogger("quell").setLevel(logging.ERROR)
    from django.core.management import call_command

    from bench import rules_harness
    from quell.accounts.models import User
    from quell.incidents.models import Incident
    from quell.ops import loadgen

    call_command("migrate", verbosity=0)
    if not Incident.objects.exists():
        scale = loadgen.Scale(incidents=args.incidents, days=args.days)
        print(f"Filling the database: {loadgen.describe(scale)}", file=sys.stderr)
        started = time.monotonic()
        loadgen.generate(scale, progress=sys.stderr.isatty())
        print(f"  took {time.monotonic() - started:.0f} s", file=sys.stderr)
    admin = User.objects.filter(global_role="admin", is_active=True, is_system=False).order_by("pk").first()
    if admin is None:
        parser.error("the database has no admin: run `quell loadgen` on it first")
    report = rules_harness.run(
        admin,
        shape=rules_harness.Shape(checks=args.checks, new_failures_per_night=args.new_failures),
        rounds=args.rounds,
        warmup=args.warmup,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    table = rules_harness.markdown(report)
    print(table)
    if args.out:
        args.out.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=1))


if __name__ == "__main__":
    main()
