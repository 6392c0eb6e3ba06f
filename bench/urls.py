"""Quell's URLs plus the floor endpoint at /bench/floor/ (see bench/settings.py)."""

from __future__ import annotations

from django.urls import include, path

from quell.urls import urlpatterns as quell_urlpatterns

urlpatterns = [path("bench/floor/", include("bench.floor")), *quell_urlpatterns]
