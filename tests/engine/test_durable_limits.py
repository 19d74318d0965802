"""Lint refuses what the durable-rules backend cannot build, naming the limit (#9 defect 3), and
the backend cuts a pack into rulesets that cannot overflow the C core's alpha stack (#10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.engine.durable_backend import DurableRulesBackend
from guardrail.engine.reference import ReferenceBackend
from guardrail.lang.durable_limits import (
    MAX_COMPOUND_NODES,
    MAX_MATCHING,
    MAX_OR_WIDTH,
    matching_demand,
)
from guardrail.lang.errors import PackError
from guardrail.lang.pack import lint_pack, load_pack
from support import write_pack


def _or_groups(count: int) -> str:
    return " and ".join(f"(observations.on_phone or amount >= {1000 + i})" for i in range(count))


def _in_list(width: int) -> str:
    return "teller_id in [" + ", ".join(f'"T{i}"' for i in range(width)) + "]"


def _others() -> list[dict[str, str]]:
    return [{"id": f"x{j}", "condition": f"amount >= {j * 100 + 1}"} for j in range(14)]


@pytest.mark.parametrize(
    ("condition", "limit"),
    [(_or_groups(15), f"at most {MAX_COMPOUND_NODES}"), (_in_list(500), f"at most {MAX_OR_WIDTH}")],
    ids=["15-or-groups", "500-item-in-list"],
)
def test_lint_refuses_what_durable_cannot_build(tmp_path: Path, condition: str, limit: str) -> None:
    pack = write_pack(tmp_path / "p", [{"id": "big", "condition": condition}, *_others()])
    (error,) = lint_pack(pack)
    assert "rule 'big'" in error.message and limit in error.message
    assert error.location.file.endswith("rules.yaml")
    with pytest.raises(PackError):
        load_pack(pack)


@pytest.mark.parametrize("condition", [_or_groups(14), _in_list(MAX_OR_WIDTH)], ids=["14", "300"])
def test_just_inside_the_limits_durable_builds(tmp_path: Path, condition: str) -> None:
    pack = load_pack(
        write_pack(tmp_path / "p", [{"id": "big", "condition": condition}, *_others()])
    )
    backend = DurableRulesBackend(pack.rules, pack.content_hash)
    assert backend.ruleset_names


def _alternatives(first: int, count: int) -> str:
    return " or ".join(f"amount >= {first + i}" for i in range(count))


def test_comparisons_that_all_hold_at_once_fit_the_alpha_stack(tmp_path: Path) -> None:
    """80 comparisons that all hold for one big amount: with 16 rules per ruleset the C core
    overflowed its 64-entry alpha stack (error 303, so every big amount was reviewed as a
    failure); rulesets are now cut by how many comparisons can match at once."""
    rules = [{"id": f"w{r}", "condition": _alternatives(10 * r + 1, 5)} for r in range(16)]
    pack = load_pack(write_pack(tmp_path / "p", rules))
    durable = DurableRulesBackend(pack.rules, pack.content_hash)
    assert len(durable.ruleset_names) == 2
    every = [rule.id for rule in pack.rules]
    assert (
        durable.evaluate({"amount": 10**9})
        == every
        == ReferenceBackend(pack.rules).evaluate({"amount": 10**9})
    )
    assert durable.evaluate({"amount": 300}) == ["w0"]  # 3 yuan, in fen


def test_a_rule_with_more_comparisons_that_can_hold_at_once_is_refused(tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "p", [{"id": "wide", "condition": _alternatives(1, 65)}])
    (error,) = lint_pack(pack)
    assert "rule 'wide'" in error.message and f"at most {MAX_MATCHING}" in error.message
    inside = load_pack(
        write_pack(tmp_path / "q", [{"id": "wide", "condition": _alternatives(1, 64)}])
    )
    assert DurableRulesBackend(inside.rules, inside.content_hash).evaluate({"amount": 10**9}) == [
        "wide"
    ]


def test_equalities_on_one_field_count_for_the_value_named_most(tmp_path: Path) -> None:
    """A field has one value: 300 alternatives ``teller_id == ...`` can match only once, the
    same equality in three rules three times."""
    rules = [
        {"id": "tellers", "condition": _in_list(MAX_OR_WIDTH)},
        *(
            {"id": f"t{i}", "condition": f'teller_id == "T1" and amount >= {i + 1}'}
            for i in range(3)
        ),
    ]
    pack = load_pack(write_pack(tmp_path / "p", rules))
    assert matching_demand([pack.rules[0].guarded]) == 1
    assert matching_demand(rule.guarded for rule in pack.rules) == 4 + 3
    durable = DurableRulesBackend(pack.rules, pack.content_hash)
    assert durable.evaluate({"teller_id": "T1", "amount": 10**9}) == ["tellers", "t0", "t1", "t2"]
