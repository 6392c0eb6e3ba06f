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
recorded inside a transaction. A service that changes many incidents at once records their events
together (record_all), and a handler that can react to them all in one statement subscribes in its
batch form (handles_batch); the others still run once per event.

Events carry the rows the service already holds (the incident, the results just stored) and the
facts a consumer could no longer read afterwards (the status before a change), so a handler need not
read them again; one that reads more does so in the recording transaction and sees the change itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from django.db import transaction


@dataclass(frozen=True)
class DomainEvent:
    """Base of every event; subclasses are frozen dataclasses in the app that records them."""


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[E], None]


@dataclass(frozen=True)
class _Subscription:
    handler: Callable[..., None]
    # Takes the list of the events recorded together (record_all) rather than one event.
    batch: bool


_handlers: defaultdict[type[DomainEvent], list[_Subscription]] = defaultdict(list)


class EventOutsideTransaction(RuntimeError):
    """An event was recorded outside a transaction: its reactions could not roll back with it."""


def subscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    """Run `handler` for every `event_type` recorded from now on (idempotent per handler)."""
    _add(event_type, _Subscription(handler, batch=False))


def subscribe_batch(event_type: type[E], handler: Callable[[Sequence[E]], None]) -> None:
    """Run `handler` once with all the `event_type` events recorded together (record_all), and with
    a list of one for an event recorded alone: a reaction that writes one statement for many
    incidents instead of one per incident (idempotent per handler)."""
    _add(event_type, _Subscription(handler, batch=True))


def _add(event_type: type[DomainEvent], subscription: _Subscription) -> None:
    subscriptions = _handlers[event_type]
    if all(held.handler is not subscription.handler for held in subscriptions):
        subscriptions.append(subscription)


def handles(event_type: type[E]) -> Callable[[Callable[[E], None]], Callable[[E], None]]:
    """Decorator form of subscribe(), for a module imported from AppConfig.ready."""

    def register(handler: Callable[[E], None]) -> Callable[[E], None]:
        subscribe(event_type, handler)
        return handler

    return register


def handles_batch(
    event_type: type[E],
) -> Callable[[Callable[[Sequence[E]], None]], Callable[[Sequence[E]], None]]:
    """Decorator form of subscribe_batch()."""

    def register(handler: Callable[[Sequence[E]], None]) -> Callable[[Sequence[E]], None]:
        subscribe_batch(event_type, handler)
        return handler

    return register


@contextmanager
def subscribed(event_type: type[E], handler: Callable[..., None], *, batch: bool = False) -> Iterator[None]:
    """Run `handler` for `event_type` inside the block only (a test's spy, a one-off reaction); with
    `batch`, as subscribe_batch() would."""
    _add(event_type, _Subscription(handler, batch=batch))
    try:
        yield
    finally:
        _handlers[event_type] = [held for held in _handlers[event_type] if held.handler is not handler]


def handlers_of(event_type: type[DomainEvent]) -> list[Callable[..., None]]:
    """The handlers an event of this type runs, in order (for tests and diagnostics)."""
    return [held.handler for held in _handlers.get(event_type, ())]


def record(event: DomainEvent) -> None:
    """Run every handler of `event` now, inside the caller's transaction."""
    record_all([event])


def record_all(events: Sequence[DomainEvent]) -> None:
    """Record events one service call made together (the incidents a scan folds into, those it
    opens), inside the caller's transaction.

    Per event type, in the order the types first appear: each handler in turn, in the order
    they were registered; a batch handler once with all that type's events, in the order given,
    any other once per event. So a handler sees every event of the call before the next handler
    runs, which is what lets the tallies, the coverage and the integrations write a few statements
    for a nightly scan's hundreds of incidents rather than a few per incident.
    """
    if not events:
        return
    if not transaction.get_connection().in_atomic_block:
        raise EventOutsideTransaction(
            f"{type(events[0]).__name__} must be recorded inside the change's transaction"
        )
    by_type: dict[type[DomainEvent], list[DomainEvent]] = {}
    for event in events:
        by_type.setdefault(type(event), []).append(event)
    for event_type, recorded in by_type.items():
        for subscription in list(_handlers.get(event_type, ())):
            if subscription.batch:
                subscription.handler(recorded)
            else:
                for event in recorded:
                    subscription.handler(event)
