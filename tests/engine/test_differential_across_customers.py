"""Both backends agree on windows keyed by branch and by payee, on scores and on clearing:
hypothesis generates a stream of customers at a few branches paying a few payees."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.guard import Guard, parse_event
from support import BASELINE, write_pack

_WINDOWS = """
windows:
  - {name: branch_customers, aggregate: count_distinct, measure: customer, key: branch,
     span: hours, length: 1, same_purpose: true, min_customer_age: 60}
  - {name: payee_customers, aggregate: count_distinct, measure: customer, key: payee,
     span: hours, length: 72}
  - {name: payee_total, aggregate: sum, key: payee, span: same_day}
  - {name: branch_count, aggregate: count, measure: event, key: branch, span: hours, length: 2}
"""
_RULES = [
    {"id": "grp", "condition": "window.branch_customers >= 2 and amount >= 1000", "score": 2},
    {"id": "col", "condition": "window.payee_customers >= 3", "action": "hold", "score": 1},
    {
        "id": "tot",
        "condition": "window.payee_total >= 20000",
        "action": "inquire",
        "score": 1,
        "clears": "family.confirmed or documents.contract",
    },
    {"id": "busy", "condition": "window.branch_count > 4", "action": "proceed", "score": 1},
    {
        "id": "old",
        "condition": "customer.is_elderly",
        "action": "proceed",
        "score": 2,
        "clears": "family.confirmed and documents.any_verified",
    },
]
_BANDS = (
    "  score_bands:\n    - {min_score: 3, action: review}\n"
    "    - {min_score: 5, action: intercept}\n"
)
_counter = itertools.count()
T0 = dt.datetime(2025, 4, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))

visits = st.lists(
    st.tuples(
        st.integers(0, 5),  # customer
        st.integers(0, 1),  # branch
        st.integers(0, 2),  # payee
        st.sampled_from([500, 5000, 12000]),  # amount
        st.integers(0, 40),  # minutes after the previous visit
        st.sampled_from(["investment", "medical"]),
        st.sampled_from([None, "family", "contract", "both"]),
    ),
    min_size=3,
    max_size=14,
)


def _event(n: int, minute: int, visit: tuple[Any, ...]) -> Any:
    customer, branch, payee, amount, _, purpose, reassurance = visit
    data: dict[str, Any] = {
        "event_id": f"v{n}",
        "kind": "transfer",
        "amount": {"value": str(amount)},
        "timestamp": (T0 + dt.timedelta(minutes=minute)).isoformat(),
        "branch": {"id": f"B{branch}", "region": "CN-SH"},
        "teller_id": "T1",
        "customer": {
            "id": f"C{customer}",
            "birth_date": "1950-01-01" if customer < 3 else "1990-01-01",
        },
        "counterparty": {"account": f"62140000{payee:04d}", "same_name": False},
        "purpose": {"code": purpose},
    }
    if reassurance in ("family", "both"):
        data["family"] = {"present": True, "confirms": True}
    if reassurance in ("contract", "both"):
        data["documents"] = [{"kind": "contract", "verified": True}]
    return parse_event(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=visits)
def test_backends_agree_across_customers(tmp_path_factory: Any, stream: list[Any]) -> None:
    folder: Path = tmp_path_factory.mktemp(f"across{next(_counter)}")
    write_pack(folder, _RULES, extra=_WINDOWS)
    meta = folder / "pack.yaml"
    meta.write_text(meta.read_text(encoding="utf-8") + _BANDS, encoding="utf-8")
    reference = Guard.from_path(folder)
    durable = Guard.from_path(folder, backend="durable_rules")
    minute = 0
    for n, visit in enumerate(stream):
        minute += visit[4]
        event = _event(n, minute, visit)
        by_reference, by_durable = reference.screen(event), durable.screen(event)
        assert not by_reference.failures and not by_durable.failures
        assert by_reference.model_dump(exclude={"backend", "elapsed_us"}) == by_durable.model_dump(
            exclude={"backend", "elapsed_us"}
        )
        reference.record_executed(event)
        durable.record_executed(event)


_BASE_REFERENCE = Guard.from_path(BASELINE)
_BASE_DURABLE = Guard.from_path(BASELINE, backend="durable_rules")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=visits)
def test_backends_agree_on_the_baseline_across_customers(stream: list[Any]) -> None:
    # fresh histories per example: the guards' stores are replaced by empty ones
    from guardrail.context.history import InMemoryHistoryStore

    _BASE_REFERENCE.history = InMemoryHistoryStore()
    _BASE_DURABLE.history = InMemoryHistoryStore()
    minute = 0
    for n, visit in enumerate(stream):
        minute += visit[4]
        event = _event(n, minute, visit)
        by_reference, by_durable = _BASE_REFERENCE.screen(event), _BASE_DURABLE.screen(event)
        assert by_reference.model_dump(exclude={"backend", "elapsed_us"}) == by_durable.model_dump(
            exclude={"backend", "elapsed_us"}
        )
        _BASE_REFERENCE.record_executed(event)
        _BASE_DURABLE.record_executed(event)
