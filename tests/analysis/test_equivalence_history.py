"""Equivalence of hit lists (``--hits``) and counterexamples that need executed history: the
prior transactions the analyser emits are recorded, then the event is screened on both packs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event as event_note
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.analysis import check_equivalence
from guardrail.analysis.counterexample import build_event, confirm, outcome_of, replay
from guardrail.analysis.queries import Verdict
from guardrail.cli import main
from guardrail.lang.loader import load_pack
from support import BASELINE, write_pack

WINDOWS = """windows:
  - name: cash_out_today
    aggregate: sum
    span: same_day
    kinds: [cash_withdrawal]
  - name: cash_out_count_today
    aggregate: count
    measure: event
    span: same_day
    kinds: [cash_withdrawal]
  - name: transfers_count_today
    aggregate: count
    measure: event
    span: same_day
    kinds: [transfer, remittance]
  - name: payees_today
    aggregate: count_distinct
    measure: counterparty
    span: same_day
    kinds: [transfer, remittance]
  - name: payee_customers_72h
    aggregate: count_distinct
    measure: customer
    key: payee
    span: hours
    length: 72
    kinds: [transfer, remittance]
  - name: inbound_today
    aggregate: sum
    key: account
    span: same_day
    kinds: [inbound_transfer, inbound_remittance]
    include_current: false
