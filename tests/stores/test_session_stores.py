"""Counter sessions in a shared store: continued by another process, double actions refused."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardrail.audit import AuditKeys
from guardrail.counter import CounterSession, State
from guardrail.counter.session_store import (
    SessionConflict,
    SessionExists,
    SessionNotFound,
    SessionStore,
)
from guardrail.counter.shared import continue_shared, load_shared, open_shared
from guardrail.guard import Guard, parse_event
from guardrail.lang.loader import load_pack
from guardrail.stores import open_audit_log, open_session_store

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("session_worker.py")
EVENT = {
    "event_id": "seed-003-du",
    "kind": "transfer",
    "amount": {"value": "300000.00", "currency": "CNY"},
    "timestamp": "2023-03-01T10:00:00+08:00",
    "branch": {"id": "SH-PD-001", "region": "CN-SH"},
    "teller_id": "T0001",
    "customer": {"id": "C-DU", "birth_date": "1950-05-01", "region": "CN-SH"},
    "account": {"id": "6222000011112222", "opened_on": "2010-01-01"},
    "counterparty": {"account": "6217999900001111", "name": "林某", "region": "CN-YN"},
    "purpose": {"code": "house_purchase", "text": "买房"},
}


def _guard() -> Guard:
    return Guard(load_pack(REPO / "rules" / "starter"))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def session_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "memory":
        url = "memory:"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/sessions.db"
    else:
        url = request.getfixturevalue("postgres_db_url")
    store = open_session_store(url)
    yield store
    store.close()


def test_create_load_hold_and_conflicts(session_store: SessionStore) -> None:
    assert session_store.create("case-1", '{"x": 1}') == 1
    with pytest.raises(SessionExists):
        session_store.create("case-1", "{}")
    with pytest.raises(SessionNotFound):
        session_store.load("nope")
    with pytest.raises(SessionNotFound), session_store.hold("nope"):
        pass
    with session_store.hold("case-1") as hold:
        assert hold.stored.version == 1
        with pytest.raises(SessionConflict, match="someone else"), session_store.hold("case-1"):
            pass
        assert hold.save('{"x": 2}', closed=False) == 2
    with session_store.hold("case-1"):
        pass  # left without saving: nothing changes
    stored = session_store.load("case-1")
    assert (stored.state, stored.version, stored.closed) == ('{"x": 2}', 2, False)


def test_a_session_continued_through_the_store_resumes_exactly(
    session_store: SessionStore,
) -> None:
    guard = _guard()
    session = open_shared(session_store, guard, parse_event(EVENT))
    with pytest.raises(SessionExists):
        open_shared(session_store, guard, parse_event(EVENT))
    with continue_shared(session_store, session.session_id, guard) as again:
        again.ask_questions(["purpose"])
    resumed = load_shared(session_store, session.session_id, guard)
    assert resumed.questions_asked == ("purpose",)
    assert session_store.load(session.session_id).version == 2


def _worker(url: str, step: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, "seed-003-du", step, *extra],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_opened_in_one_process_continued_and_closed_in_others(postgres_db_url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = AuditKeys.insecure_development_keys()
    store = open_session_store(postgres_db_url)
    audit = open_audit_log(postgres_db_url, keys)
    guard = _guard()
    open_shared(store, guard, parse_event(EVENT), audit=audit)
    for step in ("ask", "withdraw", "close"):
        proc = _worker(postgres_db_url, step)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert f"done {step}" in out
    final = load_shared(store, "seed-003-du", guard)
    assert final.closed and final.state is State.CLOSED
    assert store.load("seed-003-du").closed
    steps = [getattr(record.payload, "step", "decision") for record in audit.records()]
    assert steps == ["decision", "questions_asked", "outcome_recorded", "closed"]
    assert audit.verify().ok
    store.close()
    audit.close()


@pytest.mark.slow
def test_a_concurrent_double_action_is_refused_and_nothing_half_applied(
    postgres_db_url: str,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = AuditKeys.insecure_development_keys()
    store = open_session_store(postgres_db_url)
    audit = open_audit_log(postgres_db_url, keys)
    guard = _guard()
    open_shared(store, guard, parse_event(EVENT), audit=audit)
    holder = _worker(postgres_db_url, "ask", "--hold", "3")
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    records_before = len(list(audit.records()))
    with (
        pytest.raises(SessionConflict, match="someone else"),
        continue_shared(store, "seed-003-du", guard, audit=audit) as session,
    ):
        session.escalate("second teller")  # never reached
    assert len(list(audit.records())) == records_before  # the loser wrote nothing
    _, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err[-2000:]
    stored = store.load("seed-003-du")
    assert stored.version == 2
    session = CounterSession.model_validate_json(stored.state)
    assert [step.step.value for step in session.steps] == ["open", "ask_questions"]
    # once the first teller is done, the second one's step goes through on the new version
    with continue_shared(store, "seed-003-du", guard, audit=audit) as session:
        session.escalate("second teller")
    assert store.load("seed-003-du").version == 3
    store.close()
    audit.close()


def test_two_threads_racing_on_one_session_one_wins(session_store: SessionStore) -> None:
    guard = _guard()
    open_shared(session_store, guard, parse_event(EVENT))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act() -> None:
        try:
            with continue_shared(session_store, "seed-003-du", guard) as session:
                barrier.wait(timeout=10)
                session.escalate("race")
                outcomes.append("applied")
        except SessionConflict:
            barrier.wait(timeout=10)
            outcomes.append("conflict")

    threads = [threading.Thread(target=act) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["applied", "conflict"]
    assert session_store.load("seed-003-du").version == 2
