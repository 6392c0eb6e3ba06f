"""Measuring Quell, run from a checkout (never installed): the benchmark harness, the hand-written SQL it
compares against, and the production load test.

Entry points: `python bench/run.py` (the benchmark), `python bench/load.py` (the load test),
`python bench/migrate_timed.py` and `python -m bench.plot`; see docs/performance.md and docs/load-test.md.
"""
