"""Replay benchmark: the reference replay, the columnar engine and Spark local[1] / local[2] on
the same generated stream, in one run. Each engine runs in its own process (so peak memory is
its own) and writes its per-event decisions; the run checks they are identical.

Prints events/s, seconds, peak RSS and the issue's targets as met / NOT met; asserts nothing.
Peak RSS is each engine process's own high-water mark (VmHWM, which starts afresh at exec,
unlike ru_maxrss), plus for Spark the JVM's resident memory sampled every 0.25 s.

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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACK = ROOT / "rules" / "cn-baseline"  # the bank's 80-rule pack

_CHILD = r"""
import json, os, sys, threading, time
from guardrail.guard import Guard
from guardrail.replay.report import write_decisions
from guardrail.replay.run import replay_bulk, replay_reference

def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def descendants(root):
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    parents[int(name)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    return found

peak_children = 0
done = threading.Event()

def sample():
    global peak_children
    while not done.wait(0.25):
        peak_children = max(peak_children, sum(rss_kb(p) for p in descendants(os.getpid())))

pack, stream, engine, master, out = sys.argv[1:6]
threading.Thread(target=sample, daemon=True).start()
guard = Guard.from_path(pack)
started = time.perf_counter()
if engine == "reference":
    outcome = replay_reference(guard, stream, keep_decisions=True)
else:
    outcome = replay_bulk(guard, stream, engine, keep_decisions=True, spark_master=master,
                          spark_options={"spark.driver.memory": "3g"})
seconds = time.perf_counter() - started
done.set()
write_decisions(outcome.decisions, out)
with open("/proc/self/status") as status:  # this process's own high-water mark since exec
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "seconds": seconds,
    "events": outcome.report.events,
    "peak_mb": hwm / 1024,
    "children_peak_mb": peak_children / 1024,
}))
"""


def _write_stream(n: int, folder: Path) -> tuple[Path, Path]:
    """One generated stream, as JSONL (the reference's input) and as Parquet (the same rows,
    read back through the JSONL validator): generated once, the slow part at 1,000,000."""
    from guardrail.replay.run import load_frame
    from guardrail.replay.table import ARROW_SCHEMA
    from guardrail.sim.generator import generate

    jsonl, parquet = folder / "stream.jsonl", folder / "stream.parquet"
    with jsonl.open("w", encoding="utf-8") as out:
        for record in generate(n, 0.02, 7):
            line = json.loads(record.to_json())
            line.pop("when_asked", None)  # the bulk engines do not compile re-screening yet
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    frame, _ = load_frame(jsonl)
    import pyarrow.parquet as pq

    pq.write_table(
        frame.to_arrow().cast(ARROW_SCHEMA), parquet, compression="zstd", row_group_size=100_000
    )
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


def _report_differences(want: Any, got: Any, label: str) -> bool:
    """Whether ``got`` decides every event as ``want``; prints the first differing events."""
    import polars as pl

    if want.height != got.height:
        print(f"{label}: {got.height:,} decisions, reference {want.height:,}")
        return False
    joined = want.join(got, on="line", how="full", suffix="_other")
    differ = joined.filter(
        pl.any_horizontal(
            pl.col(c).ne_missing(pl.col(f"{c}_other"))
            for c in ("event_id", "action", "obligations", "rule_ids", "executed")
        )
    )
    if differ.height:
        print(f"{label}: {differ.height:,} events decided differently from the reference, first:")
        with pl.Config(fmt_str_lengths=80, tbl_width_chars=200):
            print(differ.head(5))
    return differ.height == 0


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
        same = True
        for label, table in decisions.items():
            if label != "reference" and not _report_differences(
                decisions["reference"], table, label
            ):
                same = False
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
