"""guardrail analyze: dead, redundant and equivalent rules proven with z3, and counterexamples
that really decide differently when screened."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.analysis import analyze_pack, check_equivalence
from guardrail.analysis.counterexample import build_event, confirm
from guardrail.analysis.queries import Verdict
from guardrail.cli import main
from guardrail.guard import Guard, parse_event
from guardrail.lang.loader import load_pack
from guardrail.model.money import MAX_AMOUNT
from support import BASELINE, write_pack


def _pack(folder: Path, rules: list[dict[str, Any]]) -> Any:
    return load_pack(write_pack(folder, rules) or folder)


def test_planted_dead_rule_is_reported_and_exits_1(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "p"
    _pack(
        folder,
        [
            {"id": "live", "condition": "amount >= 50000"},
            {"id": "dead", "condition": "amount >= 50000 and amount < 20000"},
            {"id": "dead-kind", "applies_to": ["cash_deposit"], "condition": 'kind == "transfer"'},
        ],
    )
    analysis = analyze_pack(load_pack(folder))
    assert sorted(f.rule for f in analysis.dead) == ["dead", "dead-kind"]
    assert main(["analyze", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {f["rule"] for f in report["findings"] if f["kind"] == "dead"} == {"dead", "dead-kind"}


def test_planted_redundant_rule(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _pack(
        folder,
        [
            {
                "id": "broad",
                "condition": "amount >= 50000",
                "action": "hold",
                "obligations": ["family_contact"],
            },
            {
                "id": "narrow",
                "condition": "amount >= 80000 and observations.on_phone",
                "action": "review",
                "obligations": ["family_contact"],
            },
            {"id": "stronger", "condition": "amount >= 90000", "action": "intercept"},
        ],
    )
    analysis = analyze_pack(load_pack(folder))
    redundant = {(f.rule, f.other) for f in analysis.findings if f.kind == "redundant"}
    assert redundant == {("narrow", "broad")}  # 'stronger' has a higher action: never redundant
    assert not analysis.dead
    assert main(["analyze", str(folder)]) == 0


def test_negation_and_split_refactorings_are_proven_equivalent(tmp_path: Path) -> None:
    old = _pack(
        tmp_path / "old",
        [
            {"id": "a", "condition": "not (amount < 50000)", "action": "hold"},
            {
                "id": "b",
                "condition": "observations.on_phone or customer.age >= 70",
                "action": "review",
                "obligations": ["family_contact"],
            },
        ],
    )
    new = _pack(
        tmp_path / "new",
        [
            {"id": "a", "condition": "amount >= 50000", "action": "hold"},
            {
                "id": "b1",
                "condition": "observations.on_phone",
                "action": "review",
                "obligations": ["family_contact"],
            },
            {
                "id": "b2",
                "condition": "customer.age >= 70",
                "action": "review",
                "obligations": ["family_contact"],
            },
        ],
    )
    assert check_equivalence(old, new).verdict is Verdict.PROVEN
    assert main(["analyze", "--equivalent", str(tmp_path / "old"), str(tmp_path / "new")]) == 0


def test_threshold_change_gives_a_counterexample_that_really_differs(
    tmp_path: Path, capsys: Any
) -> None:
    rule = {"id": "big", "applies_to": ["transfer"], "action": "hold"}
    old = _pack(tmp_path / "old", [{**rule, "condition": "amount >= 50000"}])
    new = _pack(tmp_path / "new", [{**rule, "condition": "amount >= 60000"}])
    result = check_equivalence(old, new)
    assert result.verdict is Verdict.REFUTED and result.model is not None
    code = main(["analyze", "--equivalent", str(tmp_path / "old"), str(tmp_path / "new"), "--json"])
    assert code == 1
    printed = json.loads(capsys.readouterr().out)
    event = parse_event(printed["counterexample"])  # a valid event
    assert 50000 <= event.amount.value < 60000 and event.kind.value == "transfer"
    assert Guard(old).screen(event).action.value == "hold"
    assert Guard(new).screen(event).action.value == "proceed"


@settings(max_examples=25, deadline=None)
@given(
    old_threshold=st.integers(1, 6).map(lambda n: n * 10000),
    new_threshold=st.integers(1, 6).map(lambda n: n * 10000),
    old_op=st.sampled_from([">=", ">"]),
    new_op=st.sampled_from([">=", ">"]),
    amounts=st.lists(st.integers(0, 7_000_000), min_size=1, max_size=15),
)
def test_claimed_equivalence_is_never_contradicted_by_screening(
    tmp_path_factory: Any,
    old_threshold: int,
    new_threshold: int,
    old_op: str,
    new_op: str,
    amounts: list[int],
) -> None:
    base = tmp_path_factory.mktemp("pair")
    rule = {"id": "r", "applies_to": ["cash_withdrawal"], "action": "review"}
    old = _pack(base / "old", [{**rule, "condition": f"amount {old_op} {old_threshold}"}])
    new = _pack(
        base / "new",
        [{**rule, "condition": f"not (amount {'<' if new_op == '>=' else '<='} {new_threshold})"}],
    )
    result = check_equivalence(old, new)
    if result.verdict is Verdict.PROVEN:
        for fen in [*amounts, old_threshold * 100, new_threshold * 100]:
            event = build_event({"kind": "cash_withdrawal", "amount": fen})
            differs, _, _ = confirm(old, new, event)
            assert not differs, (old_threshold, old_op, new_threshold, new_op, fen)
    else:
        assert result.verdict is Verdict.REFUTED
        assert (old_threshold, old_op) != (new_threshold, new_op)


def test_baseline_analysis_finds_no_dead_rules() -> None:
    analysis = analyze_pack(load_pack(BASELINE))
    assert analysis.rules > 50 and analysis.queries > analysis.rules
    assert analysis.dead == []


def test_bad_pack_path_is_a_one_line_error(tmp_path: Path, capsys: Any) -> None:
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def _scored_pack(folder: Path, rules: list[dict[str, Any]]) -> Any:
    write_pack(folder, rules)
    (folder / "pack.yaml").write_text(
        'pack:\n  name: scored\n  version: "1"\n  score_bands:\n'
        "    - {min_score: 3, action: hold}\n",
        encoding="utf-8",
    )
    return load_pack(folder)


def test_scores_and_clearing_conditions_are_part_of_the_decision(tmp_path: Path) -> None:
    signals = [
        {"id": "s1", "condition": "observations.on_phone", "action": "notice", "score": 2},
        {"id": "s2", "condition": "observations.hurried", "action": "notice", "score": 1},
    ]
    scored = _scored_pack(tmp_path / "scored", signals)
    # Both signals together reach the hold band: a pack stating that rule is equivalent.
    explicit = _pack(
        tmp_path / "explicit",
        [
            {**signals[0], "score": 0},
            {**signals[1], "score": 0},
            {
                "id": "both",
                "condition": "observations.on_phone and observations.hurried",
                "action": "hold",
            },
        ],
    )
    assert check_equivalence(scored, explicit).verdict is Verdict.PROVEN
    # A clearing condition changes decisions: not equivalent, and the event shows it.
    plain = _pack(
        tmp_path / "plain", [{"id": "r", "condition": "amount >= 50000", "action": "hold"}]
    )
    clearable = _pack(
        tmp_path / "clearable",
        [
            {
                "id": "r",
                "condition": "amount >= 50000",
                "action": "hold",
                "clears": "answers.knows_payee == true",
            }
        ],
    )
    result = check_equivalence(plain, clearable)
    assert result.verdict is Verdict.REFUTED and result.model is not None
    differs, before, after = confirm(plain, clearable, build_event(result.model))
    assert differs and before[0].value == "hold" and after[0].value == "proceed"
    assert not analyze_pack(scored).findings  # weighted rules are never called redundant


def test_regional_overlay_differs_on_a_screened_event_in_its_region(capsys: Any) -> None:
    overlay = BASELINE.parent / "overlays" / "zhejiang"
    assert main(["analyze", "--equivalent", str(BASELINE), str(overlay), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    event = parse_event(printed["counterexample"])
    assert event.branch.region.startswith("CN-ZJ")
    before = Guard(load_pack(BASELINE)).screen(event)
    after = Guard(load_pack(overlay)).screen(event)
    assert (before.action, before.obligations) != (after.action, after.obligations)


def test_amounts_beyond_what_an_event_may_carry_are_dead_and_never_a_witness(
    tmp_path: Path,
) -> None:
    """An event's amount is at most one trillion yuan: a rule above that is dead, and a
    counterexample never carries an amount the event model would refuse."""
    huge = _pack(
        tmp_path / "huge",
        [
            {"id": "beyond", "condition": "amount > 1000000000000"},
            {"id": "at-most", "condition": "amount >= 1000000000000"},
        ],
    )
    assert [f.rule for f in analyze_pack(huge).dead] == ["beyond"]
    old = _pack(tmp_path / "old", [{"id": "r", "condition": "amount >= 999999999999"}])
    new = _pack(tmp_path / "new", [{"id": "r", "condition": "amount >= 1000000000000"}])
    result = check_equivalence(old, new)
    assert result.verdict is Verdict.REFUTED
    assert result.event is not None
    amount = parse_event(result.event).amount.value
    assert Decimal("999999999999") <= amount < MAX_AMOUNT


def test_elderly_flag_is_tied_to_age(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _pack(
        folder, [{"id": "young-elderly", "condition": "customer.is_elderly and customer.age < 60"}]
    )
    assert [f.rule for f in analyze_pack(load_pack(folder)).dead] == ["young-elderly"]
    old = _pack(tmp_path / "old", [{"id": "r", "condition": "customer.is_elderly"}])
    new = _pack(tmp_path / "new", [{"id": "r", "condition": "customer.age >= 60"}])
    assert check_equivalence(old, new).verdict is Verdict.PROVEN
