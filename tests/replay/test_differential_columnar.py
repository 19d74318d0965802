"""One result, two engines: the columnar replay decides every event exactly as the reference
replay (screening one by one through Guard) does: the same hits, action, obligations and
executed history, on generated streams with histories, every window kind, lexicons on every
text field, watchlists, and fraud that is intercepted and so never becomes history."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from support_replay import EVERY_WINDOW, assert_same, bulk, hit_rules, reference, write_stream

from guardrail.guard import Guard
from guardrail.model.stream import StreamLine
from guardrail.replay.columnar import ColumnarEngine
from guardrail.replay.plan import CompileError
from guardrail.replay.report import build_report, decisions_frame
from guardrail.replay.run import load_frame, replay_reference_lines
from guardrail.replay.table import StreamError, frame_from_lines
from guardrail.sim.generator import generate, write_jsonl
from guardrail.testing import streams

ROOT = EVERY_WINDOW.parents[3]
STARTER = ROOT / "rules" / "starter"
BASELINE = ROOT / "rules" / "cn-baseline"


def columnar(guard: Guard) -> ColumnarEngine:
    return ColumnarEngine(guard.pack, guard.watchlists.snapshot())


def _stream(tmp_path: Path, n: int, seed: int, fraud_rate: float = 0.04) -> Path:
    return write_stream(tmp_path / f"stream-{n}-{seed}.jsonl", n, seed, fraud_rate)


def test_columnar_matches_reference_every_window_small(tmp_path: Path) -> None:
    path = _stream(tmp_path, 6000, seed=11, fraud_rate=0.06)
    expected = reference(EVERY_WINDOW, path)
    assert_same(expected, bulk(EVERY_WINDOW, path, columnar))
    # the overlay's window rules fire, and some intercepts keep fraud out of history
    fired = hit_rules(expected[0])
    assert {"t-same-payee", "t-account-life", "t-max-out"} <= fired
    assert not expected[0].get_column("executed").all()


@pytest.mark.slow
def test_columnar_matches_reference_on_100k_events(tmp_path: Path) -> None:
    path = _stream(tmp_path, 100_000, seed=7, fraud_rate=0.03)
    expected = reference(EVERY_WINDOW, path)
    assert_same(expected, bulk(EVERY_WINDOW, path, columnar))
    fired = hit_rules(expected[0])
    overlay = {rule.id for rule in Guard.from_path(EVERY_WINDOW).pack.rules if rule.id[:2] == "t-"}
    assert overlay <= fired, f"overlay rules that never fired: {sorted(overlay - fired)}"
    assert len(fired) >= 15  # 18 of the starter + overlay rules fire on this stream


def test_columnar_matches_reference_on_the_starter_pack(tmp_path: Path) -> None:
    path = _stream(tmp_path, 4000, seed=5)
    assert_same(reference(STARTER, path), bulk(STARTER, path, columnar))


def test_constructs_not_compiled_yet_are_refused_by_name() -> None:
    guard = Guard.from_path(BASELINE)
    with pytest.raises(CompileError) as refused:
        columnar(guard)
    message = str(refused.value)
    assert "use --engine reference" in message
    assert "window.payee_customers_72h: key 'payee' is not supported" in message
    assert "field 'third_party.agent_present' has no column compilation" in message


def test_when_asked_lines_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "asked.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_jsonl(generate(300, 0.2, 3), out)
    with pytest.raises(StreamError, match="when_asked"):
        load_frame(path)


_GUARD_PACK = Guard.from_path(EVERY_WINDOW).pack


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_columnar_matches_reference_on_generated_histories(lines: list[StreamLine]) -> None:
    text = [line.to_json() for line in lines]
    outcome = replay_reference_lines(Guard.from_path(EVERY_WINDOW), text, keep_decisions=True)
    assert outcome.decisions is not None
    guard = Guard.from_path(EVERY_WINDOW)
    frame = frame_from_lines(lines)
    decisions, executed = columnar(guard).run(frame)
    got = decisions_frame(frame, decisions, executed)
    report = build_report(guard.pack, frame, decisions, executed, "columnar", 1.0)
    assert_same((outcome.decisions, outcome.report), (got, report))
