"""Properties of the engine, written only with ``guardrail.testing`` strategies (the way a bank
would write its own)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.context.windows import static_derived_features
from guardrail.guard import Guard, parse_event
from guardrail.model.decision import Action, Decision
from guardrail.model.event import Customer, Event, Observations, TransactionKind
from guardrail.testing import (
    HOSTILE_FRAGMENTS,
    CounterVisit,
    counter_visits,
    customers,
    events,
    histories,
    typologies,
)

STARTER = Path(__file__).resolve().parents[2] / "rules" / "starter"
GUARD = Guard.from_path(STARTER)  # screening never records, so one guard serves every example
FLAGS = tuple(Observations.model_fields)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(events())
def test_every_generated_event_round_trips_through_json(event: Event) -> None:
    assert parse_event(event.model_dump_json()) == event


@SETTINGS
@given(st.one_of(events(), typologies().flatmap(lambda t: events(typology=t))))
def test_no_valid_event_crashes_the_engine(event: Event) -> None:
    decision = GUARD.screen(event)
    assert isinstance(decision, Decision)
    assert decision.failures == ()
    assert decision.event_id == event.event_id
    assert decision.action == max((hit.action for hit in decision.hits), default=Action.PROCEED)


@SETTINGS
@given(events(), st.sampled_from(FLAGS))
def test_adding_a_risk_sign_never_lowers_the_action(event: Event, flag: str) -> None:
    before = GUARD.screen(event).action
    worse = event.model_copy(
        update={"observations": event.observations.model_copy(update={flag: True})}
    )
    assert GUARD.screen(worse).action >= before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_screening_after_history_never_fails(data: st.DataObject) -> None:
    customer: Customer = data.draw(customers())
    history = data.draw(histories(customer, (0, 8)))
    guard = Guard.from_path(STARTER)
    for past in history:
        guard.record_executed(past)
    at = dt.datetime(2025, 3, 3, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    event = data.draw(events(at=at, customer=customer))
    decision = guard.screen(event)
    assert decision.failures == ()
    if history:  # the same request after the history was recorded screens the same way again
        assert guard.screen(event).action == decision.action


@SETTINGS
@given(counter_visits())
def test_observations_never_lower_the_action_during_a_visit(visit: CounterVisit) -> None:
    keyed, observed = visit.stages[0], visit.stages[1]
    assert len({stage.event_id for stage in visit.stages}) == 1
    assert GUARD.screen(observed).action >= GUARD.screen(keyed).action
    for stage in visit.stages:
        assert GUARD.screen(stage).failures == ()


@SETTINGS
@given(events(age_band=(60, 75), kind="cash_withdrawal", amount_range=(50_000, 200_000)))
def test_strategy_parameters_hold(event: Event) -> None:
    age = static_derived_features(event)["customer.age"]
    assert isinstance(age, int) and 60 <= age <= 75
    assert event.kind is TransactionKind.CASH_WITHDRAWAL
    assert 50_000 <= event.amount.value <= 200_000


def test_hostile_fragments_survive_the_json_round_trip() -> None:
    @settings(max_examples=40, deadline=None)
    @given(events(typology="impersonation_police"))
    def check(event: Event) -> None:
        assert parse_event(event.model_dump_json().encode("utf-8")) == event

    check()
    assert any("\u202e" in fragment for fragment in HOSTILE_FRAGMENTS)
