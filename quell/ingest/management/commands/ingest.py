"""`quell ingest`: store a results file from dbt, Great Expectations or Soda Core as one scan."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from quell.accounts.queries import user_by_email
from quell.ingest.importers import ImportRequest, run_import
from quell.lib.errors import QuellError


class Command(BaseCommand):
    help = (
        "Import dbt, Great Expectations or Soda results as one scan, all or nothing. "
        "`ingest dbt RUN_RESULTS MANIFEST`, `ingest gx RESULT`, `ingest soda RESULTS` (from `soda scan -srf`); "
        "--email names the Quell user the results are stored as."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        formats = parser.add_subparsers(dest="format", required=True)
        dbt = formats.add_parser(
            "dbt", help="dbt's target/run_results.json with the manifest.json of the same run"
        )
        dbt.add_argument("files", nargs=2, type=Path, metavar="FILE", help="run_results.json manifest.json")
        dbt.add_argument(
            "--data-source", default="", help="data source name (default: each model's database)"
        )
        gx = formats.add_parser("gx", help="a Great Expectations 1.x validation or checkpoint result (JSON)")
        gx.add_argument("files", nargs=1, type=Path, metavar="FILE")
        gx.add_argument("--data-source", default="", help="data source name (default: from the result)")
        gx.add_argument("--dataset", default="", help="dataset name (default: the validated data asset)")
        soda = formats.add_parser("soda", help="a `soda scan -srf results.json` file")
        soda.add_argument("files", nargs=1, type=Path, metavar="FILE")
        for sub in (dbt, gx, soda):
            sub.add_argument("--email", required=True, help="the Quell user the results are stored as")

    def handle(self, *args: Any, **options: Any) -> None:
        request = ImportRequest(
            format=options["format"],
            files=list(options["files"]),
            data_source=options.get("data_source") or "",
            dataset=options.get("dataset") or "",
        )
        bars: list[tqdm[Any]] = []

        def start(total: int) -> None:
            # The bar draws only on a terminal, so scripts and CI logs get the summary line alone.
            bars.append(tqdm(total=total, unit="result", desc="Storing", file=sys.stderr, disable=None))

        try:
            user = user_by_email(options["email"])
            scan, results = run_import(
                request, by=user, on_start=start, on_progress=lambda done: bars[0].update(done)
            )
        except QuellError as error:
            raise CommandError(error.message) from None
        finally:
            for bar in bars:
                bar.close()
        outcomes = Counter(result.outcome for result in results)
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        datasets = sorted({f"{r.dataset.data_source.name}/{r.dataset.name}" for r in results})
        self.stdout.write(f"Scan {scan.pk}: {len(results)} results ({summary}) on {', '.join(datasets)}.")
