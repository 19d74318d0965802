"""Several worker processes: kill -9 of one under load loses no acknowledged decision."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import AUDIT_SECRET, Server, add_key, serve, write_config

from conftest import TELLER, event
from guardrail.audit import DecisionRecord, read_records, verify_log
from guardrail.audit.keys import AuditKeys, decode_key


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = write_config(tmp_path_factory.mktemp("workers"), workers=2)
    key = add_key(config, "teller", TELLER)
    with serve(config) as running:
        running.keys = {"teller": key}
        yield running


def _workers(server: Server) -> list[int]:
    pids = []
    for pid in server.worker_pids():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            pids.append(pid)
    return pids


@pytest.mark.slow
def test_kill_9_of_a_worker_under_load_loses_no_acknowledged_decision(
    two_workers: Server,
) -> None:
    server = two_workers
    assert len(_workers(server)) == 2
    acknowledged: dict[str, int] = {}
    after_kill: list[str] = []
    killed = threading.Event()
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            # A fresh connection per request: the dead worker's connections just fail.
            request = event()
            try:
                with server.client(server.keys["teller"]) as client:
                    response = client.post("/v1/screen", json=request)
            except httpx.TransportError:
                continue
            if response.status_code == 200:
                with lock:
                    acknowledged[request["event_id"]] = int(response.headers["Guardrail-Audit-Seq"])
                    if killed.is_set():
                        after_kill.append(request["event_id"])
            else:
                assert response.status_code == 503, response.text  # never a silent loss

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()

    def wait_for(count: int, of: dict[str, int] | list[str]) -> None:
        deadline = time.monotonic() + 120  # bounded however slow the machine is
        while len(of) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    wait_for(30, acknowledged)  # under load before the kill
    victim = _workers(server)[0]
    os.kill(victim, signal.SIGKILL)
    killed.set()
    wait_for(30, after_kill)  # and after it
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    logged = {
        r.payload.event.event_id: r.seq
        for r in read_records(server.audit_path)
        if isinstance(r.payload, DecisionRecord)
    }
    missing = [eid for eid in acknowledged if eid not in logged]
    assert not missing, f"{len(missing)} acknowledged decisions are not in the audit log"
    assert all(logged[eid] == seq for eid, seq in acknowledged.items())
    assert len(after_kill) >= 30, "the surviving worker kept answering"
    report = verify_log(server.audit_path, AuditKeys.from_secret(decode_key(AUDIT_SECRET)).signing)
    assert report.ok, report
    deadline = time.monotonic() + 30  # the supervisor replaces the dead worker
    while len(_workers(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert victim not in _workers(server) and len(_workers(server)) == 2
