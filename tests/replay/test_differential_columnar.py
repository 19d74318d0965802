"""The columnar replay decides every event exactly as the reference replay (screening one by one
through Guard) does, and on 100,000 events Spark does too: the same hits, action, obligations
and executed history, on generated streams with histories, every window kind, lexicons on every
text field, watchlists, and fraud that is intercepted and so never becomes history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from support_replay import EVERY_WINDOW, assert_same, bulk, hit_rules, reference, write_stream

from guardrail.context.enrich import FeaturePlan, text_of
from guardrail.guard import Guard
from guardrail.lang.catalog import FieldType
from guardrail.lang.ir import Compare, Const, FieldRef, Op
from guardrail.model.event import Event
from guardrail.model.stream import StreamLine
from guardrail.replay.columnar import ColumnarEngine, Rows
from guardrail.replay.plan import CompileError, compile_plan
from guardrail.replay.report import build_report, decisions_frame
from guardrail.replay.run import load_frame, replay_reference_lines
from guardrail.replay.spark import SparkEngine
from guardrail.replay.table import StreamError, frame_from_lines, lines_of
from guardrail.sim.generator import generate, write_jsonl
from guardrail.testing import streams

ROOT = EVERY_WINDOW.parents[3]
STARTER = ROOT / "rules" / "starter"
BASELINE = ROOT / "rules" / "cn-baseline"
SHENZHEN = ROOT / "rules" / "overlays" / "shenzhen"
BASELINE_EVERY_WINDOW = EVERY_WINDOW.parent / "baseline-every-window"


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
def test_reference_columnar_and_spark_agree_on_100k_events(tmp_path: Path, spark: Any) -> None:
    """One result, three engines: the bank's pack plus every window kind, history feature,
    lexicon field and watchlist, on 100,000 events with histories and intercepted fraud."""
    path = _stream(tmp_path, 100_000, seed=7, fraud_rate=0.03)
    expected = reference(BASELINE_EVERY_WINDOW, path)
    assert_same(expected, bulk(BASELINE_EVERY_WINDOW, path, columnar))

    def on_spark(guard: Guard) -> SparkEngine:
        return SparkEngine(guard.pack, guard.watchlists.snapshot(), session=spark)

    assert_same(expected, bulk(BASELINE_EVERY_WINDOW, path, on_spark))
    fired = hit_rules(expected[0])
    overlay = {rule.id for rule in Guard.from_path(EVERY_WINDOW).pack.rules if rule.id[:2] == "t-"}
    assert overlay <= fired, f"overlay rules that never fired: {sorted(overlay - fired)}"
    # cross-customer windows, third parties, watchlists on third parties, account opening
    assert fired >= _BASELINE_CONSTRUCTS, sorted(_BASELINE_CONSTRUCTS - fired)
    assert len(fired) >= 60


_BASELINE_CONSTRUCTS = {
    "grp-elderly-same-purpose-branch",
    "tp-registered-surrender-agent",
    "tp-agent-present",
    "tp-answers-for-customer",
    "open-young-accompanied-by-stranger",
    "open-many-banks-recently",
    "mule-split-payments-same-payee",
    "inb-inbound-today-then-cash-young-account",
}


def test_columnar_matches_reference_on_the_bank_pack(tmp_path: Path) -> None:
    path = _stream(tmp_path, 6000, seed=13, fraud_rate=0.08)
    expected = reference(BASELINE, path)
    assert_same(expected, bulk(BASELINE, path, columnar))
    assert len(hit_rules(expected[0])) >= 30


def test_columnar_matches_reference_on_a_regional_overlay(tmp_path: Path) -> None:
    """Region-scoped overlay rules test the branch region cut to N parts."""
    path = _stream(tmp_path, 3000, seed=17, fraud_rate=0.06)
    assert_same(reference(SHENZHEN, path), bulk(SHENZHEN, path, columnar))


def test_columnar_matches_reference_on_the_starter_pack(tmp_path: Path) -> None:
    path = _stream(tmp_path, 4000, seed=5)
    assert_same(reference(STARTER, path), bulk(STARTER, path, columnar))


def test_the_bank_pack_compiles_on_both_bulk_engines() -> None:
    guard = Guard.from_path(BASELINE)
    assert len(columnar(guard).plan.rules) >= 80


def test_a_construct_without_compilation_is_refused_naming_rule_and_construct() -> None:
    pack = Guard.from_path(BASELINE).pack
    rule = pack.rules[0]
    odd = Compare(Op.GT, FieldRef("amount", FieldType.MONEY), Const(1.5, FieldType.MONEY))
    broken = dataclasses.replace(rule, guarded=odd)
    pack = dataclasses.replace(pack, rules=(broken, *pack.rules[1:]))
    with pytest.raises(CompileError) as refused:
        compile_plan(pack, "columnar")
    message = str(refused.value)
    assert "use --engine reference" in message
    assert f"rule {rule.id}: unsupported constant 1.5" in message


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


def _with_texts(event: Event, index: int) -> Event:
    """Texts whose lexicon hits depend on live's any_text: the account-opening purpose text is
    part of it, and a term may straddle two parts (normalisation drops the newline)."""
    if event.opening is not None:
        opening = event.opening.model_copy(update={"purpose_text": "说是公安局让开的"})
        return event.model_copy(update={"opening": opening})
    if event.purpose is not None and index % 3 == 0:
        purpose = event.purpose.model_copy(update={"text": "对方说是公安"})
        answers = event.answers.model_copy(update={"purpose_detail": "局的人要求转账"})
        return event.model_copy(update={"purpose": purpose, "answers": answers, "notes": "柜面"})
    return event


def test_any_text_is_joined_as_live_opening_text_and_straddling_terms(tmp_path: Path) -> None:
    """Regression: the columnar any_text left out the account-opening purpose text and joined
    notes before the purpose detail, so terms in the first, and terms straddling purpose text
    and detail, were missed (the benchmark's "identical decisions: NO")."""
    lines = [
        line.model_copy(update={"event": _with_texts(line.event, index)})
        for index, line in enumerate(lines_of(generate(3000, 0.04, 21)))
    ]
    assert any(line.event.opening is not None for line in lines)
    path = tmp_path / "texts.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            record = {"label": line.label, "executed_history_hint": line.executed_history_hint}
            record["event"] = line.event.model_dump(mode="json")
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    live = FeaturePlan(Guard.from_path(EVERY_WINDOW).pack).matcher
    rows = Rows(frame_from_lines(lines))
    joined = rows.text("any_text").to_list()
    for line, text in zip(lines, joined, strict=True):
        assert text == text_of(line.event, "any_text")
    assert any(live.find(text, "any_text") for text in joined)
    expected = reference(EVERY_WINDOW, path)
    assert_same(expected, bulk(EVERY_WINDOW, path, columnar))
    assert "t-texts" in hit_rules(expected[0])
