"""Soda Cloud's ingestion endpoints, at the paths Soda Core builds from its `soda_cloud:` host."""

from __future__ import annotations

from django.urls import path

from quell.ingest import protocol

urlpatterns = [
    path("api/command", protocol.command, name="soda-command"),
    path("api/query", protocol.query, name="soda-query"),
    path("api/scan/upload", protocol.scan_upload, name="soda-scan-upload"),
]
