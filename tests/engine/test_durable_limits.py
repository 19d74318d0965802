"""Lint refuses what the durable-rules backend cannot build, naming the limit (#9 defect 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.engine.durable_backend import DurableRulesBackend
from guardrail.lang.durable_limits import MAX_COMPOUND_NODES, MAX_OR_WIDTH
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
