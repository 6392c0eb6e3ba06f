"""Time zones a person may read Quell's times in: the IANA names this system's zone database knows."""

from __future__ import annotations

import functools
import zoneinfo


@functools.cache
def known_zones() -> frozenset[str]:
    """Every zone name ZoneInfo can load here. Read once: listing them walks the zone files (~0.1 s)."""
    return frozenset(zoneinfo.available_timezones())


def is_known_zone(name: str | None) -> bool:
    """Whether `name` is a zone people may choose; anything else (junk, an empty string) is not."""
    return bool(name) and name in known_zones()


@functools.cache
def zone_names() -> list[str]:
    """The known zones in alphabetical order, as a list to choose from."""
    return sorted(known_zones())
