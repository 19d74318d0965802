"""What the durable-rules backend (the production engine) can build, found by experiment.

durable-rules 2.0.28 refuses a rule whose expression has more than 15 ``$and``/``$or`` nodes
(``create_ruleset`` error 113; 15 build, 16 fail, whatever the shape), and building an ``$or``
of 500 alternatives does not finish in minutes while 300 take milliseconds. The backend emits
one node per ``and``/``or`` of two or more items (``applies_to`` and effective dates included)
and one more per field-to-field comparison (it must require the other field to exist).

When a fact is asserted, the C core walks its alpha network with a stack of 64 entries: every
comparison node that matches is pushed, and a 65th pending node fails the assertion with
error 303 (65 rules ``amount >= N`` that all hold fail; 64 pass; so do 64 comparisons spread
over two ``or`` groups of 32, and 300 ``teller_id == "T…"`` alternatives, of which only one
can hold). ``matching_demand`` bounds how many comparisons of a set of rules can hold at once
for one fact: every comparison counts, except that equalities of one field with constants
count only for the value named most often (a field has one value). The backend puts rules
together in one ruleset only while their demand is at most ``MAX_MATCHING``.
Lint refuses what is over these limits, naming the limit, instead of failing at start-up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from guardrail.lang.ir import AnyOf, Compare, Condition, FieldRef, Op, walk

MAX_COMPOUND_NODES = 15
MAX_OR_WIDTH = 300
MAX_MATCHING = 64


def matching_demand(conditions: Iterable[Condition]) -> int:
    """How many comparison nodes of these (guarded) conditions can match one fact at most."""
    equalities: Counter[tuple[str, object]] = Counter()
    others = 0
    for condition in conditions:
        for compare in walk(condition):
            if isinstance(compare.right, FieldRef):
                others += 2  # the comparison and the test that the other field exists
            elif compare.op is Op.EQ:
                equalities[(compare.left.key, compare.right.value)] += 1
            else:
                others += 1
    most: dict[str, int] = {}
    for (key, _), count in equalities.items():
        most[key] = max(most.get(key, 0), count)
    return others + sum(most.values())


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
    matching = matching_demand([guarded])
    if matching > MAX_MATCHING:
        problems.append(
            f"too many comparisons that can hold at once for the durable-rules backend:"
            f" {matching}, at most {MAX_MATCHING}; split the rule into several rules"
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


__all__ = [
    "MAX_COMPOUND_NODES",
    "MAX_MATCHING",
    "MAX_OR_WIDTH",
    "durable_problems",
    "matching_demand",
]
