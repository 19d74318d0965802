"""Guard behaviour a teller application relies on: concurrency, isolation, failing closed,
and clear errors for malformed events."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from guardrail.context.watchlist import Watchlist
from guardrail.guard import EventError, Guard, parse_event
from guardrail.model import Action, Event
from support import STARTER, example_event_data, write_pack


def _variants(base: dict[str, Any], count: int) -> list[Event]:
    """Events that hit different rule sets: ages, amounts, phone use, purposes."""
    events = []
    for index in range(count):
        data = json.loads(json.dumps(base))
        data["event_id"] = f"evt-{index}"
        data["amount"] = {"value": str(1000 + (index * 7919) % 120000)}
        data["customer"]["birth_date"] = f"{1940 + index % 60}-03-01"
        data["observations"] = {"on_phone": index % 3 == 0, "earpiece": index % 5 == 0}
        data["notes"] = "对方说是安全账户" if index % 7 == 0 else ""
        data["kind"] = ["cash_withdrawal", "transfer", "term_deposit_early_withdrawal"][index % 3]
        if data["kind"] == "transfer":
            data["counterparty"] = {
                "account": "6222020200998877665" if index % 4 == 0 else "6222000011112222"
            }
        events.append(parse_event(data))
    return events


@pytest.mark.parametrize("backend", ["reference", "durable_rules"])
def test_eight_threads_give_the_sequential_results(backend: str) -> None:
    guard = Guard.from_path(STARTER, backend=backend)
    events = _variants(example_event_data(), 400)
    sequential = [guard.screen(event) for event in events]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(guard.screen, events))
    assert [d.rule_ids for d in concurrent] == [d.rule_ids for d in sequential]
    assert [d.action for d in concurrent] == [d.action for d in sequential]
    assert len({d.rule_ids for d in sequential}) > 3, (
        "the workload should exercise several rule sets"
    )
    assert not any(d.failures for d in concurrent)


@pytest.mark.parametrize("backend", ["reference", "durable_rules"])
def test_two_guards_with_different_packs_are_isolated(tmp_path: Path, backend: str) -> None:
    strict = write_pack(
        tmp_path / "strict",
        [{"id": "any-cash", "condition": "amount >= 1", "action": "hold"}],
        name="strict",
    )
    lenient = write_pack(
        tmp_path / "lenient",
        [{"id": "huge-cash", "condition": "amount >= 1000000", "action": "notice"}],
        name="lenient",
    )
    first = Guard.from_path(strict, backend=backend)
    second = Guard.from_path(lenient, backend=backend)
    event = parse_event(example_event_data())
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda g: g.screen(event), [first, second] * 50))
    for index, decision in enumerate(results):
        if index % 2 == 0:
            assert decision.rule_ids == ("any-cash",) and decision.action is Action.HOLD
            assert decision.pack.name == "strict"
        else:
            assert decision.rule_ids == () and decision.action is Action.PROCEED
            assert decision.pack.name == "lenient"
    # Same pack loaded twice: separate engines, same answers.
    again = Guard.from_path(strict, backend=backend)
    assert again.screen(event).rule_ids == ("any-cash",)


@pytest.mark.parametrize("stage", ["context", "engine"])
def test_an_injected_failure_gives_at_least_review(
    stage: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    guard = Guard.from_path(STARTER)
    guard._live.screening = None  # the interpreted path: resolver, then backend.evaluate()
    event = parse_event(
        dict(example_event_data(), observations={}, notes="", amount={"value": "100"})
    )
    assert guard.screen(event).action is Action.PROCEED

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    target = guard._plan if stage == "context" else guard.backend
    monkeypatch.setattr(target, "resolve" if stage == "context" else "evaluate", explode)
    with caplog.at_level(logging.ERROR, logger="guardrail"):
        decision = guard.screen(event)
    assert decision.action >= Action.REVIEW
    assert decision.failures and decision.failures[0].stage == stage
    assert "disk on fire" in decision.failures[0].message
    assert any("screening failed" in record.message for record in caplog.records)


class _Incomparable:
    """A feature value no rule can compare: the generated screening fails evaluating it."""

    def __eq__(self, other: object) -> bool:
        raise TypeError("cannot compare")

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize("stage", ["context", "engine"])
def test_a_failure_inside_the_generated_screening_is_named_by_its_stage(
    stage: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The reference backend screens through one generated function: a failing lookup fails
    closed naming the context, a value the rules cannot evaluate names the engine."""
    guard = Guard.from_path(STARTER)
    assert guard._live.screening is not None
    data = dict(example_event_data(), observations={}, notes="", amount={"value": "100"})
    event = parse_event(dict(data, kind="transfer", counterparty={"account": "6222000011112222"}))
    assert guard.screen(event).action is Action.PROCEED

    def contains(self: Any, value: str) -> Any:
        if stage == "context":
            raise OSError("watchlist store unreachable")
        return _Incomparable()

    monkeypatch.setattr(Watchlist, "contains", contains)
    with caplog.at_level(logging.ERROR, logger="guardrail"):
        decision = guard.screen(event)
    assert decision.action >= Action.REVIEW
    assert decision.failures and decision.failures[0].stage == stage
    assert any("screening failed" in record.message for record in caplog.records)


