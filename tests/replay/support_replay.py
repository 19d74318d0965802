"""Helpers of the replay-engine tests: run the reference and a bulk engine on the same lines
and compare what they decided, event by event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from guardrail.guard import Guard
from guardrail.replay.report import build_report, decisions_frame
from guardrail.replay.run import load_frame, replay_reference_lines
from guardrail.sim.generator import generate
from guardrail.sim.replay import ReplayReport

HERE = Path(__file__).resolve().parent
EVERY_WINDOW = HERE / "packs" / "every-window"
TIMING = ("seconds", "events_per_second", "screen_p50_us", "screen_p99_us", "backend")


def write_stream(path: Path, n: int, seed: int, fraud_rate: float) -> Path:
    """A generated stream without 'when_asked' (the bulk engines refuse those lines)."""
    with path.open("w", encoding="utf-8") as out:
        for record in generate(n, fraud_rate, seed):
            line = json.loads(record.to_json())
            line.pop("when_asked", None)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def reference(pack: Path, path: Path) -> tuple[pl.DataFrame, ReplayReport]:
    guard = Guard.from_path(pack)
    with path.open(encoding="utf-8") as lines:
        outcome = replay_reference_lines(guard, lines, source=str(path), keep_decisions=True)
    assert outcome.decisions is not None
    return outcome.decisions, outcome.report


def bulk(pack: Path, path: Path, engine: Any) -> tuple[pl.DataFrame, ReplayReport]:
    """Decisions and report of ``engine`` (a ColumnarEngine or SparkEngine factory)."""
    guard = Guard.from_path(pack)
    frame, _ = load_frame(path)
    decisions, executed = engine(guard).run(frame)
    report = build_report(guard.pack, frame, decisions, executed, "bulk", 1.0)
    return decisions_frame(frame, decisions, executed), report


def assert_same(
    expected: tuple[pl.DataFrame, ReplayReport], actual: tuple[pl.DataFrame, ReplayReport]
) -> None:
    """Identical hits, actions, obligations and executed flags per event; identical reports."""
    want, want_report = expected
    got, got_report = actual
    assert want.height == got.height
    joined = want.join(got, on="line", suffix="_bulk")
    for column in ("event_id", "action", "obligations", "rule_ids", "executed"):
        differ = joined.filter(pl.col(column) != pl.col(f"{column}_bulk"))
        assert differ.height == 0, f"{column} differs on {differ.height} events:\n{differ.head(5)}"
    a, b = want_report.to_dict(), got_report.to_dict()
    for key in TIMING:
        a.pop(key), b.pop(key)
    assert a == b


def hit_rules(decisions: pl.DataFrame) -> set[str]:
    return set(decisions.get_column("rule_ids").explode().drop_nulls().to_list())
