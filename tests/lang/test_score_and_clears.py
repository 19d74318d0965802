"""Rule scores with pack score bands, and 'clears' conditions: checked at load time, refused on
typology, watchlist and report-level rules, shown in the decision and the audit record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.guard import Guard, parse_event
from guardrail.lang import PackError, load_pack
from guardrail.model import Action
from support import example_event_data, write_pack

_BANDS = """
  score_bands:
    - {min_score: 3, action: inquire}
    - {min_score: 5, action: hold}
"""


def _pack(folder: Path, rules: list[dict[str, Any]], bands: str = _BANDS) -> Path:
    write_pack(folder, rules)
    meta = folder / "pack.yaml"
    meta.write_text(meta.read_text(encoding="utf-8") + bands, encoding="utf-8")
    return folder


def _screen(folder: Path, **changes: Any) -> Any:
    data = example_event_data()
    data.update(changes)
    return Guard.from_path(folder).screen(parse_event(data))


WEAK = [
    {"id": "w-phone", "condition": "observations.on_phone", "action": "proceed", "score": 2},
    {"id": "w-hurry", "condition": "observations.hurried", "action": "proceed", "score": 1},
    {"id": "w-old", "condition": "customer.is_elderly", "action": "proceed", "score": 2},
]


def test_weak_signals_add_up_to_a_band(tmp_path: Path) -> None:
    decision = _screen(_pack(tmp_path, WEAK))  # on the phone, hurried, 75 years old
    assert decision.score == 5
    assert decision.score_action is Action.HOLD
    assert decision.ladder_action is Action.PROCEED
    assert decision.action is Action.HOLD
    assert {(p.rule_id, p.weight) for p in decision.score_parts} == {
        ("w-phone", 2),
        ("w-hurry", 1),
        ("w-old", 2),
    }


def test_below_every_band_the_ladder_decides(tmp_path: Path) -> None:
    rules = [*WEAK, {"id": "r", "condition": "amount >= 1", "action": "review"}]
    decision = _screen(_pack(tmp_path, rules), observations={})
    assert decision.score == 2 and decision.score_action is Action.PROCEED
    assert decision.action is Action.REVIEW


def test_bands_must_rise(tmp_path: Path) -> None:
    bands = (
        "  score_bands:\n    - {min_score: 5, action: hold}\n    - {min_score: 3, action: review}\n"
    )
    with pytest.raises(PackError) as raised:
        load_pack(_pack(tmp_path, WEAK, bands))
    assert "score_bands must rise" in str(raised.value)


def test_an_overlay_keeps_its_base_packs_bands(tmp_path: Path) -> None:
    base = _pack(tmp_path / "base", WEAK)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "pack.yaml").write_text(
        'pack:\n  name: over\n  version: "1"\n  extends: ../base\n', encoding="utf-8"
    )
    assert load_pack(overlay).score_bands == load_pack(base).score_bands


def test_negative_scores_are_refused(tmp_path: Path) -> None:
    rules = [{"id": "neg", "condition": "amount >= 1", "score": -1}]
    with pytest.raises(PackError) as raised:
        load_pack(_pack(tmp_path, rules))
    assert "score" in str(raised.value)


CLEARABLE = {
    "id": "inq",
    "condition": "amount >= 50000",
    "action": "inquire",
    "obligations": ["signed_risk_notice"],
    "score": 2,
    "clears": "family.confirmed and answers.instructed_by_other == false",
}


def test_a_cleared_rule_drops_out_with_its_clearing_as_evidence(tmp_path: Path) -> None:
    folder = _pack(
        tmp_path, [CLEARABLE, {"id": "keep", "condition": "amount >= 1", "action": "notice"}]
    )
    before = _screen(folder, observations={})
    assert before.action is Action.INQUIRE and "inq" in before.rule_ids
    after = _screen(
        folder,
        observations={},
        family={"present": True, "confirms": True},
        answers={"instructed_by_other": False},
    )
    assert "inq" not in after.rule_ids
    assert after.action is Action.NOTICE  # the uncleared rule still stands
    assert after.score == 0 and "signed_risk_notice" not in after.obligations
    (cleared,) = after.cleared
    assert cleared.rule_id == "inq" and cleared.action is Action.INQUIRE
    assert {e.feature for e in cleared.cleared_by} == {
        "family.confirmed",
        "answers.instructed_by_other",
    }
    assert cleared.evidence[0].feature == "amount"


def test_clearing_is_unknown_until_asked(tmp_path: Path) -> None:
    folder = _pack(tmp_path, [CLEARABLE])
    decision = _screen(folder, family={"present": True, "confirms": True})
    assert "inq" in decision.rule_ids and not decision.cleared  # instructed_by_other not asked


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"tags": ["typology"]}, "tagged typology"),
        ({"tags": ["watchlist"]}, "tagged watchlist"),
        ({"action": "report"}, "action is report"),
        ({"obligations": ["large_value_report"]}, "large_value_report"),
        ({"obligations": ["suspicious_transaction_report"]}, "suspicious_transaction_report"),
        (
            {"condition": "counterparty.account in watchlist.listed"},
            "reads a watchlist",
        ),
    ],
)
def test_lint_refuses_clears_on_unclearable_rules(
    tmp_path: Path, rule: dict[str, Any], reason: str
) -> None:
    spec = {**CLEARABLE, **rule}
    folder = _pack(tmp_path, [spec])
    (folder / "data").mkdir()
    (folder / "data" / "listed.csv").write_text("value\n1234\n", encoding="utf-8")
    (folder / "lists.yaml").write_text(
        "watchlists:\n  - {name: listed, path: data/listed.csv}\n", encoding="utf-8"
    )
    with pytest.raises(PackError) as raised:
        load_pack(folder)
    message = str(raised.value)
    assert "cannot declare 'clears'" in message and reason in message
    assert "rules.yaml:" in message


def test_a_misspelt_field_in_clears_is_reported_with_its_place(tmp_path: Path) -> None:
    folder = _pack(tmp_path, [{**CLEARABLE, "clears": "family.confirmd"}])
    with pytest.raises(PackError) as raised:
        load_pack(folder)
    assert "family.confirmed" in str(raised.value)  # did you mean


# -- properties on the baseline pack -------------------------------------------------------

from guardrail.testing import events  # noqa: E402
from support import BASELINE  # noqa: E402

_BASELINE = Guard.from_path(BASELINE)
_FLAGS = [
    "on_phone",
    "earpiece",
    "reading_from_phone",
    "nervous",
    "hurried",
    "evasive",
    "companion_answers",
    "screen_sharing",
    "refuses_family_contact",
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events(), flag=st.sampled_from(_FLAGS))
def test_adding_a_risk_factor_never_lowers_the_decision(event: Any, flag: str) -> None:
    riskier = event.model_copy(
        update={"observations": event.observations.model_copy(update={flag: True})}
    )
    assert _BASELINE.screen(riskier).action >= _BASELINE.screen(event).action
    assert _BASELINE.screen(riskier).score >= _BASELINE.screen(event).score


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_clearing_never_lowers_below_the_highest_uncleared_hit(event: Any) -> None:
    bare = event.model_copy(update={"documents": (), "family": None})
    without = _BASELINE.screen(bare)
    reassured = _BASELINE.screen(event)
    cleared = {c.rule_id for c in reassured.cleared}
    uncleared = [h.action for h in without.hits if h.rule_id not in cleared]
    assert reassured.action >= max(uncleared, default=Action.PROCEED)
    assert reassured.action >= max((h.action for h in reassured.hits), default=Action.PROCEED)
    assert not cleared & set(reassured.rule_ids)


def test_the_screen_command_shows_score_and_clearing(tmp_path: Path) -> None:
    from guardrail.cli import render_decision

    keep = {"id": "keep", "condition": "amount >= 1", "action": "notice", "score": 3}
    folder = _pack(tmp_path, [CLEARABLE, keep])
    text = render_decision(
        _screen(
            folder,
            observations={},
            family={"present": True, "confirms": True},
            answers={"instructed_by_other": False},
        )
    )
    assert "score 3 → inquire (keep +3); highest single rule notice" in text
    assert "cleared inq (inquire) by family.confirmed = true" in text
