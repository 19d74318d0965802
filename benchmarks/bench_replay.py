"""Replay benchmark: the reference replay, the columnar engine and Spark local[1] / local[2] on
the same generated stream, in one run. Each engine runs in its own process (so peak memory is
its own) and writes its per-event decisions; the run checks they are identical.

Prints events/s, seconds, peak RSS and the issue's targets as met / NOT met; asserts nothing.

    .venv/bin/python benchmarks/bench_replay.py [--n 1000000] [--pack DIR] [--skip-spark]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACK = ROOT / "tests" / "replay" / "packs" / "every-window"

_CHILD = r"""
import json, resource, sys, time
from guardrail.guard import Guard
from guardrail.replay.report import write_decisions
from guardrail.replay.run import replay_bulk, replay_reference
pack, stream, engine, master, out = sys.argv[1:6]
guard = Guard.from_path(pack)
started = time.perf_counter()
if engine == "reference":
    outcome = replay_reference(guard, stream, keep_decisions=True)
else:
    outcome = replay_bulk(guard, stream, engine, keep_decisions=True, spark_master=master,
                          spark_options={"spark.driver.memory": "3g"})
seconds = time.perf_counter() - started
write_decisions(outcome.decisions, out)
print(json.dumps({
    "seconds": seconds,
    "events": outcome.report.events,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def _write_stream(n: int, folder: Path) -> tuple[Path, Path]:
    from guardrail.replay.table import lines_of, write_parquet
    from guardrail.sim.generator import generate

    jsonl, parquet = folder / "stream.jsonl", folder / "stream.parquet"
    with jsonl.open("w", encoding="utf-8") as out:
        for record in generate(n, 0.02, 7):
            line = json.loads(record.to_json())
            line.pop("when_asked", None)  # the bulk engines do not compile re-screening yet
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    write_parquet(lines_of(generate(n, 0.02, 7)), parquet)
    return jsonl, parquet


def _run(pack: Path, stream: Path, engine: str, master: str, out: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(pack), str(stream), engine, master, str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{engine} {master} failed:\n{result.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args()
    import polars as pl

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        jsonl, parquet = _write_stream(args.n, folder)
        print(f"stream: {args.n:,} events ({time.perf_counter() - started:.0f} s to generate)")
        print(f"pack: {args.pack}")
        runs = [("reference", jsonl, "reference", "-"), ("columnar", parquet, "columnar", "-")]
        if not args.skip_spark:
            runs += [
                ("spark local[1]", parquet, "spark", "local[1]"),
                ("spark local[2]", parquet, "spark", "local[2]"),
            ]
        figures: dict[str, dict[str, float]] = {}
        decisions: dict[str, pl.DataFrame] = {}
        print(f"{'engine':<16} {'input':<8} {'events/s':>10} {'seconds':>9} {'peak RSS MB':>12}")
        for label, stream, engine, master in runs:
            out = folder / f"decisions-{len(figures)}.parquet"
            got = _run(args.pack, stream, engine, master, out)
            figures[label] = got
            decisions[label] = pl.read_parquet(out)
            rate = got["events"] / got["seconds"]
            memory = f"{got['peak_mb']:.0f}"
            if engine == "spark":
                memory += f" (+JVM {got['children_peak_mb']:.0f})"
            kind = stream.suffix.lstrip(".")
            print(f"{label:<16} {kind:<8} {rate:>10,.0f} {got['seconds']:>9.1f} {memory:>12}")
        same = all(decisions["reference"].equals(table) for table in decisions.values())
        print(f"identical per-event decisions across engines: {'yes' if same else 'NO'}")

        def rate(label: str) -> float:
            return figures[label]["events"] / figures[label]["seconds"]

        speedup = rate("columnar") / rate("reference")
        print(f"columnar vs reference: {speedup:.1f}x  target >= 20x: {_verdict(speedup >= 20)}")
        print(
            f"columnar {rate('columnar'):,.0f} events/s  target >= 200,000: "
            f"{_verdict(rate('columnar') >= 200_000)}"
        )
        if not args.skip_spark:
            scale = rate("spark local[2]") / rate("spark local[1]")
            print(
                f"spark local[2] vs local[1]: {scale:.2f}x  target >= 1.6x on 1,000,000 events: "
                f"{_verdict(scale >= 1.6 and args.n >= 1_000_000)}"
            )
        print(f"results identical: {_verdict(same)}")


if __name__ == "__main__":
    main()