"""


def _pack(folder: Path, rules: list[dict[str, Any]]) -> Any:
    return load_pack(write_pack(folder, rules, extra=WINDOWS))


def _write_json(path: Path, value: object) -> str:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _screened_actions(capsys: Any, pack: Path, executed: str, event: str) -> str:
    capsys.readouterr()
    assert main(["screen", "--pack", str(pack), "--executed", executed, "--json", event]) == 0
    return str(json.loads(capsys.readouterr().out)["action"])


def test_hits_are_compared_only_when_asked(tmp_path: Path, capsys: Any) -> None:
    old = _pack(
        tmp_path / "old",
        [
            {"id": "big", "condition": "not (amount < 50000)", "action": "hold"},
            {"id": "huge", "condition": "amount >= 80000", "action": "hold"},
        ],
    )
    same_hits = _pack(
        tmp_path / "same",
        [
            {"id": "huge", "condition": "amount >= 80000", "action": "hold"},
            {"id": "big", "condition": "amount >= 50000", "action": "hold"},
        ],
    )
    fewer = _pack(
        tmp_path / "fewer", [{"id": "big", "condition": "amount >= 50000", "action": "hold"}]
    )
    assert check_equivalence(old, same_hits, hits=True).verdict is Verdict.PROVEN
    # Dropping 'huge' keeps every action and obligation, but not the hit list.
    assert check_equivalence(old, fewer).verdict is Verdict.PROVEN
    result = check_equivalence(old, fewer, hits=True)
    assert result.verdict is Verdict.REFUTED and result.event is not None
    assert result.old is not None and result.new is not None
    assert result.old.hits == ("big", "huge") and result.new.hits == ("big",)
    differs, before, after = confirm(old, fewer, result.event, result.prior, hits=True)
    assert differs and before[:2] == after[:2]  # same action and obligations, other hits
    assert before[2] == ("big", "huge") and after[2] == ("big",)

    args = ["analyze", "--equivalent", str(tmp_path / "old"), str(tmp_path / "fewer")]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--hits", "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == "different" and printed["hits_compared"] is True
    assert printed["screened"]["old"]["hits"] == ["big", "huge"]
    assert printed["screened"]["new"]["hits"] == ["big"]
    assert printed["predicted"]["new"] == {"action": "hold", "obligations": [], "hits": ["big"]}
    assert main(["analyze", str(tmp_path / "old"), "--hits"]) == 2


def test_same_day_sum_counterexample_comes_with_its_history(tmp_path: Path, capsys: Any) -> None:
    rule = {"id": "cash-day", "applies_to": ["cash_withdrawal"], "action": "hold"}
    old = _pack(
        tmp_path / "old",
        [{**rule, "condition": "amount < 10000 and window.cash_out_today >= 50000"}],
    )
    new = _pack(
        tmp_path / "new",
        [{**rule, "condition": "amount < 10000 and window.cash_out_today >= 60000"}],
    )
    args = ["analyze", "--equivalent", str(tmp_path / "old"), str(tmp_path / "new"), "--json"]
    assert main(args) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == "different" and "hits" not in printed["predicted"]["old"]
    event, prior = printed["counterexample"], printed["prior"]
    # The day's total lies in [50,000, 60,000) yuan and the event is under 10,000 yuan: only
    # the recorded history can put the total there.
    result = check_equivalence(old, new)
    assert result.verdict is Verdict.REFUTED and result.model is not None
    total = result.model["window.cash_out_today"]
    assert isinstance(total, int) and 5000000 <= total < 6000000
    assert prior, "the day's total needs earlier withdrawals"
    before, after = replay(old, event, prior), replay(new, event, prior)
    assert (before.action.value, after.action.value) == ("hold", "proceed")
    # Replayed through the CLI: record the prior transactions, then screen the event.
    executed = _write_json(tmp_path / "cx.json", printed)  # the whole answer: its 'prior'
    event_file = _write_json(tmp_path / "event.json", event)
    assert _screened_actions(capsys, tmp_path / "old", executed, event_file) == "hold"
    assert _screened_actions(capsys, tmp_path / "new", executed, event_file) == "proceed"


def test_small_event_needs_history_to_reach_a_window_threshold(tmp_path: Path) -> None:
    rule = {"id": "many", "applies_to": ["cash_withdrawal"], "action": "review"}
    condition = "amount < 1000 and window.cash_out_today >= {} and window.cash_out_count_today >= 3"
    old = _pack(tmp_path / "old", [{**rule, "condition": condition.format(20000)}])
    new = _pack(tmp_path / "new", [{**rule, "condition": condition.format(30000)}])
    result = check_equivalence(old, new)
    assert result.verdict is Verdict.REFUTED and result.event is not None
    withdrawals = [p for p in result.prior if p["kind"] == "cash_withdrawal"]
    assert len(withdrawals) >= 2
    differs, before, after = confirm(old, new, result.event, result.prior)
    assert differs and before[0].value == "review" and after[0].value == "proceed"
    # Without its history the event decides alike on both packs: the history is the point.
    assert not confirm(old, new, result.event)[0]


def test_cross_customer_and_derived_history_counterexamples(tmp_path: Path) -> None:
    old = _pack(
        tmp_path / "old",
        [
            {"id": "payee", "condition": "window.payee_customers_72h >= 3", "action": "hold"},
            {
                "id": "returning",
                "condition": "not counterparty.first_seen and history.same_payee_count_today >= 2",
                "action": "review",
            },
        ],
    )
    new = _pack(
        tmp_path / "new",
        [
            {"id": "payee", "condition": "window.payee_customers_72h >= 4", "action": "hold"},
            {
                "id": "returning",
                "condition": "not counterparty.first_seen and history.same_payee_count_today >= 2",
                "action": "review",
            },
        ],
    )
    result = check_equivalence(old, new)
    assert result.verdict is Verdict.REFUTED and result.event is not None
    customers = {p["customer"]["id"] for p in result.prior}
    assert len(customers - {result.event["customer"]["id"]}) >= 2  # other customers paid too
    assert confirm(old, new, result.event, result.prior)[0]
    # The derived features: a rule change on them is realised by the same customer's history.
    tightened = _pack(
        tmp_path / "tight",
        [
            {"id": "payee", "condition": "window.payee_customers_72h >= 3", "action": "hold"},
            {
                "id": "returning",
                "condition": "not counterparty.first_seen and history.same_payee_count_today >= 3",
                "action": "review",
            },
        ],
    )
    result = check_equivalence(old, tightened, hits=True)
    assert result.verdict is Verdict.REFUTED and result.event is not None
    differs, before, after = confirm(old, tightened, result.event, result.prior, hits=True)
    assert differs and "returning" in before[2] and "returning" not in after[2]


def test_window_values_no_history_gives_are_unrealised_not_a_counterexample(
    tmp_path: Path, capsys: Any
) -> None:
    # More distinct payees today than transfers today: the free encoding allows it, no
    # history does (each payee needs a transfer).
    old = _pack(
        tmp_path / "old",
        [
            {
                "id": "odd",
                "condition": "window.payees_today >= 3 and window.transfers_count_today <= 2",
                "action": "hold",
            }
        ],
    )
    narrower = "window.payees_today >= 3 and window.transfers_count_today <= 2 and "
    new = _pack(
        tmp_path / "new",
        [{"id": "odd", "condition": narrower + "observations.on_phone", "action": "hold"}],
    )
    result = check_equivalence(old, new)
    assert result.verdict is Verdict.UNREALISED and result.event is None
    assert main(["analyze", "--equivalent", str(tmp_path / "old"), str(tmp_path / "new")]) == 3
    assert capsys.readouterr().out.startswith("unrealised:")


def test_bad_executed_file_is_a_one_line_error(tmp_path: Path, capsys: Any) -> None:
    event = build_event({"kind": "transfer", "amount": 100})
    event_file = _write_json(tmp_path / "e.json", event)
    bad = _write_json(tmp_path / "bad.json", [{**event, "amount": {"value": "-1"}}])
    assert main(["screen", "--executed", bad, event_file]) == 2
    err = capsys.readouterr().err
    assert "bad.json: 0.amount" in err and "Traceback" not in err
    assert main(["screen", "--executed", _write_json(tmp_path / "n.json", 5), event_file]) == 2
    assert "expected a list" in capsys.readouterr().err


# -- property: a claimed equivalence survives screening with generated history ---------------

_ATOMS = [
    ("amount", (1, 30000, 50000)),
    ("window.cash_out_today", (10000, 30000, 50000)),
    ("window.cash_out_count_today", (1, 2, 3)),
    ("window.payees_today", (1, 2, 3)),
    ("history.outbound_count_24h", (1, 2, 3)),
    ("history.same_payee_count_today", (1, 2, 3)),
    ("window.payee_customers_72h", (1, 2, 3)),
    ("window.inbound_today", (1000, 10000, 50000)),
    ("history.inbound_24h_pct", (50, 80, 100)),
]
_FLAGS = ["counterparty.first_seen", "not counterparty.first_seen", "observations.on_phone"]
_NEGATED = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}


@st.composite
def _comparison(draw: st.DrawFn) -> tuple[str, str, str]:
    """(condition as written, an equivalent rewriting, a mutated condition)."""
    if draw(st.integers(0, 4)) == 0:
        flag = draw(st.sampled_from(_FLAGS))
        return flag, flag, draw(st.sampled_from([f for f in _FLAGS if f != flag]))
    key, constants = draw(st.sampled_from(_ATOMS))
    op = draw(st.sampled_from([">=", ">", "<", "<="]))
    value = draw(st.sampled_from(constants))
    other = draw(st.sampled_from([c for c in constants if c != value]))
    return (
        f"{key} {op} {value}",
        f"not ({key} {_NEGATED[op]} {value})",
        f"{key} {op} {other}",
    )


@st.composite
def _rule_pair(draw: st.DrawFn) -> tuple[str, str]:
    parts = draw(st.lists(_comparison(), min_size=1, max_size=3))
    joiner = draw(st.sampled_from([" and ", " or "]))
    old = joiner.join(p[0] for p in parts)
    mutate = draw(st.integers(0, 2)) > 0  # two in three pairs differ in their first part
    new = joiner.join((p[2] if mutate and i == 0 else p[1]) for i, p in enumerate(parts))
    return old, new


_HISTORY_KINDS = ["cash_withdrawal", "transfer", "inbound_transfer", "cash_deposit"]


@st.composite
def _screening(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An event at 15:00 and up to five executed transactions earlier that day or the day
    before, by this customer or others, to this payee or others."""
    event = build_event(
        {
            "kind": draw(st.sampled_from(["cash_withdrawal", "transfer"])),
            "amount": draw(st.sampled_from([0, 100000, 2999999, 3000000, 6000000])),
            "event.local_hour": 15,
            "observations.on_phone": draw(st.booleans()),
        },
        has_payee=True,
    )
    at = dt.datetime.fromisoformat(event["timestamp"])
    prior = []
    for index in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(_HISTORY_KINDS))
        minutes = draw(st.integers(1, 30 * 60))
        record = {
            **build_event({"kind": kind, "amount": draw(st.sampled_from([0, 1000000, 2500000]))}),
            "event_id": f"prior-{index}",
            "timestamp": (at - dt.timedelta(minutes=minutes)).isoformat(),
        }
        payee = draw(st.sampled_from([None, "6222000000000002", "6222000000000777"]))
        if payee is not None:
            record["counterparty"] = {"account": payee}
        if draw(st.integers(0, 3)) == 0:  # another customer (for windows across customers)
            record["customer"] = {"id": f"C-OTHER-{index}"}
            record["account"] = {"id": f"62220000000088{index:02d}", "opened_on": "2020-01-01"}
        prior.append(record)
    return event, prior


