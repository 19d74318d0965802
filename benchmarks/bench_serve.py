"""Load test of ``guardrail serve``: screens/s and p50/p99 latency from a separate load process
on loopback, for 1 and 2 worker processes, beside the same screens through the in-process
library (``Guard.screen``) so the cost of HTTP, authentication and the durable audit write
shows as a ratio.

    python benchmarks/bench_serve.py                # 1 and 2 workers, SQLite/memory stores
    python benchmarks/bench_serve.py --postgres     # also every store on a throwaway PostgreSQL
    python benchmarks/bench_serve.py --quick        # 3 s per run

Target (issue 12): >= 1,000 screens/s at p99 <= 20 ms on this 2-core machine, with PostgreSQL
history. Every HTTP screen is acknowledged only after its decision is in the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "server"))
sys.path.insert(0, str(ROOT / "tests"))

TARGET_RATE = 1000.0
TARGET_P99_MS = 20.0


def make_events(n: int, seed: int = 20250301) -> list[dict[str, Any]]:
    base = json.loads((ROOT / "examples/events/elderly_cash_on_phone.json").read_text("utf-8"))
    rng = random.Random(seed)
    events = []
    for i in range(n):
        e = json.loads(json.dumps(base))
        e["event_id"] = f"bench-{seed}-{i}"
        e["amount"] = {
            "value": f"{rng.choice([500, 3000, 20000, 80000, 150000])}.00",
            "currency": "CNY",
        }
        e["customer"]["id"] = f"C-{rng.randrange(5000):05d}"
        e["customer"]["birth_date"] = rng.choice(["1949-06-12", "1985-02-01", "1992-11-30"])
        e["observations"] = {"on_phone": rng.random() < 0.1}
        e["notes"] = ""
        events.append(e)
    return events


# -- the load process -------------------------------------------------------------------------
# A minimal HTTP/1.1 keep-alive client on asyncio streams: httpx's AsyncClient spends more CPU
# per request than the server does, so on 2 cores it would measure itself.
async def _connection(
    host: str, port: int, requests: list[bytes], stop: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    i = random.randrange(len(requests))
    try:
        while time.perf_counter() < stop:
            request = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
    finally:
        writer.close()
    return errors


async def _load(url: str, key: str, seconds: float, concurrency: int) -> dict[str, Any]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    requests = []
    for event in make_events(20000, seed=random.randrange(10**9)):
        body = json.dumps(event).encode()
        requests.append(
            b"POST /v1/screen HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "
            + key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
    warm: list[float] = []
    await asyncio.gather(
        *(
            _connection(host, int(port), requests, time.perf_counter() + 0.5, warm)
            for _ in range(concurrency)
        )
    )
    latencies: list[float] = []
    began = time.perf_counter()
    errors = await asyncio.gather(
        *(
            _connection(host, int(port), requests, began + seconds, latencies)
            for _ in range(concurrency)
        )
    )
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "screens": len(latencies),
        "errors": sum(errors),
        "rate": len(latencies) / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
    }


# -- the driver -------------------------------------------------------------------------------
def in_process_rate(seconds: float) -> float:
    from guardrail.guard import Guard, parse_event

    guard = Guard.from_path(ROOT / "rules/cn-baseline")
    events = [parse_event(json.dumps(e)) for e in make_events(5000)]
    for e in events[:200]:
        guard.screen(e)
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        guard.screen(events[done % len(events)])
        done += 1
    return done / (time.perf_counter() - began)


def run_server(
    workers: int, store_url: str | None, seconds: float, concurrency: int
) -> dict[str, Any]:
    from serving import add_key, guardrail_env, serve, write_config

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        config = write_config(Path(folder), workers=workers, store_url=store_url)
        key = add_key(config, "teller", "T0457")
        with serve(config) as server:
            load = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--load",
                    server.url,
                    key,
                    str(seconds),
                    str(concurrency),
                ],
                capture_output=True,
                text=True,
                env=guardrail_env(),
                timeout=seconds * 10 + 120,
            )
            if load.returncode != 0:
                raise RuntimeError(load.stderr)
            result: dict[str, Any] = json.loads(load.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL stores")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--load", nargs=4, metavar=("URL", "KEY", "SECONDS", "CONCURRENCY"))
    args = parser.parse_args()
    if args.load:
        url, key, seconds, concurrency = args.load
        print(json.dumps(asyncio.run(_load(url, key, float(seconds), int(concurrency)))))
        return
    seconds = 3.0 if args.quick else args.seconds
    library = in_process_rate(seconds)
    print(f"in-process Guard.screen (no HTTP, no audit): {library:,.0f} screens/s")
    runs: list[tuple[str, int, str | None]] = [
        ("sqlite audit, memory history", 1, None),
        ("sqlite audit+history", 2, None),
    ]
    pg_server = None
    if args.postgres:
        from postgres_server import create_database, start_private_server

        pg_server = start_private_server()
        runs += [("postgresql (all stores)", w, create_database(pg_server.url)) for w in (1, 2)]
    try:
        print(
            f"load: 1 asyncio process, {args.concurrency} keep-alive connections, "
            f"{seconds:.0f} s per run, loopback; every screen durably audited before its answer"
        )
        print(
            f"{'stores':<30}{'workers':>8}{'screens/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'errors':>8}{'lib/http':>10}  target"
        )
        for label, workers, url in runs:
            r = run_server(workers, url, seconds, args.concurrency)
            met = r["rate"] >= TARGET_RATE and r["p99_ms"] <= TARGET_P99_MS
            print(
                f"{label:<30}{workers:>8}{r['rate']:>12,.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                f"{r['errors']:>8}{library / max(r['rate'], 1e-9):>9.1f}x  "
                f"{'met' if met else 'NOT met'} (>= {TARGET_RATE:,.0f}/s at p99 <= "
                f"{TARGET_P99_MS:.0f} ms)"
            )
    finally:
        if pg_server is not None:
            pg_server.destroy()


if __name__ == "__main__":
    main()
