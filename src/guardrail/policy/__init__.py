"""Policies applied after the live decision, and shadow runs beside it.

``snooze`` (a rule quietened for one cleared customer, account or payee), ``breaker`` (a rule
whose hit rate explodes is capped), ``apply`` (both, as one function on a decision), ``stores``
(where their state lives: memory or SQLite, shared across processes) and ``shadow`` (a
candidate pack screened with the same code beside the live one). Sits between ``context``
and ``guard``: the Guard calls it; it never imports the Guard.
"""

from guardrail.policy.apply import PostDecisionPolicies
from guardrail.policy.breaker import BreakerMetrics, CircuitBreakers
from guardrail.policy.shadow import ShadowComparison, ShadowSink, compare
from guardrail.policy.snooze import EntityKind, Snooze, SnoozeRefused, new_snooze
from guardrail.policy.stores import (
    BreakerState,
    BreakerStore,
    MemoryBreakerStore,
    MemorySnoozeStore,
    SnoozeStore,
)

__all__ = [
    "BreakerMetrics",
    "BreakerState",
    "BreakerStore",
    "CircuitBreakers",
    "EntityKind",
    "MemoryBreakerStore",
    "MemorySnoozeStore",
    "PostDecisionPolicies",
    "ShadowComparison",
    "ShadowSink",
    "Snooze",
    "SnoozeRefused",
    "SnoozeStore",
    "compare",
    "new_snooze",
]
