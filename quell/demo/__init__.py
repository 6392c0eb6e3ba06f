"""A demo organisation, "Acme Data", for trying Quell out: people, datasets, four weeks of scans, incidents,
incident rules and a muted check.

What the organisation is lives in organisation.toml; quell.demo.load builds it through Quell's services
and quell.demo.checks makes its checks' results day by day.
"""

from quell.demo.load import DAYS, DEMO_PASSWORD, DemoLogin, DemoRefused, DemoSummary, load_demo

__all__ = ["DAYS", "DEMO_PASSWORD", "DemoLogin", "DemoRefused", "DemoSummary", "load_demo"]
