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
from guardrail.context.extract import EXTRACT_NAMESPACE, NEVER_NONE, assignments
from guardrail.context.windows import (
    STATIC_EXPRESSIONS,
    STATIC_NAMESPACE,
    STATIC_PRELUDE,
    is_windowed,
    zone,
)
from guardrail.engine.codegen import compile_function, expression, generated_source
from guardrail.engine.reference import cost
from guardrail.lang.catalog import LOCAL_DATE_KEY
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, FieldRef, Op, refs
from guardrail.lang.pack import KIND_KEY, CompiledRule, Pack

__all__ = ["Screening", "compile_screening", "screening_source"]

Screening = Callable[[Any, Resolution], list[str]]
"""``screening(event, resolution)``: the ids of the rules that fired, in pack order. Fills
``resolution.features`` (completely when a rule fired) and ``resolution.details``; sets
``resolution.stage`` to ``"engine"`` once the features are resolved."""


def compile_screening(pack: Pack, plan: FeaturePlan) -> Screening:
    """The generated resolve-and-evaluate function of ``pack`` (``plan``: its feature plan)."""
    namespace: dict[str, Any] = {
        **EXTRACT_NAMESPACE,
        **STATIC_NAMESPACE,
        "_plan": plan,
        "_zone": zone,
    }
    for index, step in enumerate(plan.steps):
        namespace[f"_step{index}"] = step
    if plan.history_mask:
        namespace["_is_windowed"] = is_windowed
    rules = [(rule, plan.gate_of(rule)) for rule in pack.engine_rules]
    kinds = sorted({kind for rule, _ in rules for kind in (_kinds(rule) or ())})
    namespace["_KIND_INDEX"] = {kind: index for index, kind in enumerate(kinds)}
    body = ["f = r.features", "hits = []", "k = _KIND_INDEX.get(e.kind, -1)"]
    for index, kind in enumerate(kinds):
        of_kind = [(rule, gate) for rule, gate in rules if kind in (_kinds(rule) or {kind})]
        applying: list[Gated] = [
            (specialise(rule.guarded, kind), _specialised_gate(gate, kind), rule.id)
            for rule, gate in of_kind
        ]
        body.append(f"{'if' if index == 0 else 'elif'} k == {index}:  # {kind}")
        body += ["    " + line for line in _block(plan, applying, _reads(of_kind))]
    others = [(rule, gate) for rule, gate in rules if _kinds(rule) is None]
    body.append("else:" if kinds else "if True:")
    gated: list[Gated] = [(rule.guarded, gate, rule.id) for rule, gate in others]
    body += ["    " + line for line in _block(plan, gated, _reads(others))]
    body.append("return hits")
    screening: Screening = compile_function(
        "screen_event", body, parameter="e, r", namespace=namespace
    )
    return screening


def screening_source(screening: Screening) -> str:
    """The Python source of a function made by :func:`compile_screening`."""
    return generated_source(screening)


Gate = tuple[int, Condition | bool | None]
Gated = tuple[Condition | bool, Gate | None, str]
"""A rule as a block evaluates it: its condition, its gate (see ``FeaturePlan.gate_of``) and
its id; a condition or gate test decided for the block's kind is a plain bool."""


def _specialised_gate(gate: tuple[int, Condition | None] | None, kind: str) -> Gate | None:
    if gate is None:
        return None
    mask, test = gate
    return mask, None if test is None else specialise(test, kind)


def _reads(rules: list[tuple[CompiledRule, Any]]) -> set[str]:
    """Every feature the conditions of ``rules`` read, kind tests included (``decide`` shows
    them as evidence)."""
    return {ref.key for rule, _ in rules for ref in refs(rule.guarded)}


