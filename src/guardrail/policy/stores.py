"""Where snoozes and circuit-breaker state live: small protocols, in-memory backends here,
SQLite backends (shared by every process that opens the same file) in ``sqlite_stores``."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from guardrail.model.decision import Action
from guardrail.policy.snooze import EntityKind, Snooze


@dataclass(frozen=True)
class BreakerState:
    """A tripped breaker: since when (the event time that tripped it) and at what rate."""

    rule_id: str
    tripped_at: dt.datetime
    hit_rate: float
    screened: int
    hits: int
    cap_at: Action


@dataclass(frozen=True)
class Observation:
    """How many events of a rule's kinds were screened in one minute, and how many it hit."""

    rule_id: str
    minute: int  # minutes since the epoch, of the event's time
    screened: int
    hits: int


class SnoozeStore(Protocol):
    def add(self, snooze: Snooze) -> None:
        """Add or replace the snooze of this rule for this entity."""

    def remove(self, rule_id: str, entity: EntityKind, entity_hash: str) -> bool:
        """Remove a snooze; False when there was none."""

    def active(
        self, rule_ids: Collection[str], entity_hashes: Collection[str], at: dt.datetime
    ) -> list[Snooze]:
        """Snoozes of these rules for these entities that have not expired at ``at``."""

    def all(self) -> list[Snooze]:
        """Every stored snooze, expired ones included."""


class BreakerStore(Protocol):
    def record(self, observations: Iterable[Observation]) -> None:
        """Add counts (atomically per call)."""

    def totals(self, rule_id: str, first_minute: int, last_minute: int) -> tuple[int, int]:
        """(screened, hits) of a rule over ``[first_minute, last_minute]``."""

    def tripped(self, rule_ids: Collection[str]) -> dict[str, BreakerState]:
        """The tripped breakers among ``rule_ids``."""

    def trip(self, state: BreakerState) -> bool:
        """Mark a breaker tripped; False when it already was (another process won)."""

    def reset(self, rule_id: str) -> BreakerState | None:
        """Clear a breaker and its counts; returns the state it had, None if not tripped."""


class MemorySnoozeStore:
    """Snoozes for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, EntityKind, str], Snooze] = {}

    def add(self, snooze: Snooze) -> None:
        with self._lock:
            self._items[(snooze.rule_id, snooze.entity, snooze.entity_hash)] = snooze

    def remove(self, rule_id: str, entity: EntityKind, entity_hash: str) -> bool:
        with self._lock:
            return self._items.pop((rule_id, entity, entity_hash), None) is not None

    def active(
        self, rule_ids: Collection[str], entity_hashes: Collection[str], at: dt.datetime
    ) -> list[Snooze]:
        with self._lock:
            return [
                s
                for s in self._items.values()
                if s.rule_id in rule_ids and s.entity_hash in entity_hashes and s.until > at
            ]

    def all(self) -> list[Snooze]:
        with self._lock:
            return list(self._items.values())


class MemoryBreakerStore:
    """Breaker counts and states for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}
        self._states: dict[str, BreakerState] = {}

    def record(self, observations: Iterable[Observation]) -> None:
        with self._lock:
            for o in observations:
                screened, hits = self._counts.get((o.rule_id, o.minute), (0, 0))
                self._counts[(o.rule_id, o.minute)] = (screened + o.screened, hits + o.hits)

    def totals(self, rule_id: str, first_minute: int, last_minute: int) -> tuple[int, int]:
        with self._lock:
            screened = hits = 0
            for (rule, minute), (s, h) in self._counts.items():
                if rule == rule_id and first_minute <= minute <= last_minute:
                    screened, hits = screened + s, hits + h
            return screened, hits

    def tripped(self, rule_ids: Collection[str]) -> dict[str, BreakerState]:
        with self._lock:
            return {r: self._states[r] for r in rule_ids if r in self._states}

    def trip(self, state: BreakerState) -> bool:
        with self._lock:
            if state.rule_id in self._states:
                return False
            self._states[state.rule_id] = state
            return True

    def reset(self, rule_id: str) -> BreakerState | None:
        with self._lock:
            for key in [k for k in self._counts if k[0] == rule_id]:
                del self._counts[key]
            return self._states.pop(rule_id, None)
