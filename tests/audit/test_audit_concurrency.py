"""Many teller threads and several writers on one file keep one valid chain."""

from __future__ import annotations

import threading
from pathlib import Path

from audit_factory import make_decision, make_event

from guardrail.audit import AuditKeys, AuditLog
from guardrail.model import Action


def test_threads_share_one_log(log: AuditLog) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def teller(t: int) -> None:
        for i in range(25):
            event = make_event(t * 100 + i, teller=f"T{t:02d}")
            seq = log.log_decision(event, make_decision(event, Action.NOTICE))
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=teller, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 201))
    report = log.verify()
    assert report.ok and report.records == 200


def test_two_writers_on_one_file(log_path: Path, keys: AuditKeys) -> None:
    """Two independent handles (as two processes would have) interleave appends: the loser of
    each race re-reads the head and re-seals."""
    first = AuditLog.open(log_path, keys=keys, checkpoint_every=3)
    second = AuditLog.open(log_path, keys=keys, checkpoint_every=3)
    try:
        seqs = []
        for i in range(20):
            writer = first if i % 3 else second
            event = make_event(i)
            seqs.append(writer.log_decision(event, make_decision(event, Action.INQUIRE)))
        assert seqs == list(range(1, 21))
        assert first.verify().ok and second.verify().ok
        assert first.meta.log_id == second.meta.log_id
    finally:
        first.close()
        second.close()
