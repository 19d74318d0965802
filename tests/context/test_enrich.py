"""The feature plan: the event's own fields at once, costly features only when a rule reads them."""

from __future__ import annotations

from pathlib import Path

from guardrail.context.enrich import BASE_KEYS, FeaturePlan, base_features
from guardrail.context.history import InMemoryHistoryStore
from guardrail.context.watchlist import load_watchlist
from guardrail.guard import parse_event
from guardrail.lang import load_pack
from guardrail.model.money import Currency
from support import STARTER, example_event_data


def test_base_features_fill_exactly_the_base_fields() -> None:
    event = parse_event(example_event_data())
    assert set(base_features(event)) == BASE_KEYS


def test_costly_features_are_computed_only_when_read() -> None:
    pack = load_pack(STARTER)
    plan = FeaturePlan(pack)
    features = plan.enrich(parse_event(example_event_data()), InMemoryHistoryStore(), {})
    assert "window.cash_out_today" not in dict(features)
    assert features["window.cash_out_today"] == 8_000_000  # fen, this request included
    assert "sum over same_day" in features.details["window.cash_out_today"]
    assert features["any_text~safe_account"] is True
    assert "安全账户" in features.details["any_text~safe_account"]
    assert features["not.a.feature"] is None
    # A watchlist the pack needs but the caller did not load is an error, never "not listed".
    try:
        features.materialise()
    except LookupError as error:
        assert "involved_accounts" in str(error)
    else:
        raise AssertionError("an unloaded watchlist must not read as 'not listed'")
    loaded = {
        "involved_accounts": load_watchlist(
            pack.watchlist_paths["involved_accounts"], "involved_accounts"
        )
    }
    complete = plan.enrich(parse_event(example_event_data()), InMemoryHistoryStore(), loaded)
    assert set(complete.materialise()) >= plan.keys | BASE_KEYS


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
