"""One result, three engines: Spark (local mode) decides every event exactly as the reference
replay and the columnar engine do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support_replay import EVERY_WINDOW, assert_same, bulk, hit_rules, reference, write_stream

from guardrail.guard import Guard
from guardrail.replay.columnar import ColumnarEngine
from guardrail.replay.spark import SparkEngine

BASELINE_EVERY_WINDOW = EVERY_WINDOW.parent / "baseline-every-window"


def _stream(tmp_path: Path, n: int, seed: int) -> Path:
    return write_stream(tmp_path / f"stream-{n}.jsonl", n, seed, 0.06)


def test_spark_matches_reference_and_columnar_every_window(tmp_path: Path, spark: Any) -> None:
    """The bank's pack with every window kind on top: branch and payee windows across
    customers, third parties, documents, lexicons, watchlists."""
    path = _stream(tmp_path, 2500, seed=11)

    def on_spark(guard: Guard) -> SparkEngine:
        return SparkEngine(guard.pack, guard.watchlists.snapshot(), session=spark)

    expected = reference(BASELINE_EVERY_WINDOW, path)
    assert_same(expected, bulk(BASELINE_EVERY_WINDOW, path, on_spark))
    assert_same(
        expected,
        bulk(
            BASELINE_EVERY_WINDOW,
            path,
            lambda g: ColumnarEngine(g.pack, g.watchlists.snapshot()),
        ),
    )
    fired = hit_rules(expected[0])
    assert {"t-same-payee", "t-account-life", "grp-elderly-same-purpose-branch"} <= fired


@pytest.mark.slow
def test_spark_matches_reference_with_branches_in_two_time_zones(
    tmp_path: Path, spark: Any
) -> None:
    """Branches in two zones: a customer's local day depends on where each event happened, so
    same-day windows take the as-of path instead of partitioning by the local midnight."""
    path = _stream(tmp_path, 2000, seed=5)
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        line = json.loads(text)
        branch = line["event"]["branch"]
        if branch["id"] in ("BR001", "BR002", "BR003", "BR004", "BR005"):
            branch["timezone"] = "Asia/Urumqi"  # six hours, not eight, ahead of UTC
        lines.append(json.dumps(line, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def on_spark(guard: Guard) -> SparkEngine:
        return SparkEngine(guard.pack, guard.watchlists.snapshot(), session=spark)

    expected = reference(BASELINE_EVERY_WINDOW, path)
    assert_same(expected, bulk(BASELINE_EVERY_WINDOW, path, on_spark))
    assert {"t-same-payee", "t-with-payee"} <= hit_rules(expected[0])
