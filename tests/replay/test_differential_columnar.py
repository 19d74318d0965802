"""One result, two engines: the columnar replay decides every event exactly as the reference
replay (screening one by one through Guard) does: the same hits, action, obligations and
executed history, on generated streams with histories, every window kind, lexicons on every
text field, watchlists, and fraud that is intercepted and so never becomes history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_replay import EVERY_WINDOW, assert_same, bulk, hit_rules, reference, write_stream

from guardrail.guard import Guard
from guardrail.replay.columnar import ColumnarEngine
from guardrail.replay.plan import CompileError
from guardrail.replay.report import build_report, decisions_frame
from guardrail.replay.run import load_frame, replay_reference_lines
from guardrail.replay.table import StreamError, StreamLine, frame_from_lines
from guardrail.sim.generator import generate, write_jsonl
from guardrail.testing import customers, events, histories

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


_LABELS = st.sampled_from(["fraud", "legitimate"])


@st.composite
def _streams(draw: st.DrawFn) -> list[StreamLine]:
    """A few customers' histories and requests interleaved in time, with random labels and
    background rows, unique ids; timestamps may fall on the same instant."""
    lines: list[StreamLine] = []
    end = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    for _ in range(draw(st.integers(1, 3))):
        customer = draw(customers())
        past = draw(histories(customer, (0, 12), end=end, days=draw(st.integers(1, 12))))
        requests = draw(st.lists(events(customer=customer), min_size=1, max_size=4))
        for event in [*past, *requests]:
            label = draw(_LABELS)
            hint = draw(st.sampled_from(["if_allowed", "if_allowed", "always"]))
            lines.append(StreamLine(label, None, None, hint, event))
    lines.sort(key=lambda line: line.event.timestamp)
    return [
        StreamLine(
            line.label,
            line.typology,
            line.scenario,
            line.executed_history_hint,
            line.event.model_copy(update={"event_id": f"E{index:05d}"}),
        )
        for index, line in enumerate(lines)
    ]


_GUARD_PACK = Guard.from_path(EVERY_WINDOW).pack


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams())
def test_columnar_matches_reference_on_generated_histories(lines: list[StreamLine]) -> None:
    text = [
        json.dumps(
            {
                "label": line.label,
                "executed_history_hint": line.executed_history_hint,
                "event": line.event.model_dump(mode="json"),
            },
            ensure_ascii=False,
        )
        for line in lines
    ]
    outcome = replay_reference_lines(Guard.from_path(EVERY_WINDOW), text, keep_decisions=True)
    assert outcome.decisions is not None
    guard = Guard.from_path(EVERY_WINDOW)
    frame = frame_from_lines(lines)
    decisions, executed = columnar(guard).run(frame)
    got = decisions_frame(frame, decisions, executed)
    report = build_report(guard.pack, frame, decisions, executed, "columnar", 1.0)
    assert_same((outcome.decisions, outcome.report), (got, report))
