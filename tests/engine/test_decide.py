"""decide(): the highest action wins, obligations are a set, failures floor at review, and a
hit is explained only by the comparisons that decided it, from plain values (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.engine.decide import _show_function, _shown, decide, deciding_refs
from guardrail.lang import load_pack
from guardrail.model import FAIL_CLOSED_FLOOR, Action, Failure, Obligation
from support import write_pack

RULES = [
    {
        "id": "phone-or-earpiece",
        "condition": "amount >= 50000 and (observations.on_phone or observations.earpiece)",
        "action": "hold",
        "obligations": ["family_contact"],
    },
    {
        "id": "big",
        "condition": "amount >= 50000",
        "action": "notice",
        "obligations": ["large_value_report", "family_contact"],
    },
    {"id": "today", "condition": "window.cash_today >= 50000", "action": "review"},
]
WINDOWS = "windows:\n  - {name: cash_today, aggregate: sum, span: same_day}\n"


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("decide")
    return load_pack(write_pack(folder, RULES, extra=WINDOWS))


def features(**values: object) -> dict[str, object]:
    base = {"amount": 8_000_000, "observations.on_phone": False, "observations.earpiece": False}
    base.update(values)
    return base


def test_highest_action_wins_and_obligations_are_a_set_in_ladder_order(pack) -> None:
    hit = features(**{"observations.earpiece": True})
    decision = decide(pack, "e1", ["phone-or-earpiece", "big"], hit, "reference")
    assert decision.action is Action.HOLD
    assert decision.obligations == (Obligation.LARGE_VALUE_REPORT, Obligation.FAMILY_CONTACT)
    assert decision.rule_ids == ("phone-or-earpiece", "big")


def test_no_hit_proceeds_and_a_failure_floors_at_review(pack) -> None:
    assert decide(pack, "e1", [], {}, "reference").action is Action.PROCEED
    failure = Failure(stage="context", error_type="OSError", message="disk")
    failed = decide(pack, "e1", ["big"], features(), "reference", failures=[failure])
    assert failed.action is FAIL_CLOSED_FLOOR is Action.REVIEW
    assert failed.failures == (failure,)


def test_an_or_is_explained_by_the_branch_that_held_only(pack) -> None:
    by_earpiece = decide(
        pack, "e1", ["phone-or-earpiece"], features(**{"observations.earpiece": True}), "r"
    )
    shown = [(e.feature, e.value) for e in by_earpiece.hits[0].evidence]
    assert shown == [("amount", "80000.00"), ("observations.earpiece", True)]
    # Both branches true: the first one, where evaluation stopped, explains the hit.
    both = features(**{"observations.on_phone": True, "observations.earpiece": True})
    rule = pack.rules_by_id["phone-or-earpiece"]
    assert [ref.key for ref in deciding_refs(rule.condition, both)] == [
        "amount",
        "observations.on_phone",
    ]


def test_window_evidence_says_how_the_value_was_computed(pack) -> None:
    decision = decide(pack, "e1", ["today"], {"window.cash_today": 6_000_000}, "reference")
    evidence = decision.hits[0].evidence[0]
    assert (evidence.feature, evidence.value) == ("window.cash_today", "60000.00")
    assert evidence.detail == "sum over same_day = 60000.00"


def test_decide_reads_plain_values_and_never_computes_one(pack) -> None:
    class NoComputing(dict[str, object]):
        def __missing__(self, key: str) -> object:
            raise AssertionError(f"decide read {key!r} through indexing")

    decision = decide(pack, "e1", ["big"], NoComputing(features()), "reference")
    assert decision.hits[0].evidence[0].value == "80000.00"


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(max_size=5),
    st.sampled_from(list(Action)),
    st.sampled_from(list(Obligation)),
)


@settings(max_examples=200, deadline=None)
@given(
    reads=st.lists(
        st.tuples(
            st.sampled_from(["amount", "window.x", "kind", "a'b", 'q"{x}']),
            st.booleans(),
            st.one_of(st.none(), st.sampled_from(["sum over same_day = ", "{x} '\" = "])),
        ),
        max_size=4,
    ),
    values=st.dictionaries(st.sampled_from(["amount", "window.x", "kind", "a'b"]), _VALUES),
    details=st.dictionaries(st.sampled_from(["amount", "window.x", 'q"{x}']), st.text(max_size=4)),
)
def test_generated_evidence_equals_the_interpreted_one(
    reads: list[tuple[str, bool, str | None]],
    values: dict[str, object],
    details: dict[str, str],
) -> None:
    """A hit's evidence from the generated function is ``_shown`` of each read, exactly."""
    shown = _show_function(reads)(values, details)
    expected = tuple(
        _shown(key, values.get(key), money, prefix, details)  # type: ignore[arg-type]
        for key, money, prefix in reads
    )
    assert shown == expected
    assert [type(item[1]) for item in shown] == [type(item[1]) for item in expected]