@settings(max_examples=30, deadline=None)
@given(
    pair=_rule_pair(),
    action=st.sampled_from(["review", "hold"]),
    hits=st.booleans(),
    screenings=st.lists(_screening(), min_size=1, max_size=4),
)
def test_claimed_equivalence_survives_screening_with_history(
    tmp_path_factory: Any,
    pair: tuple[str, str],
    action: str,
    hits: bool,
    screenings: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    base = tmp_path_factory.mktemp("pair")
    old_condition, new_condition = pair
    keep = {"id": "keep", "condition": "amount >= 50000", "action": "hold"}
    old = _pack(base / "old", [keep, {"id": "r", "condition": old_condition, "action": action}])
    new = _pack(base / "new", [{"id": "r", "condition": new_condition, "action": action}, keep])
    result = check_equivalence(old, new, hits=hits)
    event_note(f"verdict {result.verdict.value}, prior {len(result.prior)}")
    if result.verdict is Verdict.PROVEN:
        for event, prior in screenings:
            differs, before, after = confirm(old, new, event, prior, hits=hits)
            assert not differs, (old_condition, new_condition, event, prior, before, after)
    elif result.verdict is Verdict.REFUTED:
        # Every construct here is realisable: the counterexample must really differ.
        assert result.event is not None
        differs, before, after = confirm(old, new, result.event, result.prior, hits=hits)
        assert differs, (old_condition, new_condition, result.event, result.prior)
        assert result.old is not None and result.new is not None
        for predicted, screened in ((result.old, before), (result.new, after)):
            assert predicted.action is screened[0]
            assert set(predicted.obligations) == set(screened[1])
            assert not hits or predicted.hits == screened[2]
    else:
        assert result.verdict is Verdict.UNREALISED, result.explanation


def test_outcome_of_lists_hit_ids_sorted(tmp_path: Path) -> None:
    pack = _pack(
        tmp_path / "p",
        [
            {"id": "z", "condition": "amount >= 1", "action": "notice"},
            {"id": "a", "condition": "amount >= 1", "action": "notice"},
        ],
    )
    decision = replay(pack, build_event({"kind": "transfer", "amount": 500}))
    assert outcome_of(decision)[2] == ("a", "z")


@pytest.mark.slow
def test_baseline_redundant_rule_changes_hits_not_decisions(tmp_path: Path) -> None:
    """The baseline's one redundant rule: dropping it keeps every decision (proven), but not
    the hit list, on an event whose history (same-day inbound credits) the analyser supplies."""
    redundant = "inb-inbound-today-then-cash-young-account"
    copy = tmp_path / "baseline"
    shutil.copytree(BASELINE, copy)
    inbound = copy / "inbound.yaml"
    text = inbound.read_text(encoding="utf-8")
    start = text.index(f"  - id: {redundant}")
    end = text.find("\n  - id:", start + 1)
    inbound.write_text(text[:start] + ("" if end < 0 else text[end + 1 :]), encoding="utf-8")
    old, new = load_pack(BASELINE), load_pack(copy)
    assert redundant not in {r.rule_id for r in new.rules}
    assert check_equivalence(old, new, timeout_s=300).verdict is Verdict.PROVEN
    result = check_equivalence(old, new, timeout_s=300, hits=True)
    assert result.verdict is Verdict.REFUTED and result.event is not None
    assert any(p["kind"].startswith("inbound_") for p in result.prior)
    differs, before, after = confirm(old, new, result.event, result.prior, hits=True)
    assert differs and before[:2] == after[:2]
    assert redundant in before[2] and redundant not in after[2]
