"""Turn rule hits into a decision: the highest action wins, obligations are a set beside it,
and every hit carries the values that made it match."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from guardrail.engine.base import Features, FeatureValue, as_feature_map
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import FieldRef
from guardrail.lang.pack import CompiledRule, Pack
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
    watchlists: Mapping[str, str] | None = None,
) -> Decision:
    """Build the decision for one event from the ids of the rules it hit."""
    failures = tuple(failures)
    details = details or {}
    features = as_feature_map(features)
    rules = pack.rules_by_id
    hits = [_hit(rules[rule_id], features, details) for rule_id in hit_ids]
    action = max((rules[rule_id].spec.action for rule_id in hit_ids), default=Action.PROCEED)
    if failures:
        action = max(action, FAIL_CLOSED_FLOOR)
    obligations = {o for rule_id in hit_ids for o in rules[rule_id].spec.obligations}
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
            "watchlists": watchlists or {},
        }
    )


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
