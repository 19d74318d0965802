"""The scenario format, runner, ``guardrail test`` command and pytest plugin."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from guardrail.cli import build_parser
from guardrail.sim.runner import Runner, RunReport
from guardrail.sim.scenario import ScenarioError, load_file, load_scenarios
from guardrail.sim.scenario_cli import add_test_subcommand

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "rules" / "cn-baseline"

PASSING = """
scenario:
  id: lawyer-cash
  title: A lawyer withdraws 40,000
  label: legitimate
  defaults:
    branch: {id: B1, region: CN-SH}
    teller_id: T1
    customer: {id: C1, birth_date: "1980-01-01"}
  steps:
    - event: {kind: cash_withdrawal, amount: 40000, timestamp: "2025-03-01T10:00:00+08:00"}
      expect: {action: proceed, no_obligations: true}
"""

FAILING = """
scenario:
  id: wrong-expectation
  title: Expects a hold for a small withdrawal
  label: fraud
  defaults:
    branch: {id: B1, region: CN-SH}
    teller_id: T1
    customer: {id: C1, birth_date: "1980-01-01"}
  steps:
    - event: {kind: cash_withdrawal, amount: 100, timestamp: "2025-03-01T10:00:00+08:00"}
      expect: {action: hold, hits: [typ-safe-account]}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _run_cli(*argv: str) -> int:
    parser = build_parser([add_test_subcommand])
    args = parser.parse_args(["test", *argv])
    result: int = args.func(args)
    return result


def test_passing_scenario_exits_zero_without_coverage_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "ok.yaml", PASSING)
    assert _run_cli(str(BASELINE), str(tmp_path), "--min-coverage", "0") == 0
    out = capsys.readouterr().out
    assert "PASS lawyer-cash" in out
    assert "Friction: 0 of 1 legitimate" in out


def test_failing_scenario_exits_non_zero_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "bad.yaml", FAILING)
    assert _run_cli(str(BASELINE), str(tmp_path), "--min-coverage", "0") == 1
    out = capsys.readouterr().out
    assert "FAIL wrong-expectation" in out
    assert "expected action hold, got proceed" in out
    assert "expected rule(s) to hit: typ-safe-account" in out
    assert "bad.yaml:11:" in out  # the failing step's line


def test_coverage_below_threshold_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "ok.yaml", PASSING)
    assert _run_cli(str(BASELINE), str(tmp_path)) == 1  # default minimum is 100%
    out = capsys.readouterr().out
    assert "coverage below minimum for cn-baseline" in out
    assert "rules hit by no scenario: " in out


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "ok.yaml", PASSING)
    assert _run_cli(str(BASELINE), str(tmp_path), "--min-coverage", "0", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["scenarios"][0]["steps"][0]["action"] == "proceed"
    assert report["friction"] == {
        "legitimate": 1,
        "with_friction": [],
        "rate": 0.0,
        "after_answers": [],
        "after_answers_rate": 0.0,
    }


def test_malformed_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.yaml", "scenario:\n  id: x\n  title: [unclosed\n")
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}:")
    assert "YAML error" in str(caught.value)


def test_bad_event_field_points_at_its_line(tmp_path: Path) -> None:
    text = PASSING.replace("amount: 40000", "amount: 40000, colour: red")
    path = _write(tmp_path, "field.yaml", text)
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    message = str(caught.value)
    assert f"{path}:11:61" in message  # at the unknown field
    assert "event colour: unknown field" in message


def test_bad_default_points_at_the_defaults(tmp_path: Path) -> None:
    text = PASSING.replace('birth_date: "1980-01-01"', 'birth_date: "not a date"')
    path = _write(tmp_path, "defaults.yaml", text)
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert f"{path}:9:" in str(caught.value)


def test_unknown_scenario_key_suggests(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "typo.yaml", PASSING.replace("  label: legitimate", "  labl: legitimate")
    )
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    message = str(caught.value)
    assert "unknown field 'labl'; did you mean 'label'?" in message
    assert f"{path}:5:" in message


def test_cli_exits_2_on_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "typo.yaml", PASSING.replace("expect:", "expekt:"))
    assert _run_cli(str(BASELINE), str(tmp_path), "--min-coverage", "0") == 2
    assert "typo.yaml:" in capsys.readouterr().err


