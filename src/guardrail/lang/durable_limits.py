"""What the durable-rules backend (the production engine) can build, found by experiment.

durable-rules 2.0.28 refuses a rule whose expression has more than 15 ``$and``/``$or`` nodes
(``create_ruleset`` error 113; 15 build, 16 fail, whatever the shape), and building an ``$or``
of 500 alternatives does not finish in minutes while 300 take milliseconds. The backend emits
one node per ``and``/``or`` of two or more items (``applies_to`` and effective dates included)
and one more per field-to-field comparison (it must require the other field to exist).
Lint refuses what is over these limits, naming the limit, instead of failing at start-up.
"""

from __future__ import annotations

from guardrail.lang.ir import AnyOf, Compare, Condition, FieldRef

MAX_COMPOUND_NODES = 15
MAX_OR_WIDTH = 300


def durable_problems(guarded: Condition) -> list[str]:
    """Why the durable backend cannot build a rule with this (guarded) condition, if it can't."""
    problems: list[str] = []
    nodes = _compound_nodes(guarded)
    if nodes > MAX_COMPOUND_NODES:
        problems.append(
            f"too complex for the durable-rules backend: {nodes} and/or groups (with applies_to,"
            f" dates and field-to-field comparisons), at most {MAX_COMPOUND_NODES};"
            " split the rule into several rules"
        )
    widest = _widest_or(guarded)
    if widest > MAX_OR_WIDTH:
        problems.append(
            f"too many alternatives for the durable-rules backend: {widest} in one 'or' or"
            f" 'in' list, at most {MAX_OR_WIDTH}; use a watchlist for long lists"
        )
    return problems


def _compound_nodes(condition: Condition) -> int:
    if isinstance(condition, Compare):
        return 1 if isinstance(condition.right, FieldRef) else 0
    own = 1 if len(condition.items) > 1 else 0
    return own + sum(_compound_nodes(item) for item in condition.items)


def _widest_or(condition: Condition) -> int:
    if isinstance(condition, Compare):
        return 0
    own = len(condition.items) if isinstance(condition, AnyOf) else 0
    return max([own, *(_widest_or(item) for item in condition.items)])


__all__ = ["MAX_COMPOUND_NODES", "MAX_OR_WIDTH", "durable_problems"]
