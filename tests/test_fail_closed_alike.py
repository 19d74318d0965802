"""Failures inside screening fail closed on both backends alike (#9 defects 8 and 12)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from guardrail.context import HistoryRecord, InMemoryHistoryStore
from guardrail.context.deadline import DeadlineHistoryStore, HistoryTimeout
from guardrail.context.enrich import HISTORY_DERIVED
from guardrail.errors import EventError, StoreError
from guardrail.guard import Guard, parse_event
from guardrail.lang.pack import Pack, load_pack
from guardrail.model import Action
from guardrail.model.event import Branch, Event
from guardrail.testing import events
from support import BASELINE, STARTER, example_event_data

PACKS = {"baseline": load_pack(BASELINE), "starter": load_pack(STARTER)}
BACKENDS = ("reference", "durable_rules")


class BrokenStore:
    """A persistent store whose reads fail (a corrupt file, a lost connection)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error if error is not None else StoreError("history.db: disk I/O error")
        self.reads = 0

    def _fail(self) -> Any:
        self.reads += 1
        raise self.error

    def record(self, rec: HistoryRecord) -> None:
        pass

    def for_customer(self, customer_id: str, since: dt.datetime | None) -> Sequence[HistoryRecord]:
        return self._fail()  # type: ignore[no-any-return]

    def for_account(self, account_id: str, since: dt.datetime | None) -> Sequence[HistoryRecord]:
        return self._fail()  # type: ignore[no-any-return]

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[dt.datetime, str]]:
        return self._fail()  # type: ignore[no-any-return]

    def evict_before(self, cutoff: dt.datetime) -> int:
        return 0

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return 0


# Defect 8, first half: an unknown branch time zone is refused when the event is parsed.
@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "UTC+8"])
def test_unknown_time_zone_is_refused_at_parse_time(zone: str) -> None:
    data = example_event_data()
    data["branch"]["timezone"] = zone
    with pytest.raises(EventError) as caught:
        parse_event(data)
    ((field, message),) = caught.value.problems
    assert field == "branch.timezone" and "unknown time zone" in message
    with pytest.raises(ValidationError):
        Branch(id="B1", region="CN-SH", timezone=zone)


def _guards(pack: Pack, **options: Any) -> list[Guard]:
    return [Guard(pack, backend=backend, **options) for backend in BACKENDS]


# Defect 8, second half: a feature that fails fails closed on both backends alike. The resolver
# computes every feature a rule can still use before either engine runs, so both engines see the
# same failure (or none, when no rule that can fire reads history).
@pytest.mark.parametrize("pack_name", sorted(PACKS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_a_failing_history_store_fails_closed_on_both_backends(
    pack_name: str, event: Event
) -> None:
    pack = PACKS[pack_name]
    if not any(key for key in _history_keys(pack)):
        pytest.skip("the pack reads no history")
    store = BrokenStore()
    decisions = [guard.screen(event) for guard in _guards(pack, history=store)]
    for decision in decisions:
        if decision.failures:
            assert decision.action >= Action.REVIEW, decision
            assert [f.error_type for f in decision.failures] == ["StoreError"]
            assert "disk I/O error" in decision.failures[0].message
    assert decisions[0].action == decisions[1].action
    assert [f.error_type for f in decisions[0].failures] == [
        f.error_type for f in decisions[1].failures
    ]
    assert sorted(decisions[0].rule_ids) == sorted(decisions[1].rule_ids)


def _history_keys(pack: Pack) -> frozenset[str]:
    return frozenset(
        key for key in Guard(pack)._plan.keys if key.startswith("window.") or key in HISTORY_DERIVED
    )


@pytest.mark.parametrize("kind", ["limit_change", "account_opening"])
def test_the_reproducer_no_rule_of_the_kind_reads_history(kind: str) -> None:
    """The reference backend used to proceed here (no rule for the kind reads history), while
    durable-rules, which read every feature of the pack, reviewed. Now both engines evaluate
    the features the resolver computed up front: no rule that can fire reads history, so no
    read fails, and both proceed alike."""
    data = example_event_data()
    data.update(kind=kind, amount={"value": "0.00", "currency": "CNY"})
    data["observations"] = {}
    event = parse_event(data)
    healthy = [g.screen(event).action for g in _guards(PACKS["baseline"])]
    assert healthy[0] == healthy[1]
    store = BrokenStore()
    failing = [g.screen(event) for g in _guards(PACKS["baseline"], history=store)]
    assert [d.action for d in failing] == healthy
    assert [d.failures for d in failing] == [(), ()]
    assert store.reads == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_no_feature_fails_on_a_valid_event_with_the_in_memory_store(event: Event) -> None:
    """On a valid event, only a history read can fail: with the in-memory store, every
    feature of the pack resolves."""
    for pack in PACKS.values():
        guard = Guard(pack)
        guard._plan.resolve(event, guard.history, guard.watchlists.snapshot(), complete=True)


# Defect 12: a history read that hangs must fail closed within the budget.
class HangingStore(BrokenStore):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def _fail(self) -> Any:
        self.reads += 1
        self.release.wait(60)
        return []


@pytest.fixture
def hanging() -> Iterator[HangingStore]:
    store = HangingStore()
    yield store
    store.release.set()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hanging_store_fails_closed_within_the_budget(
    hanging: HangingStore, backend: str
) -> None:
    guard = Guard(PACKS["baseline"], backend=backend, history=hanging, history_budget_s=0.2)
    assert isinstance(guard.history, DeadlineHistoryStore)
    decision = guard.screen(parse_event(example_event_data()))
    assert decision.action >= Action.REVIEW
    (failure,) = decision.failures
    assert failure.error_type == HistoryTimeout.__name__
    assert "did not answer" in failure.message and "200 ms" in failure.message
    assert failure.stage == "context"
    assert hanging.reads >= 1


def test_the_in_memory_store_is_used_directly() -> None:
    guard = Guard(PACKS["baseline"])
    assert type(guard.history) is InMemoryHistoryStore
    given_store = InMemoryHistoryStore()
    assert Guard(PACKS["starter"], history=given_store).history is given_store


def test_keyboard_interrupt_during_screening_is_logged_then_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = Guard(PACKS["baseline"], history=BrokenStore(KeyboardInterrupt()))
    event = parse_event(example_event_data())
    with caplog.at_level(logging.WARNING, logger="guardrail"), pytest.raises(KeyboardInterrupt):
        guard.screen(event)
    (record,) = [r for r in caplog.records if "interrupted" in r.getMessage()]
    assert event.event_id in record.getMessage()
    assert "context" in record.getMessage() and "KeyboardInterrupt" in record.getMessage()
