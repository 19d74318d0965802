"""Issue 13: snooze and breaker stores behave the same in memory, SQLite and PostgreSQL, and
the shared ones are seen by every store instance (every process) opened on the same URL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail.model import Action
from guardrail.policy.snooze import EntityKind, Snooze, entity_hash
from guardrail.policy.stores import BreakerState, Observation
from guardrail.stores import open_breaker_store, open_snooze_store

T0 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory:"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policy.db'}"
    else:
        yield request.getfixturevalue("postgres_db_url")


def _close(*stores: Any) -> None:
    for store in stores:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def _snooze(rule: str, value: str, days: int) -> Snooze:
    return Snooze(
        rule,
        EntityKind.CUSTOMER,
        entity_hash(EntityKind.CUSTOMER, value),
        "…" + value[-4:],
        T0 + dt.timedelta(days=days),
        "cleared",
        "officer-7",
        T0,
    )


def test_snooze_store_contract(url: str) -> None:
    writer = open_snooze_store(url)
    reader = writer if url == "memory:" else open_snooze_store(url)
    try:
        writer.add(_snooze("r1", "C-1001", 5))
        writer.add(_snooze("r2", "C-1001", 1))
        writer.add(_snooze("r1", "C-1001", 7))  # replaces the first
        hashes = {entity_hash(EntityKind.CUSTOMER, "C-1001")}
        active = reader.active({"r1", "r2"}, hashes, T0 + dt.timedelta(days=2))
        assert [(s.rule_id, s.until) for s in active] == [("r1", T0 + dt.timedelta(days=7))]
        assert reader.active({"r1"}, {"other"}, T0) == []
        assert len(reader.all()) == 2
        assert writer.remove("r2", EntityKind.CUSTOMER, entity_hash(EntityKind.CUSTOMER, "C-1001"))
        assert not writer.remove("r2", EntityKind.CUSTOMER, "nope")
        assert [s.rule_id for s in reader.all()] == ["r1"]
    finally:
        _close(writer, *([] if reader is writer else [reader]))


def test_breaker_store_contract(url: str) -> None:
    one = open_breaker_store(url)
    two = one if url == "memory:" else open_breaker_store(url)
    try:
        one.record([Observation("r1", 100, 1, 1), Observation("r1", 101, 1, 0)])
        two.record([Observation("r1", 101, 2, 2), Observation("r2", 101, 5, 0)])
        assert one.totals("r1", 100, 101) == (4, 3)
        assert two.totals("r1", 101, 101) == (3, 2)
        assert one.totals("r3", 0, 1000) == (0, 0)
        state = BreakerState("r1", T0, 0.75, 4, 3, Action.REVIEW)
        assert one.trip(state)
        assert not two.trip(BreakerState("r1", T0, 0.9, 10, 9, Action.NOTICE))  # first wins
        assert two.tripped(["r1", "r2"]) == {"r1": state}
        assert two.reset("r1") == state
        assert one.tripped(["r1"]) == {} and one.totals("r1", 0, 1000) == (0, 0)
        assert one.totals("r2", 0, 1000) == (5, 0)
        assert one.reset("r1") is None
    finally:
        _close(one, *([] if two is one else [two]))
