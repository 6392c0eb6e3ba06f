"""The {% when %} tag and its kin: every moment on a page, in the reader's zone, written one way; relative
where recency matters; lengths of time in one format; the zone named once per page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.template import engines
from django.utils import timezone

from quell.web.charts import time_ticks
from quell.web.templatetags.quell_tags import ago, span

# What the pages wrote before the tag, with Django's date filter twice per instant; the title (the
# exact moment with the zone's abbreviation) came with the tag.
WITH_DATE_FILTER = (
    """<time datetime="{{ d|date:'c' }}" title="{{ d|date:'Y-m-d H:i:s T' }}">{{ d|date:"Y-m-d H:i" }}</time>|"""
    """<time datetime="{{ d|date:'c' }}" title="{{ d|date:'Y-m-d H:i:s T' }}">{{ d|date:"Y-m-d H:i:s" }}</time>|"""
    """<time datetime="{{ d|date:'c' }}" title="{{ d|date:'Y-m-d H:i:s T' }}">{{ d|date:"H:i" }}</time>|"""
    """<time datetime="{{ d|date:'c' }}" title="{{ d|date:'Y-m-d H:i:s T' }}">{{ d|date:"Y-m-d" }}</time>"""
)
WITH_TAG = (
    """{% load quell_tags %}{% when d %}|{% when d "seconds" %}|{% when d "clock" %}|{% when d "date" %}"""
)
BERLIN = ZoneInfo("Europe/Berlin")


def render(template: str, **context: object) -> str:
    return engines["django"].from_string("{% load quell_tags %}" + template).render(context)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Amsterdam", "America/New_York"])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=UTC),  # Amsterdam moves its clocks at 02:00 local
        datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
    ],
    ids=["microseconds on a clock change", "whole minute"],
)
def test_the_when_tag_writes_what_the_date_filter_wrote_in_the_readers_time_zone(
    zone: str, moment: datetime
) -> None:
    engine = engines["django"]
    with timezone.override(zone):
        assert engine.from_string(WITH_TAG).render({"d": moment}) == engine.from_string(
            WITH_DATE_FILTER
        ).render({"d": moment})


def test_no_moment_is_an_empty_time_element() -> None:
    assert (
        render("{% when d %}|{% when d 'ago' %}", d=None)
        == '<time datetime=""></time>|<time datetime=""></time>'
    )


def test_the_when_tag_shows_local_time_keeps_the_instant_and_names_the_zone_on_hover() -> None:
    with timezone.override("Europe/Amsterdam"):
        written = render("{% when d %}", d=datetime(2026, 7, 1, 12, 0, 9, tzinfo=UTC))

    assert written == (
        '<time datetime="2026-07-01T14:00:09+02:00" title="2026-07-01 14:00:09 CEST">2026-07-01 14:00</time>'
    )


def test_a_zone_without_an_abbreviation_is_named_by_its_offset() -> None:
    with timezone.override("Asia/Kathmandu"):
        written = render("{% when d 'seconds' %}", d=datetime(2026, 12, 7, 12, 0, tzinfo=UTC))

    assert written == (
        '<time datetime="2026-12-07T17:45:00+05:45" title="2026-12-07 17:45:00 UTC+05:45">2026-12-07 17:45:00</time>'
    )


def test_a_recent_moment_reads_as_how_long_ago_with_the_exact_moment_on_hover() -> None:
    moment = timezone.now() - timedelta(hours=3, minutes=10)
    with timezone.override("Asia/Tokyo"):
        written = render("{% when d 'ago' %}", d=moment)
        local = timezone.localtime(moment)

    assert written == (
        f'<time datetime="{local.isoformat()}" title="{local:%Y-%m-%d %H:%M:%S} JST" data-ago>3 h ago</time>'
    )


def test_a_moment_more_than_a_week_back_reads_as_itself_even_where_recency_matters() -> None:
    with timezone.override("Asia/Tokyo"):
        written = render("{% when d 'ago' %}", d=datetime(2020, 1, 1, 3, 0, tzinfo=UTC))

    assert written == (
        '<time datetime="2020-01-01T12:00:00+09:00" title="2020-01-01 12:00:00 JST" data-ago>2020-01-01 12:00</time>'
    )


NOW = datetime(2026, 12, 7, 14, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("before", "said"),
    [
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=60), "1 min ago"),
        (timedelta(minutes=59, seconds=59), "59 min ago"),
        (timedelta(hours=1), "1 h ago"),
        (timedelta(hours=13, minutes=59), "13 h ago"),  # still today
        (timedelta(hours=14, minutes=30), "14 h ago"),  # yesterday evening, within a day
        (timedelta(hours=24), "yesterday"),
        (timedelta(hours=38), "yesterday"),  # 00:00 yesterday
        (timedelta(hours=38, minutes=1), "2 d ago"),  # 23:59 the day before
        (timedelta(days=6), "6 d ago"),
        (timedelta(days=7), None),  # a week back: the moment itself says more
        (timedelta(seconds=-59), "just now"),  # a clock a little ahead
        (timedelta(minutes=-5), "in 5 min"),
        (timedelta(hours=-3), "in 3 h"),
        (timedelta(hours=-24), None),
    ],
)
def test_how_long_ago_at_each_boundary(before: timedelta, said: str | None) -> None:
    assert ago(NOW - before, NOW) == said


def test_days_ago_count_by_the_readers_calendar() -> None:
    # 26.5 hours apart: two days back in Berlin, one day back in UTC (half past midnight in Berlin).
    now = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    then = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)

    assert ago(then.astimezone(BERLIN), now.astimezone(BERLIN)) == "2 d ago"
    assert ago(then, now) == "yesterday"


def test_24_hours_back_on_the_day_the_clocks_go_back_is_still_today() -> None:
    # 25 October 2026 has 25 hours in Berlin: 24 hours before 23:30 is 00:30 the same day.
    now = datetime(2026, 10, 25, 23, 30, tzinfo=BERLIN)
    then = (now.astimezone(UTC) - timedelta(hours=24)).astimezone(BERLIN)

    assert then.hour == 0
    assert ago(then, now) == "24 h ago"


@pytest.mark.parametrize(
    ("seconds", "smallest", "written"),
    [
        (0, "min", "< 1 min"),
        (59, "min", "< 1 min"),
        (60, "min", "1 min"),
        (35 * 60 + 59, "min", "35 min"),
        (3600, "min", "1 h"),
        (3600 + 60, "min", "1 h 1 min"),
        (5 * 3600 + 20 * 60, "min", "5 h 20 min"),
        (2 * 86400 + 4 * 3600 + 59 * 60, "min", "2 d 4 h"),
        (2 * 86400 + 30 * 60, "min", "2 d"),  # the two largest units, not the two largest non-zero ones
        (400 * 86400, "min", "400 d"),
        (0, "s", "0 s"),
        (42, "s", "42 s"),
        (3 * 60 + 5, "s", "3 min 5 s"),
        (2 * 3600 + 60 + 30, "s", "2 h 1 min"),
        (-5, "min", "< 1 min"),
    ],
)
def test_a_length_of_time_is_written_in_its_two_largest_units(
    seconds: int, smallest: str, written: str
) -> None:
    assert span(seconds, smallest) == written


def test_a_resolved_incident_says_how_long_it_took_to_resolve() -> None:
    created = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    incident = SimpleNamespace(created_at=created, resolved_at=created + timedelta(hours=5, minutes=20))

    assert render("{% incident_age i %}", i=incident) == '<span class="age">resolved in 5 h 20 min</span>'


def test_an_open_incident_says_how_long_it_has_been_open() -> None:
    created = timezone.now() - timedelta(days=3, hours=4, minutes=10)
    incident = SimpleNamespace(created_at=created, resolved_at=None)
    with timezone.override("Asia/Tokyo"):
        written = render("{% incident_age i %}", i=incident)
        since = timezone.localtime(created).isoformat()

    assert written == f'<span class="age" data-open-since="{since}">open 3 d 4 h</span>'


@pytest.mark.parametrize(
    ("zone", "named"),
    [
        ("UTC", "Times in UTC"),
        ("Asia/Tokyo", "Times in Asia/Tokyo (JST)"),
        ("Asia/Kathmandu", "Times in Asia/Kathmandu (UTC+05:45)"),
    ],
)
def test_the_page_names_the_zone_its_times_are_in(zone: str, named: str) -> None:
    with timezone.override(zone):
        written = render("{% reader_zone %}")

    assert f'data-time-zone="{zone}"' in written
    assert written.endswith(f">{named}</span>")


def test_a_moment_as_plain_text_for_a_page_title() -> None:
    with timezone.override("America/New_York"):
        assert render("{{ d|moment }}", d=datetime(2026, 11, 27, 16, 0, tzinfo=UTC)) == "2026-11-27 11:00"


def test_a_charts_date_ticks_fall_on_the_readers_midnights() -> None:
    first, last = datetime(2026, 11, 1, 12, 0, tzinfo=UTC), datetime(2026, 11, 5, 12, 0, tzinfo=UTC)

    with timezone.override("Asia/Tokyo"):
        tokyo = time_ticks(first, last, 5)
    with timezone.override("UTC"):
        utc = time_ticks(first, last, 5)

    assert [(at.astimezone(UTC).hour, label) for at, label in tokyo][:2] == [(15, "2 Nov"), (15, "3 Nov")]
    assert [(at.astimezone(UTC).hour, label) for at, label in utc][:2] == [(0, "2 Nov"), (0, "3 Nov")]
