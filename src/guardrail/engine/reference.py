"""The reference evaluator: plain Python over the IR. It is the oracle the durable-rules backend
is tested against, and, being cheap per call, the default for screening and bulk replay."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from guardrail.engine.codegen import compile_function, expression
from guardrail.lang.catalog import FieldSource, field_source
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, FieldRef, Op, RefKind
from guardrail.lang.pack import KIND_KEY, CompiledRule
from guardrail.model.features import Features, as_feature_map

Predicate = Callable[[Features], bool]

_OPERATORS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}


def compile_condition(condition: Condition) -> Predicate:
    """Turn IR into a predicate over a ``FeatureMap``. Unknown (missing) values make a
    comparison false. Within ``All`` cheap tests run first: under three-valued logic the
    order of a conjunction does not change its value, only what must be computed."""
    if isinstance(condition, Compare):
        return _compare(condition)
    items = sorted(condition.items, key=cost) if isinstance(condition, All) else condition.items
    parts = tuple(compile_condition(item) for item in items)
    if isinstance(condition, All):
        return _all_of(parts)
    assert isinstance(condition, AnyOf)
    return _any_of(parts)


# Small fixed arities get straight-line closures: this is the hot path of every screening.
def _all_of(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda features: first(features) and second(features)
    if len(parts) == 3:
        first, second, third = parts
        return lambda features: first(features) and second(features) and third(features)

    def all_of(features: Features) -> bool:
        for part in parts:  # noqa: SIM110 - a plain loop is faster than all() over a generator
            if not part(features):
                return False
        return True

    return all_of


def _any_of(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda features: first(features) or second(features)

    def any_of(features: Features) -> bool:
        for part in parts:  # noqa: SIM110 - a plain loop is faster than any() over a generator
            if part(features):
                return True
        return False

    return any_of


# Relative cost of reading a feature, by where the context layer gets it from.
_SOURCE_COST = {
    FieldSource.EVENT: 1,
    FieldSource.DERIVED: 5,
    FieldSource.HISTORY: 30,
    FieldSource.WINDOW: 40,
}


def _ref_cost(ref: FieldRef) -> int:
    if ref.kind is not RefKind.FIELD:
        return 20  # lexicon scan or watchlist lookup
    return _SOURCE_COST[field_source(ref.key)]


def cost(condition: Condition) -> int:
    """Estimated cost of evaluating ``condition`` (features it may compute)."""
    if isinstance(condition, Compare):
        right = _ref_cost(condition.right) if isinstance(condition.right, FieldRef) else 0
        return _ref_cost(condition.left) + right
    return sum(cost(item) for item in condition.items)


def holds(condition: Condition, features: Features) -> bool:
    """Whether ``condition`` is true on ``features`` (an absent key is unknown), interpreted
    directly from the IR: for explaining a hit, where compiling would cost more."""
    if isinstance(condition, Compare):
        value = features.get(condition.left.key)
        right = condition.right
        other = right.value if isinstance(right, Const) else features.get(right.key)
        return value is not None and other is not None and _OPERATORS[condition.op](value, other)
    if isinstance(condition, All):
        return all(holds(item, features) for item in condition.items)
    return any(holds(item, features) for item in condition.items)


def _compare(compare: Compare) -> Predicate:
    test = _OPERATORS[compare.op]
    key = compare.left.key
    right = compare.right
    if isinstance(right, Const):
        constant = right.value

        def against_constant(features: Features) -> bool:
            value = features[key]
            return value is not None and test(value, constant)

        return against_constant
    other = right.key

    def against_field(features: Features) -> bool:
        value = features[key]
        other_value = features[other]
        return value is not None and other_value is not None and test(value, other_value)

    return against_field


class ReferenceBackend:
    """Evaluates the pack's rules as generated Python (``engine.codegen``): one function per
    event kind holding only the rules that apply to it, in pack order."""

    name = "reference"

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        kinds = {kind for rule in rules for kind in (_kinds(rule) or ())}
        self._by_kind: dict[object, Callable[[Features], list[str]]] = {
            kind: _rules_function([rule for rule in rules if (_kinds(rule) or {kind}) >= {kind}])
            for kind in kinds
        }
        self._other_kinds = _rules_function([rule for rule in rules if _kinds(rule) is None])

    def evaluate(self, features: Features) -> list[str]:
        features = as_feature_map(features)
        return self._by_kind.get(features[KIND_KEY], self._other_kinds)(features)


def _rules_function(rules: Sequence[CompiledRule]) -> Callable[[Features], list[str]]:
    body = ["hits = []"]
    for rule in rules:
        body.append(f"if {expression(rule.guarded, cost)}:")
        body.append(f"    hits.append({rule.id!r})")
    body.append("return hits")
    return compile_function("evaluate_rules", body)


def _kinds(rule: CompiledRule) -> frozenset[str] | None:
    # Only a shortcut: the kind test is also inside ``rule.guarded``.
    if not rule.spec.applies_to:
        return None
    return frozenset(kind.value for kind in rule.spec.applies_to)
