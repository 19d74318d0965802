"""Turn rule hits into a decision: the highest action wins, obligations are a set beside it,
and every hit carries the values that decided it.

Two refinements over the plain ladder: a rule whose clearing condition also held (engine id
``RULE#clears``) is *cleared*: it drops out of the action, the score and the obligations, and is
listed under ``cleared`` with the clearing values; and the weights of the uncleared hits add up
to a score that the pack's score bands map to an action. The decision is the higher of the
ladder's and the score's, so neither clearing nor scoring can go below the highest uncleared
rule, and a further hit can never lower anything (weights are non-negative).

Pure: reads plain feature values, never computes one. A hit is explained by the comparisons
that made its condition true: every part of an ``and``, and of an ``or`` only the first part
that held (the one the evaluator stopped at), so nothing from a branch that did not decide the
hit is shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from guardrail.engine.reference import holds
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import All, Compare, Condition, FieldRef
from guardrail.lang.pack import CLEARS_SUFFIX, CompiledRule, Pack
from guardrail.model.decision import (
    FAIL_CLOSED_FLOOR,
    Action,
    Decision,
    Failure,
    JsonScalar,
    Obligation,
)
from guardrail.model.features import Features, FeatureValue
from guardrail.model.money import from_fen


def decide(
    pack: Pack,
    event_id: str,
    hit_ids: Sequence[str],
    features: Features,
    backend: str,
    *,
    details: Mapping[str, str] | None = None,
    failures: Iterable[Failure] = (),
    elapsed_us: int = 0,
    watchlists: Mapping[str, str] | None = None,
) -> Decision:
    """Build the decision for one event from the ids of the rules it hit."""
    failures = tuple(failures)
    details = details or {}
    rules = pack.rules_by_id
    live, cleared_ids, ladder, score, score_action, action, owed = _settle(pack, hit_ids)
    cleared = [rules[rule_id] for rule_id in cleared_ids]
    hits = [_hit(pack, rules[rule_id], features, details) for rule_id in live]
    parts = [
        {"rule_id": rules[rule_id].spec.id, "weight": rules[rule_id].spec.score}
        for rule_id in live
        if rules[rule_id].spec.score
    ]
    if failures:
        action = max(action, FAIL_CLOSED_FLOOR)
    obligations = set(owed)
    # One validation of a plain tree is cheaper than building each nested model (cheaper even
    # than pydantic's model_construct).
    return Decision.model_validate(
        {
            "event_id": event_id,
            "action": action,
            "obligations": tuple(o for o in _OBLIGATIONS if o in obligations),
            "hits": hits,
            "pack": pack.ref,
            "backend": backend,
            "failures": failures,
            "elapsed_us": elapsed_us,
            "ladder_action": ladder,
            "score": score,
            "score_action": score_action,
            "score_parts": parts,
            "cleared": [_cleared(pack, rule, features, details) for rule in cleared],
            "watchlists": watchlists or {},
        }
    )


_OBLIGATIONS = tuple(Obligation)  # in declaration order


def deciding_refs(condition: Condition, features: Features) -> list[FieldRef]:
    """The references of the comparisons that made ``condition`` true, in order, no repeats."""
    seen: dict[str, FieldRef] = {}
    _collect(condition, features, seen)
    return list(seen.values())


def _collect(condition: Condition, features: Features, seen: dict[str, FieldRef]) -> None:
    if isinstance(condition, Compare):
        seen.setdefault(condition.left.key, condition.left)
        if isinstance(condition.right, FieldRef):
            seen.setdefault(condition.right.key, condition.right)
    elif isinstance(condition, All):
        for item in condition.items:
            _collect(item, features, seen)
    else:
        for item in condition.items:
            if holds(item, features):
                _collect(item, features, seen)
                return


def _explain(
    pack: Pack, condition: Condition | None, features: Features, details: Mapping[str, str]
) -> list[dict[str, JsonScalar]]:
    if condition is None:
        return []
    return [
        _evidence(pack, ref, features.get(ref.key), details)
        for ref in deciding_refs(condition, features)
    ]


def outcome(pack: Pack, hit_ids: Iterable[str]) -> tuple[Action, tuple[Obligation, ...]]:
    """The action and obligations of a set of engine hits, exactly as ``decide`` settles them
    (clearing, ladder, score bands). The bulk replay engines decide through this function."""
    settled = _settle(pack, list(hit_ids))
    return settled[5], settled[6]


def _settle(
    pack: Pack, hit_ids: Sequence[str]
) -> tuple[list[str], list[str], Action, int, Action, Action, tuple[Obligation, ...]]:
    rules = pack.rules_by_id
    clearing = {r.removesuffix(CLEARS_SUFFIX) for r in hit_ids if CLEARS_SUFFIX in r}
    matched = [rule_id for rule_id in hit_ids if CLEARS_SUFFIX not in rule_id]
    live = [rule_id for rule_id in matched if rule_id not in clearing]
    cleared = [rule_id for rule_id in matched if rule_id in clearing]
    ladder = max((rules[rule_id].spec.action for rule_id in live), default=Action.PROCEED)
    score = sum(rules[rule_id].spec.score for rule_id in live)
    score_action = pack.score_action(score)
    action = max(ladder, score_action)
    owed = {o for rule_id in live for o in rules[rule_id].spec.obligations}
    return (
        live,
        cleared,
        ladder,
        score,
        score_action,
        action,
        tuple(o for o in _OBLIGATIONS if o in owed),
    )


def _cleared(
    pack: Pack, rule: CompiledRule, features: Features, details: Mapping[str, str]
) -> dict[str, object]:
    spec = rule.spec
    return {
        "rule_id": spec.id,
        "title_zh": spec.title_zh,
        "title_en": spec.title_en,
        "action": spec.action,
        "evidence": _explain(pack, rule.condition, features, details),
        "cleared_by": _explain(pack, rule.clears, features, details),
    }


def _hit(
    pack: Pack, rule: CompiledRule, features: Features, details: Mapping[str, str]
) -> dict[str, object]:
    spec = rule.spec
    return {
        "rule_id": spec.id,
        "title_zh": spec.title_zh,
        "title_en": spec.title_en,
        "action": spec.action,
        "obligations": spec.obligations,
        "evidence": _explain(pack, rule.condition, features, details),
        "source": spec.source,
        "notice_zh": spec.notice_zh,
        "notice_en": spec.notice_en,
        "tags": spec.tags,
        "ask": spec.ask,
    }


def _evidence(
    pack: Pack, ref: FieldRef, value: FeatureValue, details: Mapping[str, str]
) -> dict[str, JsonScalar]:
    shown: JsonScalar = value
    if ref.type is FieldType.MONEY and isinstance(value, int) and not isinstance(value, bool):
        shown = str(from_fen(value))
    detail = details.get(ref.key, "")
    window = pack.windows.get(ref.key.removeprefix("window.")) if not detail else None
    if window is not None and ref.key.startswith("window.") and value is not None:
        detail = f"{window.aggregate.value} over {window.span.value} = {shown}"
    return {"feature": ref.key, "value": shown, "detail": detail}
