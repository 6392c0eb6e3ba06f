"""The {% when %} tag: the <time> element every page writes for an instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import engines
from django.utils import timezone

# What the pages wrote before the tag, with Django's date filter twice per instant.
WITH_DATE_FILTER = (
    """<time datetime="{{ d|date:'c' }}">{{ d|date:"Y-m-d H:i" }}</time>|"""
    """<time datetime="{{ d|date:'c' }}">{{ d|date:"Y-m-d H:i:s" }}</time>|"""
    """<time datetime="{{ d|date:'c' }}">{{ d|date:"H:i" }}</time>"""
)
WITH_TAG = """{% load quell_tags %}{% when d %}|{% when d "seconds" %}|{% when d "clock" %}"""


@pytest.mark.parametrize("zone", ["UTC", "Europe/Amsterdam", "America/New_York"])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=UTC),  # Amsterdam moves its clocks at 02:00 local
        datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
        None,
    ],
    ids=["microseconds on a clock change", "whole minute", "none"],
)
def test_the_when_tag_writes_what_the_date_filter_wrote_in_the_readers_time_zone(
    zone: str, moment: datetime | None
) -> None:
    engine = engines["django"]
    with timezone.override(zone):
        assert engine.from_string(WITH_TAG).render({"d": moment}) == engine.from_string(
            WITH_DATE_FILTER
        ).render({"d": moment})


def test_the_when_tag_shows_local_time_and_keeps_the_instant() -> None:
    engine = engines["django"]
    with timezone.override("Europe/Amsterdam"):
        written = engine.from_string(WITH_TAG).render({"d": datetime(2026, 7, 1, 12, 0, tzinfo=UTC)})

    assert written.split("|")[0] == '<time datetime="2026-07-01T14:00:00+02:00">2026-07-01 14:00</time>'
