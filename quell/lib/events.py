"""Domain events: a service records what happened; the apps that care react, in the same transaction.

A service records an event (a frozen dataclass naming what changed) inside the transaction that
made the change. Every handler registered for that event's class runs at once, in that transaction,
in the order the handlers were registered. A handler that raises rolls the whole change back, so a
consumer that must stay consistent with the change (the integrations outbox, the status tallies) can
never miss one or see one that did not happen. Anything slow is not done in a handler: the handler
writes a row that a worker picks up (as the integrations' deliveries are), after commit.

Why not Django's signals: they pass untyped keyword arguments, swallow nothing but also check
nothing (a handler can be connected to a misspelled signal and never run), and `send_robust`
would hide exactly the errors that must roll the change back. Why not on_commit: the reactions
here must be part of the change, not follow it. This module is the whole mechanism: typed events,
a registry filled at start-up by each consumer app's AppConfig.ready, and a check that an event is
recorded inside a transaction.

Events carry the rows the service already holds (the incident, the results just stored) and the
facts a consumer could no longer read afterwards (the status before a change), so a handler need not
read them again; one that reads more does so in the recording transaction and sees the change itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from django.db import transaction


@dataclass(frozen=True)
class DomainEvent:
    """Base of every event; subclasses are frozen dataclasses in the app that records them."""


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[E], None]

_handlers: defaultdict[type[DomainEvent], list[Callable[[DomainEvent], None]]] = defaultdict(list)


class EventOutsideTransaction(RuntimeError):
    """An event was recorded outside a transaction: its reactions could not roll back with it."""


def subscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    """Run `handler` for every `event_type` recorded from now on (idempotent per handler)."""
    handlers = _handlers[event_type]
    if handler not in handlers:
        handlers.append(handler)  # type: ignore[arg-type]


def handles(event_type: type[E]) -> Callable[[Callable[[E], None]], Callable[[E], None]]:
    """Decorator form of subscribe(), for a module imported from AppConfig.ready."""

    def register(handler: Callable[[E], None]) -> Callable[[E], None]:
        subscribe(event_type, handler)
        return handler

    return register


@contextmanager
def subscribed(event_type: type[E], handler: Callable[[E], None]) -> Iterator[None]:
    """Run `handler` for `event_type` inside the block only (a test's spy, a one-off reaction)."""
    subscribe(event_type, handler)
    try:
        yield
    finally:
        _handlers[event_type].remove(handler)  # type: ignore[arg-type]


def handlers_of(event_type: type[DomainEvent]) -> list[Callable[[DomainEvent], None]]:
    """The handlers an event of this type runs, in order (for tests and diagnostics)."""
    return list(_handlers.get(event_type, ()))


def record(event: DomainEvent) -> None:
    """Run every handler of `event` now, inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise EventOutsideTransaction(
            f"{type(event).__name__} must be recorded inside the change's transaction"
        )
    for handler in _handlers.get(type(event), ()):
        handler(event)
