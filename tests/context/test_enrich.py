"""The feature plan: the event's own fields at once, costly features only when a rule reads them."""

from __future__ import annotations

from guardrail.context.enrich import BASE_KEYS, FeaturePlan, base_features
from guardrail.context.history import InMemoryHistoryStore
from guardrail.context.watchlist import load_watchlist
from guardrail.guard import parse_event
from guardrail.lang import load_pack
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
