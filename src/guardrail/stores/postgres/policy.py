"""Snoozes and circuit-breaker state in PostgreSQL, shared by every teller process of the bank
(the protocols are in ``guardrail.policy.stores``). Counts are upserts; a trip is an
``INSERT ... ON CONFLICT DO NOTHING``, so exactly one process raises the alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from guardrail.errors import StoreError
from guardrail.model.decision import Action
from guardrail.policy.snooze import EntityKind, Snooze
from guardrail.policy.stores import BreakerState, Observation
from guardrail.stores.postgres.connect import describe, open_pool
from guardrail.stores.postgres.migrations import migrate
from guardrail.stores.urls import StoreURL

SNOOZE_COMPONENT = "snoozes"
SNOOZE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE guardrail_snoozes (
        rule_id text NOT NULL,
        entity text NOT NULL,
        entity_hash text NOT NULL,
        entity_hint text NOT NULL,
        until timestamptz NOT NULL,
        reason text NOT NULL,
        approver text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (rule_id, entity, entity_hash)
    );
    """,
)
BREAKER_COMPONENT = "breakers"
BREAKER_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE guardrail_breaker_counts (
        rule_id text NOT NULL,
        minute bigint NOT NULL,
        screened bigint NOT NULL,
        hits bigint NOT NULL,
        PRIMARY KEY (rule_id, minute)
    );
    CREATE TABLE guardrail_breaker_states (
        rule_id text PRIMARY KEY,
        tripped_at timestamptz NOT NULL,
        hit_rate double precision NOT NULL,
        screened bigint NOT NULL,
        hits bigint NOT NULL,
        cap_at text NOT NULL
    );
    """,
)


class _Postgres:
    def __init__(
        self,
        url: StoreURL,
        what: str,
        component: str,
        migrations: tuple[str, ...],
        timeout_s: float,
    ) -> None:
        self.url = url
        self.what = what
        self.pool: ConnectionPool = open_pool(
            url,
            max_size=4,
            connect_timeout_s=timeout_s,
            statement_timeout_ms=int(timeout_s * 1000),
            what=what,
        )
        try:
            with self.pool.connection() as conn:
                migrate(conn, component, migrations, url.masked)
        except psycopg.Error as exc:
            self.pool.close()
            raise StoreError(f"{what} {url.masked}: {describe(exc, url)}") from None
        except BaseException:
            self.pool.close()
            raise

    def run(self, sql: str, rows: Iterable[tuple[Any, ...]] = ((),)) -> list[tuple[Any, ...]]:
        """Run ``sql`` for each row in one transaction; the rows of the last statement."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                result: list[tuple[Any, ...]] = []
                for row in rows:
                    cursor = conn.execute(sql, row)
                    result = cursor.fetchall() if cursor.description else []
                return result
        except PoolTimeout:
            raise StoreError(f"{self.what} {self.url.masked}: no connection (down?)") from None
        except psycopg.Error as exc:
            raise StoreError(f"{self.what} {self.url.masked}: {describe(exc, self.url)}") from None

    def close(self) -> None:
        self.pool.close()


class PostgresSnoozeStore:
    """A :class:`~guardrail.policy.stores.SnoozeStore` in PostgreSQL."""

    def __init__(self, url: StoreURL, *, timeout_s: float = 5.0) -> None:
        self._db = _Postgres(url, "snooze store", SNOOZE_COMPONENT, SNOOZE_MIGRATIONS, timeout_s)

    def add(self, snooze: Snooze) -> None:
        self._db.run(
            "INSERT INTO guardrail_snoozes VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (rule_id, entity, entity_hash) DO UPDATE SET"
            " entity_hint = excluded.entity_hint, until = excluded.until,"
            " reason = excluded.reason, approver = excluded.approver,"
            " created_at = excluded.created_at",
            [
                (
                    snooze.rule_id,
                    snooze.entity.value,
                    snooze.entity_hash,
                    snooze.entity_hint,
                    snooze.until,
                    snooze.reason,
                    snooze.approver,
                    snooze.created_at,
                )
            ],
        )

    def remove(self, rule_id: str, entity: EntityKind, entity_hash: str) -> bool:
        return bool(
            self._db.run(
                "DELETE FROM guardrail_snoozes WHERE rule_id = %s AND entity = %s"
                " AND entity_hash = %s RETURNING rule_id",
                [(rule_id, entity.value, entity_hash)],
            )
        )

    def active(
        self, rule_ids: Collection[str], entity_hashes: Collection[str], at: dt.datetime
    ) -> list[Snooze]:
        if not rule_ids or not entity_hashes:
            return []
        rows = self._db.run(
            "SELECT * FROM guardrail_snoozes WHERE rule_id = ANY(%s)"
            " AND entity_hash = ANY(%s) AND until > %s",
            [(list(rule_ids), list(entity_hashes), at)],
        )
        return [_snooze(row) for row in rows]

    def all(self) -> list[Snooze]:
        return [_snooze(r) for r in self._db.run("SELECT * FROM guardrail_snoozes ORDER BY until")]

    def close(self) -> None:
        self._db.close()


