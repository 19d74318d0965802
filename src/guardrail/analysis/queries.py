"""The questions ``guardrail analyze`` asks the solver about packs.

Every verdict is one of: proven (the solver found the negation unsatisfiable), refuted (it
found a model), unknown (time limit or solver gave up) or not covered (the rule uses a construct
the encoding does not model). Only a proof is ever reported as a finding's certainty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

import z3

from guardrail.analysis.counterexample import build_event
from guardrail.analysis.encode import ACTIONS, Encoder, NotCovered, PackFormulas, encode_pack
from guardrail.analysis.history import MAX_PRIOR, PRIOR_STEPS, HistoryEncoding, needs_history
from guardrail.lang.ir import render
from guardrail.lang.pack import CompiledRule, Pack
from guardrail.model.decision import Action, Obligation

DEFAULT_TIMEOUT_S = 5.0


class Verdict(str, Enum):
    PROVEN = "proven"
    REFUTED = "refuted"
    UNKNOWN = "unknown"
    UNREALISED = "unrealised"  # a difference only with window values no searched history gives
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


def _check(solver: z3.Solver, formulas: list[z3.BoolRef]) -> Verdict:
    """PROVEN when ``formulas`` are unsatisfiable together with what ``solver`` already holds
    (the model constraints), REFUTED when they have a model."""
    solver.push()
    try:
        solver.add(*formulas)
        result = solver.check()
    finally:
        solver.pop()
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
    # One incremental solver holds the model constraints; each query is pushed and popped.
    solver = _solver(timeout_s, *encoder.constraints)

    def ask(*formulas: z3.BoolRef) -> Verdict:
        analysis.queries += 1
        return _check(solver, list(formulas))

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


class Outcome(NamedTuple):
    """A decision as the equivalence check compares it."""

    action: Action
    obligations: tuple[Obligation, ...]
    hits: tuple[str, ...] = ()  # rule ids listed as hits, sorted (filled when hits are compared)


@dataclass
class Equivalence:
    """The verdict of :func:`check_equivalence`. When refuted: the solver's feature values, the
    decisions it predicts, and a counterexample ``event`` with the ``prior`` executed
    transactions to record first (empty when no window or history feature is involved)."""

    verdict: Verdict
    explanation: str
    model: dict[str, object] | None = None
    old: Outcome | None = None  # decisions the model predicts
    new: Outcome | None = None
    hits: bool = False  # whether the hit lists were compared too
    event: dict[str, Any] | None = None
    prior: list[dict[str, Any]] = field(default_factory=list)


def check_equivalence(
    old: Pack, new: Pack, *, timeout_s: float = DEFAULT_TIMEOUT_S, hits: bool = False
) -> Equivalence:
    """Whether ``old`` and ``new`` give the same action and obligations (and with ``hits`` the
    same rule ids as hits) for every event; when not, a counterexample built from the model.

    A difference that needs window or history values is searched again over a bounded history
    of prior transactions; when none realises it the verdict is ``unrealised``."""
    encoder = Encoder()
    try:
        before = encode_pack(encoder, old)
        after = encode_pack(encoder, new)
    except NotCovered as problem:
        return Equivalence(Verdict.NOT_COVERED, f"not analysed: {problem}", hits=hits)
    ids = sorted(set(before.hits) | set(after.hits)) if hits else []
    differs = z3.Or(
        before.action != after.action,
        *(before.obligations[o] != after.obligations[o] for o in Obligation),
        *(before.listed(i) != after.listed(i) for i in ids),
    )
    same = "same action, obligations and hits" if hits else "same action and obligations"
    solver = _solver(timeout_s, *encoder.constraints, differs)
    result = solver.check()
    if result == z3.unsat:
        return Equivalence(Verdict.PROVEN, f"{same} for every event", hits=hits)
    if result != z3.sat:
        return Equivalence(Verdict.UNKNOWN, f"solver gave up: {solver.reason_unknown()}", hits=hits)
    model = solver.model()
    history: HistoryEncoding | None = None
    if needs_history(encoder):
        realised = _realise(encoder, differs, timeout_s)
        if isinstance(realised, Equivalence):
            realised.model, realised.hits = _model_values(encoder, model), hits
            return realised
        history, model = realised
    values = _model_values(encoder, model)
    event = build_event(values, has_payee=history is not None and history.has_payee_in(model))
    prior = [] if history is None else history.prior_events(model, event)
    return Equivalence(
        Verdict.REFUTED,
        "the packs decide differently on some event",
        values,
        _decision(before, model, ids),
        _decision(after, model, ids),
        hits,
        event,
        prior,
    )


def _realise(
    encoder: Encoder, differs: z3.BoolRef, timeout_s: float
) -> tuple[HistoryEncoding, z3.ModelRef] | Equivalence:
    """A model of ``differs`` over a concrete history of prior transactions (a few first, then
    up to ``MAX_PRIOR``), or the verdict when there is none."""
    for records in PRIOR_STEPS:
        try:
            history = HistoryEncoding(encoder, records)
        except NotCovered as problem:
            return Equivalence(
                Verdict.UNKNOWN, f"a difference exists but cannot be realised: {problem}"
            )
        solver = _solver(timeout_s, *encoder.constraints, *history.constraints, differs)
        result = solver.check()
        if result == z3.sat:
            return history, solver.model()
        if result != z3.sat and result != z3.unsat:
            return Equivalence(
                Verdict.UNKNOWN,
                f"a difference exists; realising it with history: {solver.reason_unknown()}",
            )
    return Equivalence(
        Verdict.UNREALISED,
        f"the solver found a difference only with window or history values no history of up "
        f"to {MAX_PRIOR} prior transactions produces (a longer history may realise it: not a "
        "proof either way)",
    )


def _solver(timeout_s: float, *assertions: z3.BoolRef) -> z3.Solver:
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    solver.add(*assertions)
    return solver


def _decision(formulas: PackFormulas, model: z3.ModelRef, ids: list[str]) -> Outcome:
    rank = model.eval(formulas.action, model_completion=True).as_long()
    owed = tuple(
        o
        for o, owes in formulas.obligations.items()
        if z3.is_true(model.eval(owes, model_completion=True))
    )
    listed = tuple(
        i for i in ids if z3.is_true(model.eval(formulas.listed(i), model_completion=True))
    )
    return Outcome(ACTIONS[rank], owed, listed)


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