def test_scenario_without_expectation_is_refused(tmp_path: Path) -> None:
    text = PASSING.replace("      expect: {action: proceed, no_obligations: true}\n", "")
    path = _write(tmp_path, "nothing.yaml", text)
    with pytest.raises(ScenarioError, match="checks nothing"):
        load_file(path)


def test_unknown_rule_in_not_hits_fails(tmp_path: Path) -> None:
    text = PASSING.replace("no_obligations: true", "not_hits: [typ-safe-acount]")
    _write(tmp_path, "rule.yaml", text)
    result = Runner(BASELINE).run(load_scenarios([tmp_path])[0])
    assert not result.passed
    assert "unknown rule 'typ-safe-acount'; did you mean 'typ-safe-account'?" in result.problems[0]


def test_history_and_executed_steps_feed_windows(tmp_path: Path) -> None:
    text = """
    scenario:
      id: cumulative-cash
      title: Two withdrawals add up past 50,000
      label: legitimate
      defaults:
        branch: {id: B1, region: CN-SH}
        teller_id: T1
        customer: {id: C1, birth_date: "1980-01-01"}
      history:
        - {kind: cash_withdrawal, amount: 20000, timestamp: "2025-03-01T09:00:00+08:00"}
      steps:
        - event: {kind: cash_withdrawal, amount: 20000, timestamp: "2025-03-01T10:00:00+08:00"}
          executed: true
          expect: {action: proceed, no_obligations: true}
        - event: {kind: cash_withdrawal, amount: 20000, timestamp: "2025-03-01T11:00:00+08:00"}
          expect: {hits: [reg-large-cash-withdrawal], obligations: [large_value_report]}
    """
    _write(tmp_path, "cum.yaml", text)
    result = Runner(BASELINE).run(load_scenarios([tmp_path])[0])
    assert result.passed, result.problems


def test_answers_step_rescreens_previous_event(tmp_path: Path) -> None:
    text = """
    scenario:
      id: answers-patch
      title: Answers raise the action
      label: fraud
      defaults:
        branch: {id: B1, region: CN-SH}
        teller_id: T1
        customer: {id: C1, birth_date: "1980-01-01"}
      steps:
        - event: {kind: cash_withdrawal, amount: 30000, timestamp: "2025-03-01T10:00:00+08:00"}
          expect: {action: proceed}
        - answers: {told_to_keep_secret: true}
          expect: {action: intercept, hits: [ans-told-to-keep-secret]}
    """
    _write(tmp_path, "ans.yaml", text)
    result = Runner(BASELINE).run(load_scenarios([tmp_path])[0])
    assert result.passed, result.problems
    assert result.steps[0].decision.event_id == result.steps[1].decision.event_id


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", PASSING)
    _write(tmp_path, "b.yaml", PASSING)
    with pytest.raises(ScenarioError, match="duplicate scenario id 'lawyer-cash'"):
        load_scenarios([tmp_path])


def test_non_scenario_yaml_in_a_folder_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "ok.yaml", PASSING)
    _write(tmp_path, "other.yaml", "rules: []\n")
    assert [s.id for s in load_scenarios([tmp_path])] == ["lawyer-cash"]


def test_the_repository_scenarios_pass_with_full_coverage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run_cli(str(BASELINE), str(ROOT / "scenarios"), "-q") == 0
    out = capsys.readouterr().out
    assert "55/55" in out or "(100.0%" in out


REASSURED = """
scenarios:
  - id: reassured
    title: questioned, then cleared by a verified invoice
    label: legitimate
    steps:
      - event:
          kind: cash_withdrawal
          amount: 60000
          timestamp: "2025-04-05T11:00:00+08:00"
          branch: {id: B1, region: CN-JS}
          teller_id: T1
          customer: {id: C1, birth_date: "1950-01-01"}
          purpose: {code: medical}
        expect: {action: inquire}
      - answers: {instructed_by_other: false, family_aware: true}
        patch: {documents: [{kind: invoice, verified: true}]}
        expect: {action_at_most: notice}
"""


def test_friction_after_answers_counts_the_last_step(tmp_path: Path) -> None:
    _write(tmp_path, "reassured.yaml", REASSURED)
    result = Runner(BASELINE).run(load_scenarios([tmp_path])[0])
    assert result.passed, result.problems
    assert result.friction and not result.friction_after_answers
    report = RunReport(results=(result,), coverage=())
    assert report.friction_rate == 1.0 and report.friction_after_answers_rate == 0.0
