"""A hit's evidence lists only the comparisons that decided it: every part of an ``and``, and of
an ``or`` only the first part that held, never the false branches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
