"""Replay: a JSONL history gives identical answers in memory, in SQLite, and across restarts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from context_replay import WINDOWS, read_jsonl, replay, synthetic_events, write_jsonl

from guardrail.context import InMemoryHistoryStore, SQLiteHistoryStore, retention_for
from guardrail.model.event import Event

WORKER = Path(__file__).with_name("context_replay.py")
Rows = list[dict[str, object]]


def run_worker(db: Path, jsonl: Path, start: int, stop: int, *, retain: bool) -> dict[str, object]:
    """Replay events[start:stop] into ``db`` in a brand-new Python process."""
    out = db.with_name(f"{db.stem}-{start}-{stop}.json")
    args = [str(db), str(jsonl), str(out), str(start), str(stop), "yes" if retain else "no"]
    completed = subprocess.run(
        [sys.executable, str(WORKER), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    loaded: dict[str, object] = json.loads(out.read_text())
    return loaded


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event], Rows]:
    """The JSONL file, its events read back, and the live in-memory answers."""
    jsonl = tmp_path_factory.mktemp("replay") / "history.jsonl"
    write_jsonl(synthetic_events(200), jsonl)
    events = read_jsonl(jsonl)
    assert len(events) == 200
    live = replay(events, InMemoryHistoryStore(retention_for(WINDOWS)))
    # The history must exercise the windows, or equality would prove little.
    assert sum(1 for row in live if row["cash_out_today"]) > 20
    assert sum(1 for row in live if row["out_count_6h"]) > 20
    assert sum(1 for row in live if row["history.inbound_24h"]) > 20
    assert any(row["counterparty.first_seen"] is False for row in live)
    assert any(row["history.same_payee_count_today"] for row in live)
    return jsonl, events, json.loads(json.dumps(live))


def test_bounded_memory_gives_the_same_answers_as_unbounded(
    history: tuple[Path, list[Event], Rows],
) -> None:
    _, events, live = history
    assert replay(events, InMemoryHistoryStore()) == live


def test_sqlite_in_process_matches_in_memory(
    history: tuple[Path, list[Event], Rows], tmp_path: Path
) -> None:
    _, events, live = history
    store = SQLiteHistoryStore(tmp_path / "h.db", retention_for(WINDOWS))
    assert replay(events, store) == live
    store.close()


def test_sqlite_replay_continued_after_a_restart_matches_in_memory(
    history: tuple[Path, list[Event], Rows], tmp_path: Path
) -> None:
    jsonl, _, live = history
    db = tmp_path / "h.db"
    first = run_worker(db, jsonl, 0, 120, retain=True)
    second = run_worker(db, jsonl, 120, 200, retain=True)  # a new process reopens the file
    assert first["results"] + second["results"] == live  # type: ignore[operator]


def test_rescreening_everything_after_a_restart_matches_in_memory(
    history: tuple[Path, list[Event], Rows], tmp_path: Path
) -> None:
    # The file holds the whole history when a new process replays the same JSONL again:
    # as-of-timestamp windows and idempotent recording give the live answers exactly.
    jsonl, _, live = history
    db = tmp_path / "h.db"
    first = run_worker(db, jsonl, 0, 200, retain=False)
    again = run_worker(db, jsonl, 0, 200, retain=False)
    assert first["results"] == live
    assert again["results"] == live
    assert again["records"] == first["records"] == 200