def _snooze(row: tuple[Any, ...]) -> Snooze:
    rule_id, entity, entity_hash, hint, until, reason, approver, created = row
    return Snooze(
        rule_id=rule_id,
        entity=EntityKind(entity),
        entity_hash=entity_hash,
        entity_hint=hint,
        until=until,
        reason=reason,
        approver=approver,
        created_at=created,
    )


class PostgresBreakerStore:
    """A :class:`~guardrail.policy.stores.BreakerStore` in PostgreSQL."""

    def __init__(self, url: StoreURL, *, timeout_s: float = 5.0) -> None:
        self._db = _Postgres(url, "breaker store", BREAKER_COMPONENT, BREAKER_MIGRATIONS, timeout_s)

    def record(self, observations: Iterable[Observation]) -> None:
        rows = [(o.rule_id, o.minute, o.screened, o.hits) for o in observations]
        if rows:
            self._db.run(
                "INSERT INTO guardrail_breaker_counts AS c VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (rule_id, minute) DO UPDATE SET"
                " screened = c.screened + excluded.screened, hits = c.hits + excluded.hits",
                rows,
            )

    def totals(self, rule_id: str, first_minute: int, last_minute: int) -> tuple[int, int]:
        ((screened, hits),) = self._db.run(
            "SELECT COALESCE(SUM(screened), 0), COALESCE(SUM(hits), 0)"
            " FROM guardrail_breaker_counts WHERE rule_id = %s AND minute BETWEEN %s AND %s",
            [(rule_id, first_minute, last_minute)],
        )
        return int(screened), int(hits)

    def tripped(self, rule_ids: Collection[str]) -> dict[str, BreakerState]:
        if not rule_ids:
            return {}
        rows = self._db.run(
            "SELECT * FROM guardrail_breaker_states WHERE rule_id = ANY(%s)", [(list(rule_ids),)]
        )
        states = [_state(row) for row in rows]
        return {state.rule_id: state for state in states}

    def trip(self, state: BreakerState) -> bool:
        return bool(
            self._db.run(
                "INSERT INTO guardrail_breaker_states VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (rule_id) DO NOTHING RETURNING rule_id",
                [
                    (
                        state.rule_id,
                        state.tripped_at,
                        state.hit_rate,
                        state.screened,
                        state.hits,
                        state.cap_at.value,
                    )
                ],
            )
        )

    def reset(self, rule_id: str) -> BreakerState | None:
        rows = self._db.run(
            "WITH gone AS (DELETE FROM guardrail_breaker_counts WHERE rule_id = %s)"
            " DELETE FROM guardrail_breaker_states WHERE rule_id = %s RETURNING *",
            [(rule_id, rule_id)],
        )
        return _state(rows[0]) if rows else None

    def close(self) -> None:
        self._db.close()


def _state(row: tuple[Any, ...]) -> BreakerState:
    rule_id, tripped_at, rate, screened, hits, cap = row
    return BreakerState(
        rule_id=rule_id,
        tripped_at=tripped_at,
        hit_rate=float(rate),
        screened=int(screened),
        hits=int(hits),
        cap_at=Action(cap),
    )
