"""Quell's settings with the floor endpoint mounted: what the harness starts its server with.

The floor (bench/floor.py) answers Quell's pages from hand-written SQL for comparison. It lives here,
outside the installed package, so no configuration of a real Quell can turn it on.
"""

from __future__ import annotations

from quell.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