def _block(plan: FeaturePlan, rules: list[Gated], explained: set[str]) -> list[str]:
    """The code for events of one kind (or of any other): the event's own and derived
    features its rules read, into locals; the gates of the costly steps, the steps; the rules
    in pack order; and, when one fired, the locals into the feature map (``explained``: the
    features the unspecialised conditions read, for ``decide``)."""
    rules = [rule for rule in rules if rule[0] is not False]
    gates = [gate for _, gate, _ in rules if gate is not None and gate[1] is not False]
    used = {ref.key for condition, _, _ in rules for ref in _refs(condition)} | explained
    used |= {ref.key for _, test in gates for ref in _refs(test)}
    if gates:
        used |= plan.step_reads
    lines, local_of = _locals(plan, used)

    def read(key: str) -> str:
        return local_of.get(key, f"f[{key!r}]")

    if gates:
        # Gates without a cheap test are decided here: their steps always run.
        always = 0
        for mask, test in gates:
            if test is None or test is True:
                always |= mask
        lines.append(f"m = {always}")
        tested: set[tuple[int, str]] = set()
        for mask, test in gates:
            if mask & ~always == 0 or test is None or test is True:
                continue
            needed = f"m & {mask} != {mask}"
            if isinstance(test, All | AnyOf | Compare):
                needed += f" and {expression(test, cost, read, NEVER_NONE)}"
            if (mask, needed) in tested:
                continue
            tested.add((mask, needed))
            lines += [f"if {needed}:", f"    m |= {mask}"]
        lines.append("if True:" if always else "if m:")
        # The steps read a few base features from the map (a watchlist's field).
        lines += [f"    f[{key!r}] = {read(key)}" for key in sorted(plan.step_reads)]
        if plan.history_mask:
            lines += [
                f"    if m & {plan.history_mask} and _is_windowed(r.history):",
                f"        _plan.all_windows(r, m & {plan.history_mask})",
                f"        m &= ~{plan.history_mask}",
            ]
        for index in range(len(plan.steps)):
            if any(mask & (1 << index) for mask, _ in gates):
                lines += [f"    if m & {1 << index}:", f"        _step{index}(r)"]
    lines.append("r.stage = 'engine'")
    for condition, _, rule_id in rules:
        fires = (
            expression(condition, cost, read, NEVER_NONE)
            if not isinstance(condition, bool)
            else "True"
        )
        lines += [f"if {fires}:", f"    hits.append({rule_id!r})"]
    if local_of:
        lines.append("if hits:  # decide explains the hits with the features")
        pairs = ", ".join(f"{key!r}: {var}" for key, var in local_of.items())
        lines.append(f"    f.update({{{pairs}}})")
    return lines or ["pass"]


def _refs(condition: Condition | bool | None) -> list[FieldRef]:
    return [] if condition is None or isinstance(condition, bool) else refs(condition)


def _locals(plan: FeaturePlan, used: set[str]) -> tuple[list[str], dict[str, str]]:
    """Lines putting the event's own and derived features among ``used`` in locals, and the
    local of each key."""
    lines, local_of = assignments(used & plan.extract_keys, "v")
    static = [key for key in STATIC_EXPRESSIONS if key in used]
    if static or (plan.needs_local_date and LOCAL_DATE_KEY in used):
        # ``r.local_time()`` inline: the event's time on the branch clock, kept for the steps
        lines.append("local = r.local = e.timestamp.astimezone(_zone(e.branch.timezone))")
    if plan.needs_local_date and LOCAL_DATE_KEY in used:
        local_of[LOCAL_DATE_KEY] = f"d{len(local_of)}"
        lines.append(
            f"{local_of[LOCAL_DATE_KEY]} = local.year * 10000 + local.month * 100 + local.day"
        )
    if static:
        lines += STATIC_PRELUDE
        for key in static:
            local_of[key] = f"d{len(local_of)}"
            lines.append(f"{local_of[key]} = {STATIC_EXPRESSIONS[key]}  # {key}")
    for key, depth in plan.region_depths.items():
        if key in used:
            local_of[key] = f"d{len(local_of)}"
            lines.append(f"{local_of[key]} = '-'.join(e.branch.region.split('-')[:{depth}])")
    return lines, local_of


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
