"""The array building blocks of the columnar engine against the plain NumPy they replace."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support_replay import EVERY_WINDOW

from guardrail.engine.decide import outcome
from guardrail.guard import Guard
from guardrail.replay.columnar import Memo, small_pages, stable_order
from guardrail.replay.localtime import civil
from guardrail.replay.result import decide_packed, decided_rule_ids


def test_civil_dates_match_numpy_calendar_across_four_centuries_both_sides_of_1970() -> None:
    days = np.arange(-250_000, 250_000, dtype=np.int64)
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    year, month, day = civil(days)
    assert (year == months.astype(np.int64) // 12 + 1970).all()
    assert (month == months.astype(np.int64) % 12 + 1).all()
    assert (day == (dates - months.astype("datetime64[D]")).astype(np.int64) + 1).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=40), max_size=300))
def test_stable_order_is_numpy_stable_argsort(values: list[int]) -> None:
    key = np.array(values, dtype=np.int64)
    assert (stable_order(key) == np.argsort(key, kind="stable")).all()


def test_stable_order_falls_back_when_keys_are_too_wide_for_one_integer() -> None:
    key = np.array([1 << 61, 0, 1 << 61, 5, 0], dtype=np.int64)
    assert stable_order(key).tolist() == [1, 4, 3, 0, 2]


def test_memo_computes_each_key_once_across_threads() -> None:
    memo: Memo[str, int] = Memo()
    calls: list[str] = []

    def compute() -> int:
        calls.append("x")
        time.sleep(0.05)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(memo.get("x", compute))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 4
    assert calls == ["x"]


def test_memo_recomputes_after_a_failed_computation() -> None:
    memo: Memo[str, int] = Memo()

    def fail() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        memo.get("k", fail)
    assert memo.get("k", lambda: 7) == 7


def test_packed_decisions_equal_the_live_outcome_of_each_row() -> None:
    pack = Guard.from_path(EVERY_WINDOW).pack
    rule_ids = tuple(rule.id for rule in pack.engine_rules)
    generator = np.random.default_rng(3)
    hits = generator.random((500, len(rule_ids))) < 0.05  # most rows: no hit at all
    hits[:3] = False
    screened = generator.random(500) < 0.9
    decisions = decide_packed(pack, np.packbits(hits, axis=1), screened)
    for row in range(500):
        if not screened[row]:
            assert decisions.combo[row] == -1
            continue
        ids = tuple(rule_ids[i] for i in np.flatnonzero(hits[row]))
        action, obligations = outcome(pack, ids)
        combo = int(decisions.combo[row])
        assert decisions.combos[combo] == decided_rule_ids(ids)
        assert decisions.combo_action[combo] == action.rank
        assert decisions.combo_obligations[combo] == obligations


def test_small_pages_turns_the_huge_page_hint_off_inside_and_restores_it() -> None:
    from numpy._core import multiarray

    switch = getattr(multiarray, "_set_madvise_hugepage")  # noqa: B009 (private, untyped)
    before = switch(True)
    try:
        with small_pages():
            assert switch(False) is False  # off inside the block
        assert switch(True) is True  # restored on the way out
    finally:
        switch(before)
