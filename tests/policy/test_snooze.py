"""Issue 13: snoozes per rule and entity, with expiry, reason and approver; never for
watchlist or reporting rules; visible in the decision."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.guard import Guard, parse_event
from guardrail.lang import load_pack
from guardrail.model import Action
from guardrail.model.decision import AdjustmentKind
from guardrail.policy import MemorySnoozeStore, PostDecisionPolicies, SnoozeRefused, new_snooze
from guardrail.policy.snooze import refusal
from guardrail.policy.sqlite_stores import SQLiteSnoozeStore
from guardrail.testing import events
from support import STARTER, example_event_data

NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _elderly_event(**changes: Any) -> Any:
    data = example_event_data()
    data.update(changes)
    return parse_event(data)


@pytest.fixture(scope="module")
def pack() -> Any:
    return load_pack(STARTER)


def _snoozed_guard(pack: Any, store: Any) -> Guard:
    return Guard(pack, policies=PostDecisionPolicies(snoozes=store))


def test_a_snooze_quietens_one_rule_for_one_customer_until_it_expires(pack: Any) -> None:
    event = _elderly_event()
    plain = Guard(pack).screen(event)
    assert "elderly-large-cash" in plain.rule_ids
    store = MemorySnoozeStore()
    guard = _snoozed_guard(pack, store)
    until = event.timestamp + dt.timedelta(days=30)
    snoozable = [h.rule_id for h in plain.hits if refusal(pack.rule(h.rule_id)) is None]
    kept = [h.action for h in plain.hits if h.rule_id not in snoozable]
    for rule_id in snoozable:
        store.add(
            new_snooze(
                pack,
                rule_id,
                "customer",
                event.customer.id,
                until=until,
                reason="cleared by branch compliance, ticket 42",
                approver="officer-7",
                now=event.timestamp - dt.timedelta(days=1),
            )
        )
    decision = guard.screen(event)
    assert decision.action == max(kept, default=Action.PROCEED) < plain.action
    assert set(decision.rule_ids) == set(plain.rule_ids)  # hits and evidence stay visible
    assert decision.obligations == plain.obligations  # duties are never snoozed
    messages = [a.message for a in decision.adjustments if a.kind is AdjustmentKind.SNOOZE]
    assert any(
        m.startswith(f"rule elderly-large-cash snoozed for this customer until {until.isoformat()}")
        for m in messages
    )
    assert all(a.approver == "officer-7" for a in decision.adjustments)
    # another customer is not affected
    other = _elderly_event(customer={**example_event_data()["customer"], "id": "C-OTHER"})
    assert guard.screen(other).action == plain.action
    # after expiry (by the event's time) the rule counts again
    later = _elderly_event(timestamp=(until + dt.timedelta(minutes=1)).isoformat())
    assert guard.screen(later).action == Guard(pack).screen(later).action


@pytest.mark.parametrize(
    ("rule_id", "why"),
    [
        ("payee-involved-account", "reads a watchlist"),
        ("large-cash-report", "reporting obligation"),
    ],
)
def test_watchlist_and_reporting_rules_cannot_be_snoozed(pack: Any, rule_id: str, why: str) -> None:
    with pytest.raises(SnoozeRefused, match=why):
        new_snooze(
            pack,
            rule_id,
            "customer",
            "C1",
            until=NOW + dt.timedelta(days=1),
            reason="r",
            approver="a",
            now=NOW,
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": " "}, "needs a reason"),
        ({"approver": ""}, "approver"),
        ({"until": NOW - dt.timedelta(seconds=1)}, "not in the future"),
        ({"until": NOW + dt.timedelta(days=400)}, "at most 366 days"),
        ({"rule_id": "no-such-rule"}, "has no rule 'no-such-rule'"),
        ({"entity": "teller"}, "entity must be one of customer, account, payee"),
    ],
)
def test_bad_snoozes_are_refused_with_the_reason(
    pack: Any, changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "rule_id": "elderly-large-cash",
        "entity": "customer",
        "value": "C1",
        "until": NOW + dt.timedelta(days=1),
        "reason": "cleared",
        "approver": "officer-7",
    }
    arguments.update(changes)
    with pytest.raises(SnoozeRefused, match=message):
        new_snooze(
            pack,
            arguments["rule_id"],
            arguments["entity"],
            arguments["value"],
            until=arguments["until"],
            reason=arguments["reason"],
            approver=arguments["approver"],
            now=NOW,
        )


def test_sqlite_snoozes_are_shared_between_store_instances(pack: Any, tmp_path: Path) -> None:
    path = tmp_path / "policy.sqlite"
    writer, reader = SQLiteSnoozeStore(path), SQLiteSnoozeStore(path)
    event = _elderly_event()
    snooze = new_snooze(
        pack,
        "elderly-large-cash",
        "account",
        event.account.id if event.account else "",
        until=event.timestamp + dt.timedelta(days=2),
        reason="cleared",
        approver="o1",
        now=event.timestamp,
    )
    writer.add(snooze)
    decision = _snoozed_guard(pack, reader).screen(event)
    assert any(a.rule_id == "elderly-large-cash" for a in decision.adjustments)
    assert reader.all()[0].entity_hint.endswith(snooze.entity_hint[-4:])
    assert event.account is not None and event.account.id not in str(reader.all())
    assert writer.remove(snooze.rule_id, snooze.entity, snooze.entity_hash)
    assert not reader.active({"elderly-large-cash"}, {snooze.entity_hash}, event.timestamp)
    writer.close()
    reader.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events(), rules=st.sets(st.sampled_from(["payee-involved-account", "x"])))
def test_a_snooze_never_lowers_a_watchlist_hit(pack: Any, event: Any, rules: set[str]) -> None:
    store = MemorySnoozeStore()
    guard = _snoozed_guard(pack, store)
    # Even a snooze written straight into the store (bypassing new_snooze's refusal) for every
    # rule of the pack and every entity of the event is ignored for watchlist rules.
    from guardrail.policy.snooze import Snooze, event_entities

    for rule in pack.rules:
        for kind, digest in event_entities(event).items():
            store.add(
                Snooze(
                    rule.rule_id,
                    kind,
                    digest,
                    "…",
                    event.timestamp + dt.timedelta(days=1),
                    "forced",
                    "tester",
                    event.timestamp,
                )
            )
    decision = guard.screen(event)
    for hit in decision.hits:
        if pack.rule(hit.rule_id).watchlists:
            assert decision.action >= hit.action


class _BrokenStore(MemorySnoozeStore):
    def active(self, *args: Any) -> Any:
        raise OSError("disk gone")


def test_a_failing_policy_store_fails_closed(pack: Any) -> None:
    event = _elderly_event(notes="", observations={})
    decision = _snoozed_guard(pack, _BrokenStore()).screen(event)
    assert decision.action >= Action.REVIEW
    assert [f.stage for f in decision.failures] == ["policy"]
    assert "disk gone" in decision.failures[0].message


def test_the_audit_record_keeps_snoozes_and_list_versions(pack: Any, tmp_path: Path) -> None:
    from guardrail.audit.keys import AuditKeys
    from guardrail.audit.log import AuditLog
    from guardrail.audit.records import DecisionRecord

    event = _elderly_event()
    store = MemorySnoozeStore()
    store.add(
        new_snooze(
            pack,
            "elderly-large-cash",
            "customer",
            event.customer.id,
            until=event.timestamp + dt.timedelta(days=3),
            reason="cleared",
            approver="o-1",
            now=event.timestamp,
        )
    )
    decision = _snoozed_guard(pack, store).screen(event)
    with AuditLog.open(tmp_path / "a.sqlite", keys=AuditKeys.from_secret(b"k" * 32)) as log:
        log.log_decision(event, decision)
        (record,) = [r.payload for r in log.records()]
    assert isinstance(record, DecisionRecord)
    assert record.watchlists == decision.watchlists and record.watchlists
    assert [(a.rule_id, a.approver) for a in record.adjustments] == [("elderly-large-cash", "o-1")]
