"""Post-decision policies as one function: snoozes and circuit breakers adjust the live
decision after the rules have run, and only ever lower a hit's action.

A snoozed hit counts as ``proceed``; a hit of a tripped breaker counts at most at the
breaker's cap. Neither adds its score weight. The action is recomputed as in ``decide`` (the
higher of the adjusted ladder and the pack's score band; a failure still floors it at
``review``) and never exceeds the unadjusted action; obligations, hits and evidence are kept,
and each change is named in ``Decision.adjustments``.
"""

from __future__ import annotations

from guardrail.lang.pack import Pack
from guardrail.model.decision import FAIL_CLOSED_FLOOR, Action, Adjustment, AdjustmentKind, Decision
from guardrail.model.event import Event
from guardrail.policy.breaker import CircuitBreakers
from guardrail.policy.snooze import Snooze, event_entities, refusal
from guardrail.policy.stores import SnoozeStore


class PostDecisionPolicies:
    """Snoozes and circuit breakers, each optional, with their own stores."""

    def __init__(
        self, *, snoozes: SnoozeStore | None = None, breakers: CircuitBreakers | None = None
    ) -> None:
        self.snoozes = snoozes
        self.breakers = breakers

    def apply(self, pack: Pack, event: Event, decision: Decision) -> Decision:
        """The decision with snoozes and breakers applied (the same object when nothing
        changes)."""
        hit_ids = {hit.rule_id for hit in decision.hits}
        tripped = self.breakers.observe(pack, event, hit_ids) if self.breakers else {}
        if not hit_ids:
            return decision
        snoozed: dict[str, Snooze] = {}
        if self.snoozes is not None:
            entities = set(event_entities(event).values())
            for snooze in self.snoozes.active(hit_ids, entities, event.timestamp):
                snoozed.setdefault(snooze.rule_id, snooze)
        if not snoozed and not tripped:
            return decision
        adjustments: list[Adjustment] = []
        effective: list[Action] = []
        for hit in decision.hits:
            action = hit.action
            found = snoozed.get(hit.rule_id)
            # Checked again here: a snooze stored for a rule that later gained a watchlist or
            # a reporting duty is ignored.
            if found is not None and _snoozable(pack, hit.rule_id) and action > Action.PROCEED:
                adjustments.append(
                    Adjustment(
                        kind=AdjustmentKind.SNOOZE,
                        rule_id=hit.rule_id,
                        from_action=action,
                        to_action=Action.PROCEED,
                        message=found.describe(),
                        until=found.until,
                        approver=found.approver,
                    )
                )
                action = Action.PROCEED
            state = tripped.get(hit.rule_id)
            if state is not None and action > state.cap_at:
                adjustments.append(
                    Adjustment(
                        kind=AdjustmentKind.CIRCUIT_BREAKER,
                        rule_id=hit.rule_id,
                        from_action=action,
                        to_action=state.cap_at,
                        message=(
                            f"rule {hit.rule_id} capped at {state.cap_at.value}: its circuit "
                            f"breaker tripped at {state.tripped_at.isoformat()} (hit rate "
                            f"{100 * state.hit_rate:.1f}% of {state.screened} events)"
                        ),
                    )
                )
                action = state.cap_at
                if self.breakers is not None:
                    self.breakers.metrics.count(self.breakers.metrics.capped, hit.rule_id)
            effective.append(action)
        if not adjustments:
            return decision
        quietened = {a.rule_id for a in adjustments}
        parts = tuple(p for p in decision.score_parts if p.rule_id not in quietened)
        score = sum(p.weight for p in parts)
        ladder = max(effective, default=Action.PROCEED)
        score_action = pack.score_action(score)
        action = max(ladder, score_action)
        if decision.failures:
            action = max(action, FAIL_CLOSED_FLOOR)
        action = min(action, decision.action)  # policies never raise an action
        return decision.model_copy(
            update={
                "action": action,
                "ladder_action": ladder,
                "score": score,
                "score_action": score_action,
                "score_parts": parts,
                "adjustments": (*decision.adjustments, *adjustments),
            }
        )


def _snoozable(pack: Pack, rule_id: str) -> bool:
    versions = pack.versions.get(rule_id, ())
    return bool(versions) and all(refusal(rule) is None for rule in versions)
