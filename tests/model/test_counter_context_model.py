"""The event model's counter context: inbound money, account opening, third parties, documents,
family confirmation. All optional, with clear validation errors."""

from __future__ import annotations

from typing import Any

import pytest

from guardrail.guard import EventError, Guard, parse_event
from guardrail.model import Direction, TransactionKind
from support import BASELINE, example_event_data


def _event(**changes: Any) -> dict[str, Any]:
    data = example_event_data()
    data.update(changes)
    return data


def test_inbound_kinds_are_money_in_and_the_counterparty_is_the_sender() -> None:
    event = parse_event(
        _event(
            kind="inbound_remittance",
            counterparty={"account": "6217000000001", "bank": "农业银行", "region": "CN-YN"},
        )
    )
    assert event.direction is Direction.IN
    assert event.counterparty is not None and event.counterparty.region == "CN-YN"
    assert TransactionKind.CARD_ISSUANCE.value == "card_issuance"


def test_old_events_without_the_new_fields_still_validate() -> None:
    event = parse_event(example_event_data())
    assert event.third_parties == () and event.documents == () and event.family is None


def test_opening_facts_only_on_opening_kinds() -> None:
    with pytest.raises(EventError) as raised:
        parse_event(_event(opening={"purpose": "salary"}))
    assert "opening" in str(raised.value) and "account_opening" in str(raised.value)
    ok = parse_event(
        _event(kind="account_opening", amount={"value": "0"}, opening={"purpose": "cannot_say"})
    )
    assert ok.opening is not None and ok.opening.purpose is not None


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("family", {"confirms": True}, "present or reached by phone"),
        ("third_parties", [{"role": "boss"}], "third_parties.0.role"),
        ("documents", [{"kind": "invoice", "verified": "yes"}], "documents.0.verified"),
        ("third_parties", [{"role": "agent"}] * 11, "third_parties"),
        ("opening", {"accounts_at_other_banks": -1}, "opening"),
    ],
)
def test_bad_counter_context_is_named(field: str, value: object, fragment: str) -> None:
    data = _event(**{field: value})
    if field == "opening":
        data["kind"] = "account_opening"
    with pytest.raises(EventError) as raised:
        parse_event(data)
    assert fragment in str(raised.value)


def test_features_of_the_counter_context() -> None:
    guard = Guard.from_path(BASELINE)
    event = parse_event(
        _event(
            third_parties=[
                {"role": "family", "relationship": "family"},
                {"role": "agent", "phone": "13812345678", "answers_for_customer": True},
            ],
            documents=[{"kind": "invoice", "verified": True}],
            family={"present": True, "confirms": True},
        )
    )
    snapshot = guard.watchlists.snapshot()
    features = guard._plan.resolve(event, guard.history, snapshot, complete=True).features
    assert features["third_party.count"] == 2
    assert features["third_party.agent_present"] is True
    assert features["third_party.non_family_present"] is True
    assert features["third_party.answers_for_customer"] is True
    assert features["documents.invoice"] is True and features["documents.contract"] is False
    assert features["documents.any_verified"] is True
    assert features["family.confirmed"] is True


def test_a_listed_agent_is_found_whichever_third_party_he_is() -> None:
    guard = Guard.from_path(BASELINE)
    event = parse_event(
        _event(
            kind="insurance_surrender",
            third_parties=[
                {"role": "family", "phone": "13812345678"},
                {"role": "companion", "phone": "13900000001"},
            ],
        )
    )
    decision = guard.screen(event)
    assert "tp-registered-surrender-agent" in decision.rule_ids
    hit = next(h for h in decision.hits if h.rule_id == "tp-registered-surrender-agent")
    assert any("listed" in e.detail for e in hit.evidence)
