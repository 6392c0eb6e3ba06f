"""The README's API examples run as written, in bash, against a live server holding the demo organisation.

Every `sh` block of README.md that calls curl is run with only the key (KEY_ID, KEY_SECRET) and the base URL
put in. curl is wrapped in a shell function that passes the same arguments on and records each answer's
status, method, URL and body, so the test can check every answer, also those a block captures in a variable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from quell.accounts.models import ApiKey, User
from quell.catalog.models import CheckResult, Dataset, DataSource
from quell.demo import load_demo
from quell.incidents.models import OPEN_STATUSES, Incident

README = Path(__file__).resolve().parent.parent / "README.md"
README_BASE_URL = "http://127.0.0.1:8000"

# Each answer goes to $QUELL_ANSWERS/<nanoseconds>.{meta,body}; the body still goes where the block sends it.
RECORD_CURL = r"""
set -eo pipefail
curl() {
  local answer
  answer="$QUELL_ANSWERS/$(date +%s%N)"
  command curl --write-out '%{stderr}\n%{http_code} %{method} %{url_effective}\n' "$@" 2>"$answer.meta" \
    | tee "$answer.body"
}
"""


@dataclass
class Answer:
    status: int
    method: str
    url: str
    body: Any

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


def curl_blocks() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    return [block for block in blocks if re.search(r"^(?!\s*#).*\bcurl\b", block, flags=re.MULTILINE)]


def run_block(block: str, base_url: str, key: tuple[str, str], answers: Path) -> list[Answer]:
    env = {**os.environ, "KEY_ID": key[0], "KEY_SECRET": key[1], "QUELL_ANSWERS": str(answers)}
    script = RECORD_CURL + block.replace(README_BASE_URL, base_url)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{block}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    recorded = []
    for meta in sorted(answers.glob("*.meta"), key=lambda path: int(path.stem)):
        status, method, url = meta.read_text().strip().splitlines()[-1].split(" ", 2)
        body = meta.with_suffix(".body").read_text()
        recorded.append(Answer(int(status), method, url, json.loads(body)))
        meta.unlink()
        meta.with_suffix(".body").unlink()
    return recorded


@pytest.fixture
def demo_key(builtin_rows: None) -> tuple[str, str]:
    load_demo()
    key, secret = ApiKey.issue(User.objects.get(email="admin@quell.example"))
    return key.key_id, secret


def test_every_curl_example_in_the_readme_works_on_the_demo(
    live_server: Any, demo_key: tuple[str, str], tmp_path: Path
) -> None:
    sources = set(DataSource.objects.values_list("name", flat=True))
    datasets = Dataset.objects.count()
    incidents = Incident.objects.count()
    blocks = curl_blocks()
    assert blocks, "README.md has no sh block that calls curl"

    answers = [answer for block in blocks for answer in run_block(block, live_server.url, demo_key, tmp_path)]

    assert [(a.method, a.path) for a in answers] == [
        ("GET", "/api/v1/incidents"),
        ("POST", "/api/v1/checkResults"),
        ("POST", "/api/v1/incidents"),
    ], "a README example was added or changed: check its answer here too"
    listed, pushed, created = answers

    # The whole query string reached the server (an unquoted "&" would end the command there).
    assert listed.status == 200, listed.body
    assert parse_qs(urlsplit(listed.url).query) == {
        "severity": ["critical"],
        "status": ["reported", "investigating", "fixing"],
    }
    assert listed.body["content"], "the demo has an open critical incident"
    assert {i["severity"] for i in listed.body["content"]} == {"critical"}
    assert {i["status"] for i in listed.body["content"]} <= set(OPEN_STATUSES)

    # The push lands in the demo's own data source and dataset; nothing new is made.
    assert pushed.status == 201, pushed.body
    (result,) = pushed.body["results"]
    stored = CheckResult.objects.select_related("dataset__data_source", "check_ref").get(pk=result["id"])
    assert (stored.dataset.data_source.name, stored.dataset.name) == ("snowflake_prod", "orders")
    assert (stored.check_ref.name, stored.outcome) == ("row_count > 0", "fail")
    assert set(DataSource.objects.values_list("name", flat=True)) == sources
    assert Dataset.objects.count() == datasets

    # The incident is opened from the result the push answered.
    assert created.status == 201, created.body
    assert created.body["title"] == "Orders table is empty"
    assert created.body["severity"] == "critical"
    assert [r["id"] for r in created.body["checkResults"]] == [result["id"]]
    assert Incident.objects.count() == incidents + 1
