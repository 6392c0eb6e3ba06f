"""Slack and Teams hear of a merge: the incident merged into says what joined it, the one merged says it
was resolved as a duplicate (quell.incidents.merging)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from django.conf import LazySettings

from quell.incidents import merging
from quell.incidents import services as incidents
from tests.conftest import World
from tests.integrations.conftest import Receiver, add_webhook, drain
from tests.integrations.test_chat_formats import SENDERS, texts


@pytest.mark.parametrize(("kind", "schema"), SENDERS)
def test_slack_and_teams_say_what_was_merged_into_the_incident(
    world: World, receiver: Receiver, fast: LazySettings, kind: str, schema: dict[str, Any]
) -> None:
    empty = incidents.create_incident(
        by=world.editor, title="Orders table is empty", check_result_ids=[world.orders_fail.pk]
    )
    stale = incidents.create_incident(
        by=world.manager, title="Orders are stale", check_result_ids=[world.orders_fail_2.pk]
    )
    add_webhook(world, receiver.url, kind=kind, events=["incidentUpdated"])

    merging.merge_incidents(empty.pk, [stale.pk], by=world.editor)
    drain()

    messages = [request.json() for request in receiver.wait_for(2)]
    validator = jsonschema_rs.validator_for(schema)
    assert all(validator.is_valid(message) for message in messages)
    said = [text for message in messages for text in texts(message)]
    assert any(f"#{stale.number} Orders are stale merged into this incident" in text for text in said)
    assert any(
        f"Resolved (Duplicate): Merged into #{empty.number} Orders table is empty." in text for text in said
    )
