"""The questions ``guardrail analyze`` asks the solver about packs.

Every verdict is one of: proven (the solver found the negation unsatisfiable), refuted (it
found a model), unknown (time limit or solver gave up) or not covered (the rule uses a construct
the encoding does not model). Only a proof is ever reported as a finding's certainty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import z3

from guardrail.analysis.encode import ACTIONS, Encoder, NotCovered, PackFormulas, encode_pack
from guardrail.lang.ir import render
from guardrail.lang.pack import CompiledRule, Pack
from guardrail.model.decision import Action, Obligation

DEFAULT_TIMEOUT_S = 5.0


class Verdict(str, Enum):
    PROVEN = "proven"
    REFUTED = "refuted"
    UNKNOWN = "unknown"
    NOT_COVERED = "not_covered"


@dataclass(frozen=True)
class Finding:
    kind: str  # dead, redundant, conflicting_intent, unknown, not_covered
    rule: str
    explanation: str
    other: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "other": self.other,
            "explanation": self.explanation,
        }


@dataclass
class Analysis:
    pack: str
    rules: int
    findings: list[Finding] = field(default_factory=list)
    queries: int = 0

    @property
    def dead(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "dead"]

    def as_json(self) -> dict[str, object]:
        return {
            "pack": self.pack,
            "rules": self.rules,
            "queries": self.queries,
            "findings": [f.as_json() for f in self.findings],
        }


def _check(formulas: list[z3.BoolRef], constraints: list[z3.BoolRef], timeout_s: float) -> Verdict:
    """PROVEN when the conjunction is unsatisfiable, REFUTED when it has a model."""
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    solver.add(*constraints, *formulas)
    result = solver.check()
    if result == z3.unsat:
        return Verdict.PROVEN
    if result == z3.sat:
        return Verdict.REFUTED
    return Verdict.UNKNOWN


def analyze_pack(pack: Pack, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Analysis:
    """Dead rules, redundant rules and rules with overlapping, contradicting intent."""
    analysis = Analysis(pack=pack.meta.name, rules=len(pack.rules))
    encoder = Encoder()
    hits: dict[str, z3.BoolRef] = {}
    live: dict[str, z3.BoolRef] = {}
    for rule in pack.rules:
        try:
            hits[rule.id] = encoder.condition(rule.guarded, pack)
            clearing = rule.clearing_rule()
            cleared = (
                encoder.condition(clearing.guarded, pack)
                if clearing is not None
                else z3.BoolVal(False)
            )
            live[rule.id] = z3.And(hits[rule.id], z3.Not(cleared))
        except NotCovered as problem:
            analysis.findings.append(Finding("not_covered", rule.id, f"not analysed: {problem}"))
    constraints = encoder.constraints

    def ask(*formulas: z3.BoolRef) -> Verdict:
        analysis.queries += 1
        return _check(list(formulas), constraints, timeout_s)

    dead: set[str] = set()
    for rule in pack.rules:
        if rule.id not in hits:
            continue
        verdict = ask(hits[rule.id])
        if verdict is Verdict.PROVEN:
            dead.add(rule.id)
            analysis.findings.append(
                Finding(
                    "dead",
                    rule.id,
                    "no event can satisfy its condition within its kinds and dates: "
                    + render(rule.condition),
                )
            )
        elif verdict is Verdict.UNKNOWN:
            analysis.findings.append(Finding("unknown", rule.id, "dead-rule query timed out"))
    scored = bool(pack.score_bands)
    candidates = [r for r in pack.rules if r.id in live and r.id not in dead]
    for rule in candidates:
        if scored and rule.spec.score:
            continue  # removing it would lower the score: never redundant
        for other in candidates:
            if other.id == rule.id or other.action.rank < rule.action.rank:
                continue
            if not set(rule.spec.obligations) <= set(other.spec.obligations):
                continue
            verdict = ask(live[rule.id], z3.Not(live[other.id]))
            if verdict is Verdict.PROVEN:
                analysis.findings.append(
                    Finding(
                        "redundant",
                        rule.id,
                        f"whenever it fires, {other.id} fires too with action "
                        f"{other.action.value} (>= {rule.action.value}) and its obligations",
                        other=other.id,
                    )
                )
                break
    _conflicting_intent(candidates, live, ask, analysis)
    return analysis


_INTERCEPTING = frozenset({Action.INTERCEPT, Action.REPORT})


def _conflicting_intent(
    candidates: list[CompiledRule],
    live: dict[str, z3.BoolRef],
    ask: Callable[..., Verdict],
    analysis: Analysis,
) -> None:
    """Informational: a rule that lets the request proceed with an obligation overlaps one that
    intercepts it (the intercept wins; the author may not expect the obligation to be moot)."""
    lenient = [r for r in candidates if r.action.rank <= Action.NOTICE.rank and r.spec.obligations]
    strict = [r for r in candidates if r.action in _INTERCEPTING]
    for rule in lenient:
        for other in strict:
            if ask(live[rule.id], live[other.id]) is Verdict.REFUTED:
                analysis.findings.append(
                    Finding(
                        "conflicting_intent",
                        rule.id,
                        f"overlaps {other.id}: one proceeds with obligations, the other "
                        f"{other.action.value}s (informational)",
                        other=other.id,
                    )
                )
                break


@dataclass
class Equivalence:
    verdict: Verdict
    explanation: str
    model: dict[str, object] | None = None
    old: tuple[Action, tuple[Obligation, ...]] | None = None  # decisions the model predicts
    new: tuple[Action, tuple[Obligation, ...]] | None = None


def check_equivalence(old: Pack, new: Pack, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Equivalence:
    """Whether ``old`` and ``new`` give the same action and obligations for every event."""
    encoder = Encoder()
    try:
        before = encode_pack(encoder, old)
        after = encode_pack(encoder, new)
    except NotCovered as problem:
        return Equivalence(Verdict.NOT_COVERED, f"not analysed: {problem}")
    differs = z3.Or(
        before.action != after.action,
        *(before.obligations[o] != after.obligations[o] for o in Obligation),
    )
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    solver.add(*encoder.constraints, differs)
    result = solver.check()
    if result == z3.unsat:
        return Equivalence(Verdict.PROVEN, "same action and obligations for every event")
    if result != z3.sat:
        return Equivalence(Verdict.UNKNOWN, f"solver gave up: {solver.reason_unknown()}")
    model = solver.model()
    values = _model_values(encoder, model)
    return Equivalence(
        Verdict.REFUTED,
        "the packs decide differently on some event",
        values,
        _decision(before, model),
        _decision(after, model),
    )


def _decision(formulas: PackFormulas, model: z3.ModelRef) -> tuple[Action, tuple[Obligation, ...]]:
    rank = model.eval(formulas.action, model_completion=True).as_long()
    owed = tuple(
        o
        for o, owes in formulas.obligations.items()
        if z3.is_true(model.eval(owes, model_completion=True))
    )
    return ACTIONS[rank], owed


def _model_values(encoder: Encoder, model: z3.ModelRef) -> dict[str, object]:
    """Feature key -> value (None when unknown) for every variable the formulas read."""
    values: dict[str, object] = {}
    for name, feature in encoder.features.items():
        key = name.split("#", 1)[0]
        if not z3.is_true(model.eval(feature.known, model_completion=True)):
            values.setdefault(key, None)
            continue
        raw = model.eval(feature.value, model_completion=True)
        if z3.is_bool(raw):
            values[key] = z3.is_true(raw)
        elif feature.values:
            values[key] = feature.values[raw.as_long()]
        elif z3.is_int_value(raw):
            values[key] = raw.as_long()
        else:
            values[key] = raw.as_string()
    return values
