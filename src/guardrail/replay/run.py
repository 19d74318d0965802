"""Run a replay with the chosen engine over a JSONL or Parquet stream: the report, and the
per-event decisions for ``--decisions``. Every engine reads the same stream and gives the same
report; only the reference engine reports screening latencies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from guardrail.guard import Guard
from guardrail.model.decision import Action
from guardrail.replay.report import build_report, decisions_frame
from guardrail.replay.table import (
    StreamError,
    frame_from_lines,
    is_parquet,
    lines_of,
    parquet_lines,
    read_parquet,
)
from guardrail.sim.replay import (
    BadLinePolicy,
    Replayer,
    ReplayError,
    ReplayRecord,
    ReplayReport,
    read_records,
)

Engine = Literal["reference", "columnar", "spark"]
ENGINES: tuple[Engine, ...] = ("reference", "columnar", "spark")
Progress = Callable[[str], None]


@dataclass
class ReplayOutcome:
    """A replay's report and, when asked for, its per-event decisions table."""

    report: ReplayReport
    decisions: pl.DataFrame | None


def _text_lines(path: str | Path) -> Iterable[str]:
    if is_parquet(path):
        return parquet_lines(path)
    return Path(path).open(encoding="utf-8")


def load_frame(
    path: str | Path, on_bad_line: BadLinePolicy = "stop", limit: int | None = None
) -> tuple[pl.DataFrame, list[ReplayError]]:
    """The stream table of a Parquet file (checked column by column) or of a JSONL file (each
    line validated exactly as the reference replay validates it)."""
    bad: list[ReplayError] = []
    if is_parquet(path):
        frame = read_parquet(path)
        return (frame if limit is None else frame.head(limit)), bad
    with Path(path).open(encoding="utf-8") as handle:
        records: list[ReplayRecord] = []
        for record in read_records(handle, source=str(path), on_bad_line=on_bad_line, bad=bad):
            if limit is not None and len(records) >= limit:
                break
            if record.when_asked is not None:
                raise StreamError(
                    f"{path}:{record.line_no}: 'when_asked' (screening again with the "
                    "customer's answers) is not compiled by the bulk engines yet; use "
                    "--engine reference"
                )
            records.append(record)
    return frame_from_lines(lines_of(records)), bad


class _RecordingReplayer(Replayer):
    """The reference replayer, keeping each decision for the decisions table."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(guard)
        self.rows: list[tuple[int, str, str, list[str], list[str], bool]] = []

    def feed(self, record: ReplayRecord) -> Action | None:
        recorded = self.recorded
        action = super().feed(record)
        decision = self.last_decision
        if action is not None and decision is not None:
            self.rows.append(
                (
                    record.line_no,
                    decision.event_id,
                    decision.action.value,
                    [o.value for o in decision.obligations],
                    list(decision.rule_ids),
                    self.recorded > recorded,
                )
            )
        return action


def replay_reference(
    guard: Guard,
    path: str | Path,
    *,
    on_bad_line: BadLinePolicy = "stop",
    limit: int | None = None,
    keep_decisions: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayOutcome:
    """The reference replay (``sim.replay``) of a JSONL or Parquet stream."""
    return replay_reference_lines(
        guard,
        _text_lines(path),
        source=str(path),
        on_bad_line=on_bad_line,
        limit=limit,
        keep_decisions=keep_decisions,
        progress=progress,
    )


def replay_reference_lines(
    guard: Guard,
    lines: Iterable[str],
    *,
    source: str = "<stream>",
    on_bad_line: BadLinePolicy = "stop",
    limit: int | None = None,
    keep_decisions: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayOutcome:
    """The reference replay of JSONL text lines."""
    replayer = _RecordingReplayer(guard) if keep_decisions else Replayer(guard)
    bad: list[ReplayError] = []
    started = time.perf_counter()
    records = read_records(lines, source=source, on_bad_line=on_bad_line, bad=bad)
    for count, record in enumerate(records, start=1):
        if limit is not None and count > limit:
            break
        replayer.feed(record)
        if progress is not None and count % 1000 == 0:
            progress(count)
    report = replayer.report(time.perf_counter() - started, bad)
    table = None
    if isinstance(replayer, _RecordingReplayer):
        table = pl.DataFrame(
            replayer.rows,
            schema={
                "line": pl.Int64,
                "event_id": pl.String,
                "action": pl.String,
                "obligations": pl.List(pl.String),
                "rule_ids": pl.List(pl.String),
                "executed": pl.Boolean,
            },
            orient="row",
        )
    return ReplayOutcome(report, table)


def replay_bulk(
    guard: Guard,
    path: str | Path,
    engine: Engine,
    *,
    on_bad_line: BadLinePolicy = "stop",
    limit: int | None = None,
    keep_decisions: bool = False,
    progress: Progress | None = None,
    spark_master: str = "local[2]",
    spark_options: dict[str, Any] | None = None,
) -> ReplayOutcome:
    """Replay with the columnar or the Spark engine; the report matches the reference's."""
    started = time.perf_counter()
    frame, bad = load_frame(path, on_bad_line, limit)
    say = progress or (lambda _message: None)
    say(f"read {frame.height:,} rows")
    if engine == "columnar":
        from guardrail.replay.columnar import ColumnarEngine

        decisions, executed = ColumnarEngine(guard.pack, guard.watchlists.snapshot()).run(
            frame, say
        )
    elif engine == "spark":
        from guardrail.replay.spark import SparkEngine

        with SparkEngine(
            guard.pack, guard.watchlists.snapshot(), master=spark_master, options=spark_options
        ) as spark:
            decisions, executed = spark.run(frame, say)
    else:
        raise ValueError(f"unknown bulk engine {engine!r}")
    report = build_report(
        guard.pack, frame, decisions, executed, engine, time.perf_counter() - started, bad
    )
    table = decisions_frame(frame, decisions, executed) if keep_decisions else None
    return ReplayOutcome(report, table)


__all__ = [
    "ENGINES",
    "Engine",
    "ReplayOutcome",
    "StreamError",
    "replay_bulk",
    "replay_reference",
    "replay_reference_lines",
]
