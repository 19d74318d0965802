"""Invariants over generated input: bad input always gets a clear error; counting history
never lowers a decision."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.guard import EventError, Guard, parse_event
from guardrail.testing import customers, events, histories
from support import example_event_data, write_pack

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*prefix, key)))
    return found


_EXAMPLE = example_event_data()
_PATHS = _paths(_EXAMPLE)


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(_PATHS), value=json_values, extra=st.booleans())
def test_any_mutated_event_is_either_valid_or_a_clear_event_error(
    path: tuple[str, ...], value: Any, extra: bool
) -> None:
    data = json.loads(json.dumps(_EXAMPLE))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1] + ("_unknown" if extra else "")] = value
    try:
        parse_event(json.dumps(data))
    except EventError as error:
        assert error.problems, "an EventError names at least one problem"
        for where, message in error.problems:
            assert where and message
        if extra:
            assert any(where.endswith("_unknown") for where, _ in error.problems)


# A pack whose history rules only count upward: more executed history can only make them fire.
_UPWARD = [
    {"id": "cash-today", "condition": "window.cash_today >= 50000", "action": "notice"},
    {"id": "busy-day", "condition": "window.events_today >= 3", "action": "review"},
    {"id": "many-payees", "condition": "window.payees_7d >= 3", "action": "hold"},
    {"id": "big-single", "condition": "window.max_7d >= 200000", "action": "inquire"},
    {
        "id": "inbound",
        "condition": "history.inbound_24h >= 10000 and amount >= 5000",
        "action": "review",
    },
]
_WINDOWS = """
windows:
  - {name: cash_today, aggregate: sum, span: same_day, kinds: [cash_withdrawal]}
  - {name: events_today, aggregate: count, measure: event, span: same_day}
  - {name: payees_7d, aggregate: count_distinct, measure: counterparty, span: days, length: 7}
  - {name: max_7d, aggregate: max, span: days, length: 7}
"""
_END = dt.datetime(2025, 3, 3, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_adding_history_never_lowers_a_decision(tmp_path: Path, data: st.DataObject) -> None:
    pack = tmp_path / "upward"
    if not pack.exists():
        write_pack(pack, _UPWARD, extra=_WINDOWS)
    customer = data.draw(customers())
    past = data.draw(histories(customer, (0, 12), end=_END - dt.timedelta(hours=1)))
    event = data.draw(events(customer=customer, at=_END))
    without = Guard.from_path(pack).screen(event)
    with_history = Guard.from_path(pack)
    for record in past:
        with_history.record_executed(record)
    after = with_history.screen(event)
    assert after.action >= without.action
    assert set(after.rule_ids) >= set(without.rule_ids)
