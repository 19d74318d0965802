"""Issue 13: ``--max-friction`` turns ``guardrail test`` and ``guardrail replay`` into CI gates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guardrail.cli import main
from support import BASELINE, ROOT


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "events.jsonl"
    assert main(["simulate", "--n", "1500", "--seed", "5", "--out", str(path)]) == 0
    return path


def test_replay_fails_above_the_friction_budget(
    stream: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["replay", str(BASELINE), str(stream), "--no-progress", "--json"]
    assert main([*common, "--max-friction", "0.01"]) == 1
    assert "above the budget of 0.01%" in capsys.readouterr().err
    assert main([*common, "--max-friction", "100"]) == 0
    assert "within the budget" in capsys.readouterr().err


def test_the_columnar_replay_and_decisions_file_keep_the_friction_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "events.parquet"
    assert (
        main(["simulate", "--n", "1500", "--seed", "5", "--format", "parquet", "--out", str(table)])
        == 0
    )
    common = ["replay", str(BASELINE), str(table), "--no-progress", "--json"]
    for extra in (["--engine", "columnar"], ["--decisions", str(tmp_path / "d.parquet")]):
        assert main([*common, *extra, "--max-friction", "0.01"]) == 1
        assert "above the budget of 0.01%" in capsys.readouterr().err
        assert main([*common, *extra, "--max-friction", "100"]) == 0
        assert "within the budget" in capsys.readouterr().err


def test_scenario_tests_fail_above_the_friction_budget(capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = str(ROOT / "scenarios" / "legitimate")
    assert Path(scenarios).is_dir()
    assert (
        main(
            ["test", str(BASELINE), scenarios, "-q", "--min-coverage", "0", "--max-friction", "100"]
        )
        == 0
    )
    capsys.readouterr()
    # some legitimate scenarios are questioned before their answers (friction above 0%)
    over = ["test", str(BASELINE), scenarios, "-q", "--min-coverage", "0", "--max-friction", "0"]
    assert main(over) == 1
    assert re.search(r"friction \d+\.\d\d% is above the budget of 0%", capsys.readouterr().err)


def test_a_bad_budget_is_a_usage_error(stream: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["replay", str(BASELINE), str(stream), "--max-friction", "150"])
    assert exit_.value.code == 2
