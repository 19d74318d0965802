"""One generated function per pack that resolves an event's features and evaluates the rules
on them: the reference backend's screening path in a few Python-level calls.

:class:`FeaturePlan` followed by the reference backend's ``evaluate`` computes the same thing in
two steps that meet in a dictionary: every base feature is written to a ``FeatureMap`` and read
back by the gate and the rules. The function generated here (:func:`compile_screening`) keeps
the event's own and derived features in local variables: it extracts only the fields the pack
reads, computes the derived ones inline, calls the costly steps (windows, history, lexicons,
watchlists; the plan's own step functions) only when a rule that reads them can still fire,
evaluates every rule of the event's kind inline, in pack order, and returns the ids of the
rules that fired. The feature map is completed only when something fired (``decide`` explains
hits with it); an event without a hit never builds it.

The semantics are the interpreted path's, feature for feature (``tests/context/
test_compiled_screening.py`` holds the two equal on random events). :func:`screening_source`
prints what a pack became."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guardrail.context.enrich import FeaturePlan, Resolution
from guardrail.context.extract import EXTRACT_NAMESPACE, assignments
from guardrail.context.windows import (
    STATIC_EXPRESSIONS,
    STATIC_NAMESPACE,
    STATIC_PRELUDE,
    is_windowed,
)
from guardrail.engine.codegen import compile_function, expression, generated_source
from guardrail.engine.reference import cost
from guardrail.lang.catalog import LOCAL_DATE_KEY
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, Op
from guardrail.lang.pack import KIND_KEY, CompiledRule, Pack

__all__ = ["Screening", "compile_screening", "screening_source"]

Screening = Callable[[Any, Resolution], list[str]]
"""``screening(event, resolution)``: the ids of the rules that fired, in pack order. Fills
``resolution.features`` (completely when a rule fired) and ``resolution.details``; sets
``resolution.stage`` to ``"engine"`` once the features are resolved."""


def compile_screening(pack: Pack, plan: FeaturePlan) -> Screening:
    """The generated resolve-and-evaluate function of ``pack`` (``plan``: its feature plan)."""
    body, names = assignments(plan.extract_keys, "v")
    namespace: dict[str, Any] = {**EXTRACT_NAMESPACE, "_plan": plan}
    derived: dict[str, str] = {}
    if plan.needs_static or plan.needs_local_date:
        body.append("local = r.local_time()")
        if plan.needs_local_date:
            derived[LOCAL_DATE_KEY] = "d0"
            body.append("d0 = local.year * 10000 + local.month * 100 + local.day")
        if plan.needs_static:
            namespace.update(STATIC_NAMESPACE)
            body += STATIC_PRELUDE
            for key, source in STATIC_EXPRESSIONS.items():
                if key in plan.keys:
                    derived[key] = f"d{len(derived)}"
                    body.append(f"{derived[key]} = {source}  # {key}")
    for key, depth in plan.region_depths.items():
        derived[key] = f"d{len(derived)}"
        body.append(f"{derived[key]} = '-'.join(e.branch.region.split('-')[:{depth}])")
    local_of = {**names, **derived}

    def read(key: str) -> str:
        return local_of.get(key, f"f[{key!r}]")

    body.append("f = r.features")
    body.append("hits = []")
    body += _blocks(pack, plan, read, namespace)
    body.append("if hits:  # decide explains the hits with the features")
    body.append(
        "    f.update({" + ", ".join(f"{key!r}: {var}" for key, var in local_of.items()) + "})"
    )
    body.append("return hits")
    screening: Screening = compile_function(
        "screen_event", body, parameter="e, r", namespace=namespace
    )
    return screening


def screening_source(screening: Screening) -> str:
    """The Python source of a function made by :func:`compile_screening`."""
    return generated_source(screening)


def _blocks(
    pack: Pack, plan: FeaturePlan, read: Callable[[str], str], namespace: dict[str, Any]
) -> list[str]:
    """One block per event kind (the reference backend's dispatch), and one for any other
    kind. A block holds what the rules that apply to its kind need, with the kind's tests
    already decided: the gates of their costly steps, the steps, then the rules in pack
    order."""
    rules = [(rule, plan.gate_of(rule)) for rule in pack.engine_rules]
    kinds = sorted({kind for rule, _ in rules for kind in (_kinds(rule) or ())})
    namespace["_KIND_INDEX"] = {kind: index for index, kind in enumerate(kinds)}
    for index, step in enumerate(plan.steps):
        namespace[f"_step{index}"] = step
    if plan.history_mask:
        namespace["_is_windowed"] = is_windowed
    lines = [f"k = _KIND_INDEX.get({read(KIND_KEY)}, -1)"]
    for index, kind in enumerate(kinds):
        applying: list[Gated] = [
            (specialise(rule.guarded, kind), _specialised_gate(gate, kind), rule.id)
            for rule, gate in rules
            if kind in (_kinds(rule) or {kind})
        ]
        lines.append(f"{'if' if index == 0 else 'elif'} k == {index}:  # {kind}")
        lines += ["    " + line for line in _block(plan, applying, read)]
    others: list[Gated] = [
        (rule.guarded, gate, rule.id) for rule, gate in rules if _kinds(rule) is None
    ]
    lines.append("else:" if kinds else "if True:")
    lines += ["    " + line for line in _block(plan, others, read)]
    return lines


Gate = tuple[int, Condition | bool | None]
Gated = tuple[Condition | bool, Gate | None, str]
"""A rule as a block evaluates it: its condition, its gate (see ``FeaturePlan.gate_of``) and
its id; a condition or gate test decided for the block's kind is a plain bool."""


def _specialised_gate(gate: tuple[int, Condition | None] | None, kind: str) -> Gate | None:
    if gate is None:
        return None
    mask, test = gate
    return mask, None if test is None else specialise(test, kind)


def _block(plan: FeaturePlan, rules: list[Gated], read: Callable[[str], str]) -> list[str]:
    lines = ["pass"]
    gates = [gate for condition, gate, _ in rules if gate is not None and condition is not False]
    if gates:
        lines.append("m = 0")
        for mask, test in gates:
            if test is False:
                continue
            needed = f"m & {mask} != {mask}"
            if test is not None and test is not True:
                needed += f" and {expression(test, cost, read)}"
            lines += [f"if {needed}:", f"    m |= {mask}"]
        lines.append("if m:")
        # The steps read a few base features from the map (a watchlist's field).
        lines += [f"    f[{key!r}] = {read(key)}" for key in sorted(plan.step_reads)]
        if plan.history_mask:
            lines += [
                f"    if m & {plan.history_mask} and _is_windowed(r.history):",
                "        _plan.all_windows(r)",
                f"        m &= ~{plan.history_mask}",
            ]
        for index in range(len(plan.steps)):
            if any(gate[0] & (1 << index) for gate in gates):
                lines += [f"    if m & {1 << index}:", f"        _step{index}(r)"]
    lines.append("r.stage = 'engine'")
    for condition, _, rule_id in rules:
        if condition is False:
            continue
        fires = "True" if condition is True else expression(condition, cost, read)
        lines += [f"if {fires}:", f"    hits.append({rule_id!r})"]
    return lines


def specialise(condition: Condition, kind: str) -> Condition | bool:
    """``condition`` for events of ``kind``: each test of the kind replaced by its outcome, and
    ``and``/``or`` simplified around it (True or False when nothing else is left)."""
    if isinstance(condition, Compare):
        if (
            condition.left.key == KIND_KEY
            and isinstance(condition.right, Const)
            and condition.op in (Op.EQ, Op.NE)
        ):
            same = kind == condition.right.value
            return same if condition.op is Op.EQ else not same
        return condition
    parts = [specialise(item, kind) for item in condition.items]
    conjunction = isinstance(condition, All)
    if any(part is not conjunction and isinstance(part, bool) for part in parts):
        return not conjunction  # a false part of an "and", a true part of an "or"
    kept = tuple(part for part in parts if not isinstance(part, bool))
    if not kept:
        return conjunction  # every part was true ("and") or false ("or")
    if len(kept) == 1:
        return kept[0]
    return All(kept) if conjunction else AnyOf(kept)


def _kinds(rule: CompiledRule) -> frozenset[str] | None:
    # As the reference backend: only a shortcut, the kind test is also inside ``rule.guarded``.
    if not rule.spec.applies_to:
        return None
    return frozenset(kind.value for kind in rule.spec.applies_to)
