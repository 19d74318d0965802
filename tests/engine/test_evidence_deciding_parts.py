"""A hit's evidence lists only the comparisons that decided it: every part of an ``and``, and of
an ``or`` only the first part that held, never the false branches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardrail.engine.decide import Decider, _explain
from guardrail.guard import Guard, parse_event
from support import example_event_data, write_pack


def test_evidence_leaves_out_the_false_branches_of_an_or(tmp_path: Path) -> None:
    rule = {
        "id": "phone",
        "condition": "(observations.earpiece or observations.on_phone or observations.nervous)"
        " and amount >= 1000",
    }
    guard = Guard.from_path(write_pack(tmp_path, [rule]))
    data: dict[str, Any] = example_event_data()  # on the phone, not wearing an earpiece
    (hit,) = guard.screen(parse_event(data)).hits
    assert [e.feature for e in hit.evidence] == ["observations.on_phone", "amount"]


def test_cleared_by_lists_only_what_cleared(tmp_path: Path) -> None:
    rule = {
        "id": "inq",
        "condition": "amount >= 1000",
        "action": "inquire",
        "clears": "family.confirmed or documents.invoice",
    }
    guard = Guard.from_path(write_pack(tmp_path, [rule]))
    data: dict[str, Any] = {**example_event_data(), "documents": [{"kind": "invoice"}]}
    (cleared,) = guard.screen(parse_event(data)).cleared
    assert [e.feature for e in cleared.cleared_by] == ["documents.invoice"]


def test_kept_evidence_of_an_or_follows_the_branch_that_held(tmp_path: Path) -> None:
    """The evidence a Decider keeps for a rule with an ``or`` is rebuilt from the branch that
    held in each event, and equals the interpreted explanation every time."""
    rule = {
        "id": "phone",
        "condition": "(observations.earpiece or observations.on_phone or observations.nervous)"
        " and amount >= 1000",
    }
    guard = Guard.from_path(write_pack(tmp_path, [rule]))
    decider = Decider(guard.pack)
    compiled = guard.pack.rules_by_id["phone"]
    flags = [(True, False, False), (False, True, False), (False, False, True), (True, True, True)]
    for _ in range(2):  # the second pass reads what the first kept
        for earpiece, on_phone, nervous in flags:
            features = {
                "observations.earpiece": earpiece,
                "observations.on_phone": on_phone,
                "observations.nervous": nervous,
                "amount": 500_000,
            }
            decision = decider.decide("e", ["phone"], features, "reference")
            (hit,) = decision.hits
            assert hit.evidence == _explain(guard.pack, compiled.condition, features, {})
