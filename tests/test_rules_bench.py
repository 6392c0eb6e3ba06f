"""bench/rules.py sets up its scene, measures the Soda ingest with the rules on and off, and leaves the
database as bench/run.py expects it; at a tiny scale, never timing anything."""

from __future__ import annotations

import pytest

from bench import harness, rules_harness
from quell.accounts.models import Organization, User
from quell.incidents.models import IncidentRule
from quell.ops import loadgen

pytestmark = pytest.mark.django_db(transaction=True)

# 100 checks: 20 of them in open incidents, 4 new failures a night.
SHAPE = rules_harness.Shape(checks=100)


@pytest.fixture
def admin(builtin_rows: None) -> User:
    summary = loadgen.generate(loadgen.Scale(incidents=40, days=5), seed=3, progress=False)
    return User.objects.get(email=summary.admin_email)


def test_a_run_measures_both_ways_and_keeps_the_open_incidents_steady(admin: User) -> None:
    report = rules_harness.run(admin, shape=SHAPE, rounds=1, warmup=0)

    assert report.rules == 20
    assert report.opened_by_hand == 4
    assert report.opened_by_rules == 16
    for figure in report.figures.values():
        assert len(figure.on_ms) == len(figure.off_ms) == len(figure.on_cpu_ms) == 1
        assert set(figure.on_steps_ms) == {"rules engine", *rules_harness.STEPS}
    on, off = report.statements["on"].effects, report.statements["off"].effects
    assert on["resultsFolded"] == on["incidentsFoldedInto"] == 15
    assert on["passesRecorded"] == off["passesRecorded"] == 5
    assert on["incidentsOpened"] > 0
    assert off["resultsFolded"] == off["incidentsOpened"] == off["incidentsRecovered"] == 0
    assert report.statements["on"].engine > report.statements["off"].engine
    assert report.open_after_rounds == 20
    assert "| rolled back |" in rules_harness.markdown(report)


def test_it_leaves_the_rules_off_and_no_open_incident_of_the_scan_and_runs_again(admin: User) -> None:
    Organization.objects.filter(pk=1).update(fold_results=True)

    first = rules_harness.run(admin, shape=SHAPE, rounds=1, warmup=0)
    again = rules_harness.run(admin, shape=SHAPE, rounds=1, warmup=0)

    rules = IncidentRule.objects.filter(name__startswith=rules_harness.RULE_PREFIX)
    assert rules.count() == again.rules == 20
    assert not rules.filter(enabled=True).exists()
    assert Organization.get().fold_results is True
    assert rules_harness._bench_checks_open_incidents() == []
    # The second run's nights come after the first's, so its scans are each check's newest, and
    # nothing the first left (its incidents are resolved as fixed, not recovered) is reopened.
    assert again.opened_by_rules == first.opened_by_rules
    assert again.statements["on"].effects == first.statements["on"].effects
    assert again.open_after_rounds == 20


def test_the_nights_fail_the_checks_the_scene_says() -> None:
    shape = rules_harness.Shape()
    incident_checks = set(shape.incident_checks)
    assert len(incident_checks) == 200
    assert shape.failing(0) == set()
    assert shape.failing(1) == set(shape.by_hand)
    assert len(shape.by_hand) == 40
    assert shape.failing(2) == incident_checks
    for night in range(rules_harness.FIRST_TIMED_NIGHT, 30):
        failing = shape.failing(night)
        new = failing - incident_checks
        assert len(failing & incident_checks) == 150
        assert len(new) == 40
        # A check that passes in an incident failed the night before; a new failure is new.
        assert not (incident_checks - failing) & (incident_checks - shape.failing(night - 1))
        assert not new & shape.failing(night - 1)
    scan = rules_harness.night_scan(shape, rules_harness.FIRST_NIGHT, shape.failing(3))
    assert len(scan["checks"]) == harness.SODA_CHECKS
    assert sum(check["outcome"] == "fail" for check in scan["checks"]) == 190
