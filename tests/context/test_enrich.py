"""The feature resolver: plain values, costly features only for rules that can still fire."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.context.enrich import BASE_KEYS, FeaturePlan, base_features
from guardrail.context.history import InMemoryHistoryStore
from guardrail.context.watchlist import load_watchlist
from guardrail.guard import parse_event
from guardrail.lang import load_pack
from guardrail.model.features import FeatureMap
from guardrail.model.money import Currency
from support import STARTER, example_event_data


def test_base_features_fill_exactly_the_base_fields() -> None:
    event = parse_event(example_event_data())
    assert set(base_features(event)) == BASE_KEYS


def test_costly_features_are_resolved_only_for_rules_that_can_still_fire() -> None:
    pack = load_pack(STARTER)
    plan = FeaturePlan(pack)
    event = parse_event(example_event_data())  # an ¥80,000 cash withdrawal
    loaded = {
        "involved_accounts": load_watchlist(
            pack.watchlist_paths["involved_accounts"], "involved_accounts"
        )
    }
    resolved = plan.resolve(event, InMemoryHistoryStore(), loaded)
    features = resolved.features
    assert type(features).__missing__ is FeatureMap.__missing__  # plain values, no I/O on read
    assert features["window.cash_out_today"] == 8_000_000  # fen, this request included
    assert "window.cash_out_today" not in resolved.details  # decide() explains hits only
    assert features["any_text~safe_account"] is True
    assert "安全账户" in resolved.details["any_text~safe_account"]
    assert features["not.a.feature"] is None
    # A deposit cannot fire the withdrawal rules: their windows are not computed at all.
    deposit = parse_event(dict(example_event_data(), kind="cash_deposit"))
    assert (
        "window.cash_out_today"
        not in plan.resolve(deposit, InMemoryHistoryStore(), loaded).features
    )
    complete = plan.resolve(event, InMemoryHistoryStore(), loaded, complete=True)
    assert set(complete.features) >= plan.keys | BASE_KEYS


def test_an_unloaded_watchlist_is_an_error_never_not_listed() -> None:
    plan = FeaturePlan(load_pack(STARTER))
    with pytest.raises(LookupError, match="involved_accounts"):
        plan.resolve(parse_event(example_event_data()), InMemoryHistoryStore(), {}, complete=True)


def test_money_windows_add_up_one_currency_only(tmp_path: Path) -> None:
    from guardrail.guard import Guard
    from support import write_pack

    extra = "windows:\n  - {name: cash_today, aggregate: sum, span: same_day}\n"
    rule = {"id": "big", "condition": "window.cash_today >= 50000"}
    pack = write_pack(tmp_path, [rule], extra=extra)
    assert load_pack(pack).windows["cash_today"].effective_currency is Currency.CNY
    guard = Guard.from_path(pack)
    data = example_event_data()
    dollars = parse_event(dict(data, event_id="usd", amount={"value": "40000", "currency": "USD"}))
    guard.record_executed(dollars)
    yuan = parse_event(dict(data, event_id="cny", amount={"value": "30000"}))
    assert guard.screen(yuan).rule_ids == ()  # ¥30,000 + $40,000 is not ¥70,000
    guard.record_executed(parse_event(dict(data, event_id="cny0", amount={"value": "25000"})))
    assert guard.screen(yuan).rule_ids == ("big",)
