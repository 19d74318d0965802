"""One result, three engines: Spark (local mode) decides every event exactly as the reference
replay and the columnar engine do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support_replay import EVERY_WINDOW, assert_same, bulk, hit_rules, reference, write_stream

from guardrail.guard import Guard
from guardrail.replay.columnar import ColumnarEngine
from guardrail.replay.spark import SparkEngine


def _stream(tmp_path: Path, n: int, seed: int) -> Path:
    return write_stream(tmp_path / f"stream-{n}.jsonl", n, seed, 0.06)


def test_spark_matches_reference_and_columnar_every_window(tmp_path: Path, spark: Any) -> None:
    path = _stream(tmp_path, 2500, seed=11)

    def on_spark(guard: Guard) -> SparkEngine:
        return SparkEngine(guard.pack, guard.watchlists.snapshot(), session=spark)

    expected = reference(EVERY_WINDOW, path)
    assert_same(expected, bulk(EVERY_WINDOW, path, on_spark))
    assert_same(
        expected,
        bulk(EVERY_WINDOW, path, lambda g: ColumnarEngine(g.pack, g.watchlists.snapshot())),
    )
    assert {"t-same-payee", "t-account-life"} <= hit_rules(expected[0])


@pytest.mark.slow
def test_spark_matches_columnar_on_20k_events(tmp_path: Path, spark: Any) -> None:
    baseline = EVERY_WINDOW
    path = _stream(tmp_path, 20_000, seed=3)

    def on_spark(guard: Guard) -> SparkEngine:
        return SparkEngine(guard.pack, guard.watchlists.snapshot(), session=spark)

    assert_same(
        bulk(baseline, path, lambda g: ColumnarEngine(g.pack, g.watchlists.snapshot())),
        bulk(baseline, path, on_spark),
    )
