"""Quell: a self-hosted incident manager for data quality."""

__version__ = "0.2.0"
