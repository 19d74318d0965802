"""The stream table and the replay CLI: Parquet written by ``simulate --format parquet`` replays
to the same decisions as its JSONL; bad Parquet is refused naming row and column; the CLI's
engines agree and write the decisions file; refusals exit 2 with one line, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from support_replay import EVERY_WINDOW, write_stream

from guardrail.cli import main
from guardrail.replay.columnar import Rows
from guardrail.replay.table import StreamError, lines_of, read_parquet, write_parquet
from guardrail.sim.replay import read_records


def _parquet_of(jsonl: Path, out: Path) -> Path:
    with jsonl.open(encoding="utf-8") as handle:
        write_parquet(lines_of(read_records(handle)), out)
    return out


def test_parquet_and_jsonl_give_the_same_decisions_with_every_engine(tmp_path: Path) -> None:
    jsonl = write_stream(tmp_path / "s.jsonl", 1500, seed=9, fraud_rate=0.05)
    parquet = _parquet_of(jsonl, tmp_path / "s.parquet")
    tables = {}
    for engine, stream in (("reference", jsonl), ("reference", parquet), ("columnar", parquet)):
        out = tmp_path / f"{engine}-{stream.suffix[1:]}.parquet"
        code = main(
            [
                "replay",
                str(EVERY_WINDOW),
                str(stream),
                "--engine",
                engine,
                "--decisions",
                str(out),
                "--no-progress",
                "--json",
            ]
        )
        assert code == 0
        tables[out.name] = pl.read_parquet(out)
    first, *others = tables.values()
    assert first.height > 1000
    assert set(first.columns) == {
        "line",
        "event_id",
        "action",
        "obligations",
        "rule_ids",
        "executed",
    }
    for table in others:
        assert table.equals(first)


def test_simulate_writes_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.parquet"
    assert main(["simulate", "--n", "400", "--format", "parquet", "--out", str(out)]) == 0
    frame = read_parquet(out)
    assert frame.height == 400
    assert frame.get_column("event_id").n_unique() == 400
    assert main(["simulate", "--n", "10", "--format", "parquet"]) == 2
    assert "needs --out" in capsys.readouterr().err


def test_a_bulk_replay_reports_latency_as_not_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The columnar engine screens no event alone: its report says the per-event latency was
    not measured instead of printing 0 µs; the reference replay measures it."""
    stream = write_stream(tmp_path / "s.jsonl", 300, 5, 0.05)
    pack = str(EVERY_WINDOW)
    assert main(["replay", pack, str(stream), "--engine", "columnar", "--no-progress"]) == 0
    assert "screening latency not measured (events screened in bulk)" in capsys.readouterr().out
    assert main(["replay", pack, str(stream), "--engine", "columnar", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["screen_p50_us"] is None and report["screen_p99_us"] is None
    assert main(["replay", pack, str(stream), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["screen_p50_us"] > 0


def test_bad_parquet_is_refused_naming_row_and_column(tmp_path: Path) -> None:
    jsonl = write_stream(tmp_path / "s.jsonl", 50, seed=2, fraud_rate=0.1)
    frame = read_parquet(_parquet_of(jsonl, tmp_path / "s.parquet"))
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 6)
        .then(pl.lit("teleport"))
        .otherwise(pl.col("kind"))
        .alias("kind")
    )
    broken.write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(StreamError, match=r"row 7, column 'kind'"):
        read_parquet(tmp_path / "bad.parquet")
    # constrained strings (checked on the whole column at once) name the row and the rule
    for column, value, problem in (
        ("customer.id", "bad id!", "should match pattern"),
        ("account.id", "6" * 41, "at most 40 characters"),
        ("customer.phone", "call me", "should match pattern"),
    ):
        row = frame.select(pl.col(column).is_not_null().arg_true().get(1)).item()
        frame.with_columns(
            pl.when(pl.int_range(pl.len()) == row)
            .then(pl.lit(value))
            .otherwise(pl.col(column))
            .alias(column)
        ).write_parquet(tmp_path / "bad-string.parquet")
        with pytest.raises(StreamError, match=rf"row {row + 1}, column '{column}': .*{problem}"):
            read_parquet(tmp_path / "bad-string.parquet")
    frame.drop("amount.fen").write_parquet(tmp_path / "missing.parquet")
    with pytest.raises(StreamError, match=r"missing column 'amount\.fen'"):
        read_parquet(tmp_path / "missing.parquet")
    frame.with_columns(pl.lit(1).alias("shoe_size")).write_parquet(tmp_path / "extra.parquet")
    with pytest.raises(StreamError, match="unknown column 'shoe_size'"):
        read_parquet(tmp_path / "extra.parquet")


def test_an_unsorted_stream_is_refused_by_the_columnar_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = write_stream(tmp_path / "s.jsonl", 60, seed=2, fraud_rate=0.1)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    lines[10], lines[40] = lines[40], lines[10]
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(
        ["replay", str(EVERY_WINDOW), str(swapped), "--engine", "columnar", "--no-progress"]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "timestamp order" in error and "row " in error
    assert "Traceback" not in error


def test_a_repeated_event_id_is_refused_naming_the_row(tmp_path: Path) -> None:
    jsonl = write_stream(tmp_path / "s.jsonl", 60, seed=2, fraud_rate=0.1)
    frame = read_parquet(_parquet_of(jsonl, tmp_path / "s.parquet"))
    first = frame.get_column("event_id")[5]
    repeated = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 30)
        .then(pl.lit(first))
        .otherwise(pl.col("event_id"))
        .alias("event_id")
    )
    with pytest.raises(StreamError, match=rf"row 6: event id '{first}' repeats"):
        Rows(repeated)
