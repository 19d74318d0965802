"""``decide`` builds decisions without validating them again (``model.decision.trusted``): what
it builds must be exactly what validation gives, value for value and byte for byte."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from guardrail.guard import Guard
from guardrail.model.decision import Decision
from guardrail.testing import events
from support import BASELINE, STARTER

_GUARDS = [Guard.from_path(STARTER), Guard.from_path(BASELINE)]


def _same_as_validated(decision: Decision) -> None:
    validated = Decision.model_validate(decision.model_dump())
    assert decision == validated
    assert decision.model_dump() == validated.model_dump()
    assert repr(decision.model_dump()) == repr(validated.model_dump())  # the types too
    assert decision.model_dump_json() == validated.model_dump_json()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_a_decision_built_by_decide_is_the_validated_decision(event: Any) -> None:
    for guard in _GUARDS:
        _same_as_validated(guard.screen(event))
