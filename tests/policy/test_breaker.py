"""Issue 13: a circuit breaker caps a rule whose hit rate explodes, says so in the decision,
alerts once, counts, and resets only by an audited, authorised action."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.audit.records import ControlRecord
from guardrail.guard import Guard, parse_event
from guardrail.lang import load_pack
from guardrail.model import Action
from guardrail.model.decision import AdjustmentKind
from guardrail.policy import CircuitBreakers, MemoryBreakerStore, PostDecisionPolicies
from guardrail.policy.sqlite_stores import SQLiteBreakerStore
from support import ROOT, write_pack

BREAKER = {"max_hit_rate": 0.5, "window_minutes": 60, "min_screened": 10, "cap_at": "review"}


def _pack(folder: Path) -> Any:
    return load_pack(
        write_pack(
            folder,
            [
                {
                    "id": "big-cash",
                    "condition": "amount >= 1000",
                    "action": "intercept",
                    "applies_to": ["cash_withdrawal"],
                    "circuit_breaker": BREAKER,
                },
                {"id": "huge-cash", "condition": "amount >= 900000", "action": "hold"},
            ],
        )
    )


def _event(index: int, amount: int, minute: int = 0) -> Any:
    moment = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
    return parse_event(
        {
            "event_id": f"e{index}",
            "kind": "cash_withdrawal",
            "amount": {"value": str(amount)},
            "timestamp": moment.isoformat(),
            "branch": {"id": "b1", "region": "CN-SH"},
            "teller_id": "t1",
            "customer": {"id": f"c{index}"},
        }
    )


def test_breaker_trips_above_its_ceiling_and_caps_the_action(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pack = _pack(tmp_path / "p")
    alerts: list[Any] = []
    log = AuditLog.open(tmp_path / "audit.sqlite", keys=AuditKeys.from_secret(b"k" * 32))

    def alert(state: Any) -> None:
        alerts.append(state)
        log.log_breaker_trip(state)

    breakers = CircuitBreakers(MemoryBreakerStore(), on_trip=alert)
    guard = Guard(pack, policies=PostDecisionPolicies(breakers=breakers))
    actions = [guard.screen(_event(i, 5000 if i % 4 else 10)).action for i in range(8)]
    assert Action.INTERCEPT in actions  # under min_screened: no verdict yet
    decisions = [guard.screen(_event(100 + i, 5000)) for i in range(10)]
    capped = [d for d in decisions if d.action is Action.REVIEW]
    assert capped, [d.action for d in decisions]
    first = capped[0]
    note = next(a for a in first.adjustments if a.kind is AdjustmentKind.CIRCUIT_BREAKER)
    assert note.from_action is Action.INTERCEPT and note.to_action is Action.REVIEW
    assert "circuit breaker tripped" in note.message
    assert len(alerts) == 1  # one alert per trip, not per decision
    (trip,) = [r.payload for r in log.records() if isinstance(r.payload, ControlRecord)]
    assert trip.control.value == "breaker_tripped" and trip.rule_id == "big-cash"
    log.close()
    assert "ALERT circuit breaker tripped: rule big-cash" in caplog.text
    metrics = breakers.metrics.snapshot()
    assert metrics["circuit_breaker_trips_total"] == {"big-cash": 1}
    assert metrics["circuit_breaker_capped_decisions_total"]["big-cash"] == len(capped)
    # a rule without a breaker is never capped
    assert guard.screen(_event(999, 950000)).action is Action.HOLD
    # reset clears the state; the next hits count afresh
    assert breakers.store.reset("big-cash") is not None
    assert guard.screen(_event(1000, 5000)).action is Action.INTERCEPT


def test_breaker_state_is_shared_across_processes(tmp_path: Path) -> None:
    pack_dir = tmp_path / "p"
    _pack(pack_dir)
    store_path = tmp_path / "policy.sqlite"
    script = textwrap.dedent(
        f"""
        import sys
        from breaker_process import run
        run({str(pack_dir)!r}, {str(store_path)!r}, int(sys.argv[1]))
        """
    )
    helper = tmp_path / "breaker_process.py"
    helper.write_text(
        textwrap.dedent(
            """
            import datetime as dt
            from guardrail.guard import Guard, parse_event
            from guardrail.policy import CircuitBreakers, PostDecisionPolicies
            from guardrail.policy.sqlite_stores import SQLiteBreakerStore

            def run(pack, store, offset):
                breakers = CircuitBreakers(SQLiteBreakerStore(store))
                guard = Guard.from_path(pack, policies=PostDecisionPolicies(breakers=breakers))
                start = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)
                for i in range(6):
                    guard.screen(parse_event({
                        "event_id": f"p{offset}-{i}", "kind": "cash_withdrawal",
                        "amount": {"value": "5000"}, "timestamp": start.isoformat(),
                        "branch": {"id": "b", "region": "CN-SH"}, "teller_id": "t",
                        "customer": {"id": f"c{offset}{i}"}}))
            """
        )
    )
    env_path = f"{ROOT / 'src'}:{tmp_path}"
    for offset in (1, 2):  # two processes, 6 events each: only together above min_screened
        subprocess.run(
            [sys.executable, "-c", script, str(offset)],
            check=True,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
            timeout=120,
        )
    store = SQLiteBreakerStore(store_path)
    assert "big-cash" in store.tripped(["big-cash"])
    assert store.totals("big-cash", 0, 10**9)[0] == 12
    # this process sees the trip made by the others
    guard = Guard(
        load_pack(pack_dir), policies=PostDecisionPolicies(breakers=CircuitBreakers(store))
    )
    assert guard.screen(_event(5, 5000)).action is Action.REVIEW
    store.close()


@settings(max_examples=40, deadline=None)
@given(
    amounts=st.lists(st.sampled_from([10, 5000, 950000]), min_size=1, max_size=40),
    minutes=st.integers(0, 200),
)
def test_the_breaker_never_raises_an_action(
    tmp_path_factory: pytest.TempPathFactory, amounts: list[int], minutes: int
) -> None:
    pack = _pack(tmp_path_factory.mktemp("p"))
    plain = Guard(pack)
    guarded = Guard(
        pack, policies=PostDecisionPolicies(breakers=CircuitBreakers(MemoryBreakerStore()))
    )
    for index, amount in enumerate(amounts):
        event = _event(index, amount, minute=(index * minutes) % 500)
        assert guarded.screen(event).action <= plain.screen(event).action
