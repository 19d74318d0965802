"""Both backends give identical decisions on the starter pack for events generated with the
public strategies of ``guardrail.testing``."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from guardrail.guard import Guard
from guardrail.testing import events
from support import STARTER

_STARTER_REFERENCE = Guard.from_path(STARTER)
_STARTER_DURABLE = Guard.from_path(STARTER, backend="durable_rules")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_backends_agree_on_starter_pack(event: Any) -> None:
    by_reference = _STARTER_REFERENCE.screen(event)
    by_durable = _STARTER_DURABLE.screen(event)
    assert not by_reference.failures and not by_durable.failures
    assert by_reference.rule_ids == by_durable.rule_ids
    assert by_reference.action == by_durable.action
    assert by_reference.hits == by_durable.hits
