"""The icon browsers show for Quell's tabs: linked from every page and answered at /favicon.ico."""

from __future__ import annotations

import re

import httpx

from tests.conftest import World


def test_every_page_links_the_icon_and_favicon_ico_leads_to_it(live_server: object, world: World) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    with httpx.Client(base_url=base, timeout=60) as http:
        login = http.get("/login/")
        assert login.status_code == 200
        (icon,) = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', login.text)

        svg = http.get(icon)
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.startswith("<svg ")

        # Asked for by browsers whatever the page links (and by the API's docs page, which links nothing).
        answer = http.get("/favicon.ico")
        assert answer.status_code == 302
        assert answer.headers["location"] == icon
        assert http.get("/favicon.ico", follow_redirects=True).content == svg.content
        # No session needed, and none started.
        assert "set-cookie" not in answer.headers
