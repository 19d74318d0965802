"""Circuit breakers: a rule whose hit rate over a sliding window exceeds the ceiling its pack
declares (``circuit_breaker:`` on the rule, e.g. from a replay baseline) has its action capped
(e.g. at ``review``) until an authorised person resets it.

Counts are per minute of the *event's* time, per rule id, in a ``BreakerStore``: with a shared
store (SQLite file) every process counts together and sees the same tripped state. A trip is
logged as an alert, counted in ``BreakerMetrics`` and passed to ``on_trip`` (the audit log).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection

from guardrail.lang.pack import CompiledRule, Pack
from guardrail.model.event import Event
from guardrail.policy.stores import BreakerState, BreakerStore, Observation

logger = logging.getLogger("guardrail.breaker")


class BreakerMetrics:
    """Process-local counters: breakers tripped and decisions capped, per rule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.trips: Counter[str] = Counter()
        self.capped: Counter[str] = Counter()

    def count(self, counter: Counter[str], rule_id: str) -> None:
        with self._lock:
            counter[rule_id] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "circuit_breaker_trips_total": dict(self.trips),
                "circuit_breaker_capped_decisions_total": dict(self.capped),
            }


class CircuitBreakers:
    """Counts hits of the rules that declare a breaker and trips them above their ceiling."""

    def __init__(
        self,
        store: BreakerStore,
        *,
        on_trip: Callable[[BreakerState], object] | None = None,
        metrics: BreakerMetrics | None = None,
    ) -> None:
        self.store = store
        self.on_trip = on_trip
        self.metrics = metrics if metrics is not None else BreakerMetrics()

    def observe(
        self, pack: Pack, event: Event, hit_rule_ids: Collection[str]
    ) -> dict[str, BreakerState]:
        """Count this screening; the tripped breakers among the rules it hit."""
        watched = _watched(pack, event)
        if not watched:
            return {}
        minute = int(event.timestamp.timestamp() // 60)
        self.store.record(
            Observation(rule_id, minute, 1, int(rule_id in hit_rule_ids)) for rule_id in watched
        )
        hit = [rule_id for rule_id in watched if rule_id in hit_rule_ids]
        if not hit:
            return {}
        states = self.store.tripped(hit)
        for rule_id in hit:
            if rule_id not in states:
                tripped = self._check(watched[rule_id], event, minute)
                if tripped is not None:
                    states[rule_id] = tripped
        return states

    def _check(self, rule: CompiledRule, event: Event, minute: int) -> BreakerState | None:
        spec = rule.spec.circuit_breaker
        assert spec is not None
        screened, hits = self.store.totals(rule.rule_id, minute - spec.window_minutes + 1, minute)
        if screened < spec.min_screened or hits / screened <= spec.max_hit_rate:
            return None
        state = BreakerState(
            rule_id=rule.rule_id,
            tripped_at=event.timestamp,
            hit_rate=hits / screened,
            screened=screened,
            hits=hits,
            cap_at=spec.cap_at,
        )
        if self.store.trip(state):  # only the process that trips it raises the alert
            logger.warning(
                "ALERT circuit breaker tripped: rule %s hit %d of %d events (%.1f%%, ceiling "
                "%.1f%%) in %d minutes; its action is capped at %s until reset",
                rule.rule_id,
                hits,
                screened,
                100 * state.hit_rate,
                100 * spec.max_hit_rate,
                spec.window_minutes,
                spec.cap_at.value,
            )
            self.metrics.count(self.metrics.trips, rule.rule_id)
            if self.on_trip is not None:
                try:
                    self.on_trip(state)
                except Exception:  # the alert sink must not break screening
                    logger.exception("recording the breaker trip of %s failed", rule.rule_id)
        return state


def _watched(pack: Pack, event: Event) -> dict[str, CompiledRule]:
    """Rules (by id) with a breaker that apply to this event's kind."""
    found: dict[str, CompiledRule] = {}
    for rule in pack.rules:
        if rule.spec.circuit_breaker is None:
            continue
        kinds = rule.spec.applies_to
        if not kinds or event.kind in kinds:
            found.setdefault(rule.rule_id, rule)
    return found
