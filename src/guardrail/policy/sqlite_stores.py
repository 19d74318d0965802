"""SQLite snooze and breaker stores: every process that opens the same file shares them
(WAL mode, a busy timeout, each write one transaction)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Collection, Iterable
from pathlib import Path

from guardrail.errors import StoreError
from guardrail.model.decision import Action
from guardrail.policy.snooze import EntityKind, Snooze
from guardrail.policy.stores import BreakerState, Observation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snoozes (
    rule_id TEXT NOT NULL, entity TEXT NOT NULL, entity_hash TEXT NOT NULL,
    entity_hint TEXT NOT NULL, until TEXT NOT NULL, until_epoch REAL NOT NULL,
    reason TEXT NOT NULL, approver TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (rule_id, entity, entity_hash)
);
CREATE TABLE IF NOT EXISTS breaker_counts (
    rule_id TEXT NOT NULL, minute INTEGER NOT NULL,
    screened INTEGER NOT NULL, hits INTEGER NOT NULL,
    PRIMARY KEY (rule_id, minute)
);
CREATE TABLE IF NOT EXISTS breaker_states (
    rule_id TEXT PRIMARY KEY, tripped_at TEXT NOT NULL, hit_rate REAL NOT NULL,
    screened INTEGER NOT NULL, hits INTEGER NOT NULL, cap_at TEXT NOT NULL
);
"""


class _SQLite:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot open the policy store: {error}") from None

    def run(self, sql: str, rows: Iterable[tuple[object, ...]] = ((),)) -> list[tuple[object, ...]]:
        """Run ``sql`` for each row in one transaction; the rows of the last statement."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                result: list[tuple[object, ...]] = []
                for row in rows:
                    result = self._db.execute(sql, row).fetchall()
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: policy store failed: {error}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SQLiteSnoozeStore:
    """Snoozes in a SQLite file shared by every process that opens it."""

    def __init__(self, path: str | Path) -> None:
        self._db = _SQLite(path)

    def add(self, snooze: Snooze) -> None:
        self._db.run(
            "INSERT OR REPLACE INTO snoozes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    snooze.rule_id,
                    snooze.entity.value,
                    snooze.entity_hash,
                    snooze.entity_hint,
                    snooze.until.isoformat(),
                    snooze.until.timestamp(),
                    snooze.reason,
                    snooze.approver,
                    snooze.created_at.isoformat(),
                )
            ],
        )

    def remove(self, rule_id: str, entity: EntityKind, entity_hash: str) -> bool:
        found = self._db.run(
            "DELETE FROM snoozes WHERE rule_id = ? AND entity = ? AND entity_hash = ? "
            "RETURNING rule_id",
            [(rule_id, entity.value, entity_hash)],
        )
        return bool(found)

    def active(
        self, rule_ids: Collection[str], entity_hashes: Collection[str], at: dt.datetime
    ) -> list[Snooze]:
        if not rule_ids or not entity_hashes:
            return []
        rules, hashes = list(rule_ids), list(entity_hashes)
        sql = (
            f"SELECT * FROM snoozes WHERE rule_id IN ({','.join('?' * len(rules))}) "
            f"AND entity_hash IN ({','.join('?' * len(hashes))}) AND until_epoch > ?"
        )
        return [_snooze(row) for row in self._db.run(sql, [(*rules, *hashes, at.timestamp())])]

    def all(self) -> list[Snooze]:
        return [_snooze(row) for row in self._db.run("SELECT * FROM snoozes ORDER BY until")]

    def close(self) -> None:
        self._db.close()


def _snooze(row: tuple[object, ...]) -> Snooze:
    rule_id, entity, entity_hash, hint, until, _, reason, approver, created = row
    return Snooze(
        rule_id=str(rule_id),
        entity=EntityKind(str(entity)),
        entity_hash=str(entity_hash),
        entity_hint=str(hint),
        until=dt.datetime.fromisoformat(str(until)),
        reason=str(reason),
        approver=str(approver),
        created_at=dt.datetime.fromisoformat(str(created)),
    )


class SQLiteBreakerStore:
    """Breaker counts and states in a SQLite file shared by every process that opens it."""

    def __init__(self, path: str | Path) -> None:
        self._db = _SQLite(path)

    def record(self, observations: Iterable[Observation]) -> None:
        rows = [(o.rule_id, o.minute, o.screened, o.hits) for o in observations]
        if rows:
            self._db.run(
                "INSERT INTO breaker_counts VALUES (?, ?, ?, ?) ON CONFLICT (rule_id, minute) "
                "DO UPDATE SET screened = screened + excluded.screened, "
                "hits = hits + excluded.hits",
                rows,
            )

    def totals(self, rule_id: str, first_minute: int, last_minute: int) -> tuple[int, int]:
        rows = self._db.run(
            "SELECT COALESCE(SUM(screened), 0), COALESCE(SUM(hits), 0) FROM breaker_counts "
            "WHERE rule_id = ? AND minute BETWEEN ? AND ?",
            [(rule_id, first_minute, last_minute)],
        )
        screened, hits = rows[0]
        return int(str(screened)), int(str(hits))

    def tripped(self, rule_ids: Collection[str]) -> dict[str, BreakerState]:
        if not rule_ids:
            return {}
        rules = list(rule_ids)
        rows = self._db.run(
            f"SELECT * FROM breaker_states WHERE rule_id IN ({','.join('?' * len(rules))})",
            [tuple(rules)],
        )
        states = [_state(row) for row in rows]
        return {state.rule_id: state for state in states}

    def trip(self, state: BreakerState) -> bool:
        inserted = self._db.run(
            "INSERT INTO breaker_states VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id) "
            "DO NOTHING RETURNING rule_id",
            [
                (
                    state.rule_id,
                    state.tripped_at.isoformat(),
                    state.hit_rate,
                    state.screened,
                    state.hits,
                    state.cap_at.value,
                )
            ],
        )
        return bool(inserted)

    def reset(self, rule_id: str) -> BreakerState | None:
        before = self.tripped([rule_id]).get(rule_id)
        self._db.run("DELETE FROM breaker_counts WHERE rule_id = ?", [(rule_id,)])
        self._db.run("DELETE FROM breaker_states WHERE rule_id = ?", [(rule_id,)])
        return before

    def close(self) -> None:
        self._db.close()


def _state(row: tuple[object, ...]) -> BreakerState:
    rule_id, tripped_at, rate, screened, hits, cap = row
    return BreakerState(
        rule_id=str(rule_id),
        tripped_at=dt.datetime.fromisoformat(str(tripped_at)),
        hit_rate=float(str(rate)),
        screened=int(str(screened)),
        hits=int(str(hits)),
        cap_at=Action(str(cap)),
    )
