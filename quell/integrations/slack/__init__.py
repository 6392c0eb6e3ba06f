"""Slack: a Block Kit message to an incoming-webhook URL."""
