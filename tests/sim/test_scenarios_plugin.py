"""The pytest plugin collects scenario files as test items (run in a pytester sandbox)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

BASELINE = Path(__file__).resolve().parents[2] / "rules" / "cn-baseline"

SCENARIOS = """
defaults:
  branch: {id: B1, region: CN-SH}
  teller_id: T1
  customer: {id: C1, birth_date: "1980-01-01"}
scenarios:
  - id: small-cash
    title: Small cash withdrawal
    label: legitimate
    steps:
      - event: {kind: cash_withdrawal, amount: 100, timestamp: "2025-03-01T10:00:00+08:00"}
        expect: {action: proceed}
  - id: wrong
    title: Expects a report that will not come
    label: fraud
    steps:
      - event: {kind: cash_withdrawal, amount: 100, timestamp: "2025-03-01T10:00:00+08:00"}
        expect: {action: report}
"""


def test_plugin_collects_and_runs_scenarios(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    (folder / "cases.yaml").write_text(textwrap.dedent(SCENARIOS), encoding="utf-8")
    (folder / "not_a_scenario.yaml").write_text("rules: []\n", encoding="utf-8")
    result = pytester.runpytest(f"--guardrail-pack={BASELINE}", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cases.yaml::small-cash PASSED*",
            "*cases.yaml::wrong FAILED*",
            "*expected action report, got proceed*",
            "*friction: 0 of 1 legitimate*",
        ]
    )


def test_plugin_reports_malformed_file_as_collection_error(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    (folder / "bad.yaml").write_text(
        "scenario:\n  id: x\n  title: t\n  label: maybe\n", encoding="utf-8"
    )
    result = pytester.runpytest(f"--guardrail-pack={BASELINE}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.yaml:4:*label*"])


def test_plugin_uses_ini_pack(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\nguardrail_pack = {BASELINE}\n")
    folder = pytester.mkdir("scenarios")
    text = textwrap.dedent(SCENARIOS).split("  - id: wrong")[0]
    (folder / "cases.yaml").write_text(text, encoding="utf-8")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
