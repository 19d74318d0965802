"""Both backends give identical decisions on the largest shipped pack (80 rules) and the
benchmark's 50-rule pack, which the durable backend splits into several rulesets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.engine import DurableRulesBackend
from guardrail.guard import Guard
from guardrail.testing import Typology, events
from support import BASELINE, ROOT

_PACKS = {"cn-baseline": BASELINE, "bench50": ROOT / "benchmarks" / "packs" / "bench50"}
_GUARDS = {
    name: (Guard.from_path(path), Guard.from_path(path, backend="durable_rules"))
    for name, path in _PACKS.items()
}
_EVENTS = st.one_of(
    events(), st.sampled_from(list(Typology)).flatmap(lambda typology: events(typology=typology))
)


@pytest.mark.parametrize("name", sorted(_PACKS))
def test_the_large_packs_span_several_rulesets(name: str) -> None:
    reference, durable = _GUARDS[name]
    assert len(reference.pack.rules) >= 50
    assert isinstance(durable.backend, DurableRulesBackend)
    assert len(durable.backend.ruleset_names) >= 2


@pytest.mark.parametrize("name", sorted(_PACKS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_EVENTS)
def test_backends_agree_on_the_large_packs(name: str, event: Any) -> None:
    reference, durable = _GUARDS[name]
    by_reference = reference.screen(event)
    by_durable = durable.screen(event)
    assert not by_reference.failures and not by_durable.failures
    assert by_reference.hits == by_durable.hits
    assert by_reference.action == by_durable.action
