"""Turn rule hits into a decision: the highest action wins, obligations are a set beside it,
and every hit carries the values that made it match.

Two refinements over the plain ladder: a rule whose clearing condition also held (engine id
``RULE#clears``) is *cleared*: it drops out of the action, the score and the obligations, and is
listed under ``cleared`` with the clearing values; and the weights of the uncleared hits add up
to a score that the pack's score bands map to an action. The decision is the higher of the
ladder's and the score's, so neither clearing nor scoring can go below the highest uncleared
rule, and a further hit can never lower anything (weights are non-negative)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from guardrail.engine.base import Features, FeatureValue, as_feature_map
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import FieldRef
from guardrail.lang.pack import CLEARS_SUFFIX, CompiledRule, Pack
from guardrail.model.decision import (
    Action,
    Decision,
    Failure,
    JsonScalar,
    Obligation,
)
from guardrail.model.money import from_fen

FAIL_CLOSED_FLOOR = Action.REVIEW


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
) -> Decision:
    """Build the decision for one event from the ids of the rules it hit."""
    failures = tuple(failures)
    details = details or {}
    features = as_feature_map(features)
    rules = pack.rules_by_id
    clearing = {r.removesuffix(CLEARS_SUFFIX) for r in hit_ids if CLEARS_SUFFIX in r}
    matched = [rule_id for rule_id in hit_ids if CLEARS_SUFFIX not in rule_id]
    live = [rule_id for rule_id in matched if rule_id not in clearing]
    cleared = [rules[rule_id] for rule_id in matched if rule_id in clearing]
    hits = [_hit(rules[rule_id], features, details) for rule_id in live]
    ladder = max((rules[rule_id].spec.action for rule_id in live), default=Action.PROCEED)
    parts = [
        {"rule_id": rule_id, "weight": rules[rule_id].spec.score}
        for rule_id in live
        if rules[rule_id].spec.score
    ]
    score = sum(rules[rule_id].spec.score for rule_id in live)
    score_action = pack.score_action(score)
    action = max(ladder, score_action)
    if failures:
        action = max(action, FAIL_CLOSED_FLOOR)
    obligations = {o for rule_id in live for o in rules[rule_id].spec.obligations}
    # One validation of a plain tree is much cheaper than building each nested model.
    return Decision.model_validate(
        {
            "event_id": event_id,
            "action": action,
            "obligations": tuple(o for o in Obligation if o in obligations),
            "hits": hits,
            "pack": pack.ref,
            "backend": backend,
            "failures": failures,
            "elapsed_us": elapsed_us,
            "ladder_action": ladder,
            "score": score,
            "score_action": score_action,
            "score_parts": parts,
            "cleared": [_cleared(rule, features, details) for rule in cleared],
        }
    )


def _cleared(
    rule: CompiledRule, features: Features, details: Mapping[str, str]
) -> dict[str, object]:
    spec = rule.spec
    return {
        "rule_id": spec.id,
        "title_zh": spec.title_zh,
        "title_en": spec.title_en,
        "action": spec.action,
        "evidence": [_evidence(ref, features[ref.key], details) for ref in rule.evidence_refs],
        "cleared_by": [_evidence(ref, features[ref.key], details) for ref in rule.clears_refs],
    }


def _hit(rule: CompiledRule, features: Features, details: Mapping[str, str]) -> dict[str, object]:
    spec = rule.spec
    return {
        "rule_id": spec.id,
        "title_zh": spec.title_zh,
        "title_en": spec.title_en,
        "action": spec.action,
        "obligations": spec.obligations,
        "evidence": [_evidence(ref, features[ref.key], details) for ref in rule.evidence_refs],
        "source": spec.source,
        "notice_zh": spec.notice_zh,
        "notice_en": spec.notice_en,
        "tags": spec.tags,
        "ask": spec.ask,
    }


def _evidence(
    ref: FieldRef, value: FeatureValue, details: Mapping[str, str]
) -> dict[str, JsonScalar]:
    shown: JsonScalar = value
    if ref.type is FieldType.MONEY and isinstance(value, int) and not isinstance(value, bool):
        shown = str(from_fen(value))
    return {"feature": ref.key, "value": shown, "detail": details.get(ref.key, "")}
