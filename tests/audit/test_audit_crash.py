"""A writer killed with SIGKILL mid-stream loses no acknowledged record and leaves a log
that verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_factory import SECRET

from guardrail.audit import AuditKeys, AuditLog, verify_log

WRITER = r"""
import sys
sys.path.insert(0, {tests!r})
from audit_factory import make_decision, make_event
from guardrail.audit import AuditKeys, AuditLog
from guardrail.model import Action

log = AuditLog.open({path!r}, keys=AuditKeys.from_secret({secret!r}), checkpoint_every=7)
i = 0
while True:
    batch = []
    for _ in range(1 + i % 3):  # single records and small batches
        event = make_event(i)
        batch.append(log.decision_record(event, make_decision(event, Action.INQUIRE, ("R1",))))
        i += 1
    for seq in log.append(batch):
        sys.stdout.write(f"{{seq}}\n")
    sys.stdout.flush()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("run", range(3))
def test_sigkill_mid_stream(tmp_path: Path, run: int) -> None:
    path = tmp_path / "audit.db"
    code = WRITER.format(tests=str(Path(__file__).parent), path=str(path), secret=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None
    acknowledged: list[int] = []
    deadline = time.monotonic() + 60
    target = 150 + 37 * run
    while len(acknowledged) < target and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    acknowledged += [int(line) for line in rest.split()]  # printed before the kill landed
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= target, "the writer did not get going"

    keys = AuditKeys.from_secret(SECRET)
    report = verify_log(path, keys.signing)
    assert report.ok, report.problem
    assert report.records >= max(acknowledged)
    with AuditLog.open(path, keys=keys) as log:
        present = {record.seq for record in log.records()}
        assert set(acknowledged) <= present
        assert present == set(range(1, report.records + 1))
        # the log is still usable after the crash
        seq = log.append([next(log.records()).payload])[0]
        assert seq == report.records + 1
        assert log.verify().ok
