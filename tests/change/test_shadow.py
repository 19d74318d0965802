"""Issue 13: a candidate pack screened in shadow is recorded in the audit log, never returned
as the action, and reported with ``guardrail audit report --shadow``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from guardrail.audit.keys import AuditKeys
from guardrail.audit.log import AuditLog
from guardrail.audit.records import ShadowRecord
from guardrail.cli import main
from guardrail.guard import Guard
from guardrail.lang import load_pack
from guardrail.model import Decision, Event
from guardrail.policy import compare
from guardrail.testing import events
from support import BASELINE, STARTER, example_event_data

SECRET = "shadow-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def starter() -> Any:
    return load_pack(STARTER)


def _stricter_copy(tmp_path: Path) -> Path:
    draft = tmp_path / "draft"
    shutil.copytree(STARTER, draft)
    rules = draft / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    assert "customer.age >= 60 and amount >= 50000" in text
    rules.write_text(
        text.replace(
            "customer.age >= 60 and amount >= 50000", "customer.age >= 60 and amount >= 5000"
        ),
        encoding="utf-8",
    )
    return draft


def test_shadow_decisions_go_to_the_audit_log_and_never_become_the_action(
    tmp_path: Path,
    starter: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_KEY", SECRET)
    draft = load_pack(_stricter_copy(tmp_path))
    log_path = tmp_path / "audit.sqlite"
    from guardrail.guard import parse_event

    with AuditLog.open(log_path, keys=AuditKeys.from_env()) as log:
        guard = Guard(starter, candidate=draft, shadow_sink=log.log_shadow)
        live_only = Guard(starter)
        data = {**example_event_data(), "notes": "", "observations": {}}
        small = parse_event({**data, "event_id": "small", "amount": {"value": "8000"}})
        large = parse_event({**data, "event_id": "large"})
        for event in (small, large):
            decision = guard.screen(event)
            assert decision.action == live_only.screen(event).action
            assert decision.pack.content_hash == starter.content_hash
            log.log_decision(event, decision)
        shadows = [r.payload for r in log.records() if isinstance(r.payload, ShadowRecord)]
    assert [s.event_id for s in shadows] == ["small", "large"]
    assert shadows[0].shadow_pack.content_hash == draft.content_hash
    assert "elderly-large-cash" in shadows[0].shadow_rules
    assert "elderly-large-cash" not in shadows[0].live_rules
    assert not shadows[0].agrees and shadows[1].agrees

    assert main(["audit", "report", str(log_path), "--shadow"]) == 0
    text = capsys.readouterr().out
    assert "shadow screenings: 2, agreed 1 (50.00%); action up 1, down 0" in text
    assert "elderly-large-cash" in text and "small" in text
    assert main(["audit", "report", str(log_path), "--shadow", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreed"] == 1 and report["rules_hit_only_in_shadow"] == {"elderly-large-cash": 1}
    # the ordinary report is not confused by shadow records
    assert main(["audit", "report", str(log_path)]) == 0
    assert main(["audit", "verify", str(log_path)]) == 0


def test_a_failing_shadow_sink_does_not_touch_the_live_decision(starter: Any) -> None:
    def broken(event: Event, live: Decision, shadow: Decision) -> None:
        raise RuntimeError("sink down")

    guard = Guard(starter, candidate=starter, shadow_sink=broken)
    from guardrail.guard import parse_event

    event = parse_event(example_event_data())
    assert guard.screen(event).action == Guard(starter).screen(event).action


class _Collected:
    def __init__(self) -> None:
        self.pairs: list[tuple[Decision, Decision]] = []

    def __call__(self, event: Event, live: Decision, shadow: Decision) -> None:
        self.pairs.append((live, shadow))


@pytest.fixture(scope="module")
def identical_shadow() -> tuple[Guard, _Collected]:
    sink = _Collected()
    guard = Guard(load_pack(BASELINE), candidate=load_pack(BASELINE), shadow_sink=sink)
    return guard, sink


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_an_identical_shadow_never_disagrees(
    identical_shadow: tuple[Guard, _Collected], event: Event
) -> None:
    guard, sink = identical_shadow
    sink.pairs.clear()
    guard.screen(event)
    ((live, shadow),) = sink.pairs
    assert compare(live, shadow).agrees
    assert live.rule_ids == shadow.rule_ids