def test_a_failure_keeps_a_higher_action_already_found(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = Guard.from_path(STARTER)
    guard._live.screening = None  # the interpreted path: resolver, then backend.evaluate()
    event = parse_event(example_event_data())
    original = guard.backend.evaluate

    def evaluate_then_fail_in_decide(features: Any) -> list[str]:
        hits = original(features)
        decider = guard._live.decider
        monkeypatch.setattr(decider, "decide", _failing_once(decider.decide))
        return hits

    monkeypatch.setattr(guard.backend, "evaluate", evaluate_then_fail_in_decide)
    decision = guard.screen(event)
    assert decision.action is Action.INTERCEPT  # the safe-account hit survives the failure
    assert decision.failures


def test_a_decide_failure_after_the_generated_screening_keeps_its_hits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = Guard.from_path(STARTER)
    assert guard._live.screening is not None
    decider = guard._live.decider
    monkeypatch.setattr(decider, "decide", _failing_once(decider.decide))
    decision = guard.screen(parse_event(example_event_data()))
    assert decision.action is Action.INTERCEPT  # the safe-account hit survives the failure
    assert decision.failures and decision.failures[0].stage == "decide"


def _failing_once(real_decide: Any) -> Any:
    calls = {"n": 0}

    def decide(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("broken template")
        return real_decide(*args, **kwargs)

    return decide


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d.pop("kind"), "kind", "Field required"),
        (lambda d: d.update(kind="cash_withdrawl"), "kind", "Input should be"),
        (lambda d: d.update(amount={"value": 80000.5}), "amount.value", "never a float"),
        (lambda d: d.update(amount={"value": "-5"}), "amount.value", "negative"),
        (lambda d: d.update(amount={"value": "1.001"}), "amount.value", "two decimal"),
        (lambda d: d.update(timestamp="2025-03-01T10:15:00"), "timestamp", "time zone"),
        (lambda d: d.update(colour="red"), "colour", "unknown field"),
        (lambda d: d["observations"].update(on_phone="yes"), "observations.on_phone", "boolean"),
        (lambda d: d.update(notes="诈" * 5000), "notes", "at most 2000"),
        (lambda d: d["customer"].update(birth_date="1950-13-40"), "customer.birth_date", "date"),
        (lambda d: d["branch"].update(region="zhejiang; DROP TABLE"), "branch.region", "pattern"),
    ],
)
def test_malformed_events_get_a_clear_error(mutate: Any, path: str, fragment: str) -> None:
    data = example_event_data()
    mutate(data)
    with pytest.raises(EventError) as caught:
        Guard.from_path(STARTER).screen_json(json.dumps(data))
    paths = [p for p, _ in caught.value.problems]
    assert path in paths, caught.value
    assert fragment.lower() in str(caught.value).lower()


@pytest.mark.parametrize(
    "text", ["", "{", "[]", "null", '{"event_id": 1}', "\x00" * 10, "{" * 5000]
)
def test_garbage_input_is_refused_not_screened(text: str) -> None:
    with pytest.raises(EventError):
        parse_event(text)


def test_oversized_event_is_refused() -> None:
    with pytest.raises(EventError, match="larger than"):
        parse_event("x" * 300_000)


def test_event_json_round_trips_exactly() -> None:
    event = parse_event(example_event_data())
    assert parse_event(event.model_dump_json()) == event
    assert parse_event(event.model_dump_json()).model_dump_json() == event.model_dump_json()


def test_history_counts_only_what_the_caller_says_was_executed() -> None:
    guard = Guard.from_path(STARTER)
    first = parse_event(
        dict(
            example_event_data(),
            event_id="a1",
            amount={"value": "30000"},
            observations={},
            notes="",
        )
    )
    second = parse_event(
        dict(
            example_event_data(),
            event_id="a2",
            amount={"value": "30000"},
            observations={},
            notes="",
            timestamp="2025-03-01T15:00:00+08:00",
        )
    )
    assert "large-cash-report" not in guard.screen(first).rule_ids
    assert "large-cash-report" not in guard.screen(second).rule_ids  # first was never executed
    guard.record_executed(first)
    assert "large-cash-report" in guard.screen(second).rule_ids


def test_decision_explains_every_hit() -> None:
    decision = Guard.from_path(STARTER).screen(parse_event(example_event_data()))
    assert decision.action is Action.INTERCEPT
    assert decision.pack.content_hash and decision.pack.version == "0.1.0"
    by_rule = {hit.rule_id: hit for hit in decision.hits}
    assert {e.feature: e.value for e in by_rule["elderly-large-cash"].evidence} == {
        "customer.age": 75,
        "amount": "80000.00",
    }
    lexicon = by_rule["safe-account-words"].evidence[0]
    assert "安全账户" in lexicon.detail
    window = by_rule["large-cash-report"].evidence[0]
    assert window.feature == "window.cash_out_today" and window.value == "80000.00"
    assert decision.obligations and decision.obligations[0].value == "large_value_report"
