"""Context through the Guard: a watchlist reload during a screening, and replaying history
through the SQLite store across a process restart."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from guardrail.context.history import SQLiteHistoryStore
from guardrail.guard import Guard, parse_event
from guardrail.model import Action
from guardrail.sim.generator import generate
from guardrail.sim.replay import parse_line
from support import ROOT, STARTER, example_event_data

PAYEE = "6222000055556666777"


def _transfer() -> dict[str, Any]:
    data = example_event_data()
    data.update(kind="transfer", observations={}, notes="", counterparty={"account": PAYEE})
    return data


def test_a_watchlist_reload_changes_the_next_decision_not_the_one_in_flight(tmp_path: Path) -> None:
    guard = Guard.from_path(STARTER)
    event = parse_event(_transfer())
    updated = tmp_path / "involved.csv"
    updated.write_text(
        f"# version: 2025-03-02\nvalue,note\n{PAYEE},newly reported\n", encoding="utf-8"
    )

    screener = guard._live
    original_screening = screener.screening
    assert original_screening is not None  # the reference backend's generated screening

    def reload_mid_screening(*args: Any, **kwargs: Any) -> Any:
        # Lands after the guard took this call's watchlist snapshot, before any lookup.
        guard.reload_watchlist("involved_accounts", updated)
        return original_screening(*args, **kwargs)

    screener.screening = reload_mid_screening
    in_flight = guard.screen(event)
    screener.screening = original_screening
    assert "payee-involved-account" not in in_flight.rule_ids

    following = guard.screen(event)
    assert "payee-involved-account" in following.rule_ids
    assert following.action is Action.REPORT
    hit = next(h for h in following.hits if h.rule_id == "payee-involved-account")
    new_version = hashlib.sha256(updated.read_bytes()).hexdigest()[:12]
    assert new_version in hit.evidence[0].detail  # the version is the data, not its label
    assert following.watchlists["involved_accounts"] == new_version
    assert in_flight.watchlists["involved_accounts"] != new_version


_REPLAY = textwrap.dedent(
    """
    import json, sys
    from guardrail.context.history import SQLiteHistoryStore
    from guardrail.guard import Guard
    from guardrail.sim.replay import parse_line

    pack, db, stream, start, stop = sys.argv[1:6]
    guard = Guard.from_path(pack, history=SQLiteHistoryStore(db))
    lines = open(stream, encoding="utf-8").read().splitlines()[int(start):int(stop)]
    for number, line in enumerate(lines, start=int(start) + 1):
        record = parse_line(line, number)
        event = record.event
        if record.background:  # credits arriving through other channels: history only
            guard.record_executed(event)
            continue
        decision = guard.screen(event)
        print(json.dumps([decision.event_id, decision.action.value, list(decision.rule_ids)]))
        if decision.action.rank < 5:  # below intercept: the counter paid out
            guard.record_executed(event)
    guard.history.close()
    """
)


def test_sqlite_replay_after_a_restart_gives_the_in_memory_decisions(tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    with stream.open("w", encoding="utf-8") as out:
        for item in generate(600, 0.05, seed=11):
            out.write(item.to_json() + "\n")
    pack = str(ROOT / "rules" / "cn-baseline")

    memory = Guard.from_path(pack)
    expected = []
    for number, line in enumerate(stream.read_text(encoding="utf-8").splitlines(), start=1):
        record = parse_line(line, number)
        event = record.event
        if record.background:
            memory.record_executed(event)
            continue
        decision = memory.screen(event)
        expected.append([decision.event_id, decision.action.value, list(decision.rule_ids)])
        if decision.action.rank < 5:
            memory.record_executed(event)
    assert any(rules for _, _, rules in expected), "the stream should hit some rules"

    db = tmp_path / "history.sqlite"
    script = tmp_path / "replay.py"
    script.write_text(_REPLAY, encoding="utf-8")
    first = subprocess.run(
        [sys.executable, str(script), pack, str(db), str(stream), "0", "300"],
        capture_output=True,
        text=True,
        check=True,
    )
    second = subprocess.run(  # a new process: the history must come back from the file
        [sys.executable, str(script), pack, str(db), str(stream), "300", "600"],
        capture_output=True,
        text=True,
        check=True,
    )
    replayed = [json.loads(line) for line in (first.stdout + second.stdout).splitlines()]
    assert replayed == expected
    with SQLiteHistoryStore(db) as store:
        assert len(store) > 0
