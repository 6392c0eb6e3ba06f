"""Integrations: signed webhooks, Slack and Microsoft Teams, fed by a durable outbox.

A change records its event in its own transaction (events.py); the task worker delivers it
(delivery.py) through one small transport per kind (webhook/, slack/, msteams/), over HTTP that
refuses private addresses (netguard.py). Admins manage everything through services.py.
"""
