"""``guardrail test PACK SCENARIOS...``: run scenario files against a pack.

Prints pass/fail per scenario, a rule-coverage table and the friction rate on legitimate
customers. Exit status: 0 all passed and coverage met; 1 a scenario failed or coverage is below
``--min-coverage``; 2 a scenario file or the pack could not be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from guardrail.lang.errors import PackError
from guardrail.sim.runner import Runner, RunReport
from guardrail.sim.scenario import ScenarioError, load_scenarios

DEFAULT_MIN_COVERAGE = 100.0


def add_test_subcommand(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``guardrail test`` on the CLI's sub-command parsers."""
    test = commands.add_parser(
        "test",
        help="run scenario files against a rule pack; print pass/fail, rule coverage, friction",
        description=__doc__,
    )
    test.add_argument("pack", help="rule pack folder used by scenarios that name no pack")
    test.add_argument(
        "scenarios", nargs="+", help="scenario files or folders (searched recursively)"
    )
    test.add_argument(
        "--min-coverage",
        type=float,
        default=DEFAULT_MIN_COVERAGE,
        metavar="PERCENT",
        help="fail when a pack's rule coverage is below this (default: %(default)s)",
    )
    test.add_argument(
        "--max-friction",
        type=percent,
        metavar="PCT",
        help="fail (exit 1) when the friction rate on legitimate scenarios is above PCT percent",
    )
    test.add_argument("--json", action="store_true", help="print the report as JSON")
    test.add_argument("--backend", default="reference", choices=("reference", "durable_rules"))
    test.add_argument("--quiet", "-q", action="store_true", help="print only failures and totals")
    test.set_defaults(func=run_test_command)


def run_test_command(args: argparse.Namespace) -> int:
    pack = Path(args.pack)
    try:
        scenarios = load_scenarios(args.scenarios)
    except ScenarioError as error:
        print(error, file=sys.stderr)
        print(
            f"guardrail test: {len(error.diagnostics)} problem(s) in scenario files",
            file=sys.stderr,
        )
        return 2
    if not scenarios:
        print(
            f"guardrail test: no scenario files found in {' '.join(args.scenarios)}",
            file=sys.stderr,
        )
        return 2
    runner = Runner(pack, backend=args.backend)
    try:
        runner.pack(runner.default_pack)
    except PackError as error:
        print(error, file=sys.stderr)
        return 2
    report = runner.run_all(scenarios)
    if args.json:
        print(json.dumps(report_json(report, args.min_coverage), ensure_ascii=False, indent=2))
    else:
        print(render_report(report, args.min_coverage, quiet=args.quiet))
    over = friction_gate("test", report.friction_rate, args.max_friction)
    return 1 if report.failed or report.below(args.min_coverage) or over else 0


def percent(text: str) -> float:
    """An argparse type: a percentage from 0 to 100."""
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, got {text!r}")
    return value


def friction_gate(command: str, rate: float | None, max_percent: float | None) -> bool:
    """True (and a message on stderr) when ``rate`` (a fraction) is above ``max_percent``."""
    if max_percent is None:
        return False
    measured = 100 * (rate or 0.0)
    if measured > max_percent:
        print(
            f"guardrail {command}: friction {measured:.2f}% is above the budget of "
            f"{max_percent:g}% (--max-friction)",
            file=sys.stderr,
        )
        return True
    print(
        f"guardrail {command}: friction {measured:.2f}% is within the budget of {max_percent:g}%",
        file=sys.stderr,
    )
    return False


def render_report(report: RunReport, min_coverage: float, *, quiet: bool = False) -> str:
    lines: list[str] = []
    for result in report.results:
        scenario = result.scenario
        if result.passed and quiet:
            continue
        state = "PASS" if result.passed else "FAIL"
        final = result.final_action.value if result.final_action else "-"
        lines.append(
            f"{state} {scenario.id}  [{scenario.spec.label}, {result.pack_name}] → {final}"
        )
        for problem in result.problems:
            lines.append(f"    {problem}")
    for coverage in report.coverage:
        lines.append("")
        covered = len(coverage.rules) - len(coverage.uncovered)
        lines.append(
            f"Rule coverage: {coverage.name} {coverage.version}: "
            f"{covered}/{len(coverage.rules)} rules "
            f"hit by a scenario ({coverage.percent:.1f}%, minimum {min_coverage:g}%)"
        )
        if not quiet:
            width = max((len(rule) for rule in coverage.rules), default=10)
            lines.append(f"  {'rule':<{width}}  scenarios")
            for rule in coverage.rules:
                count = coverage.hit_counts.get(rule, 0)
                lines.append(f"  {rule:<{width}}  {count if count else 'NONE'}")
        uncovered = coverage.uncovered
        lines.append(
            "  rules hit by no scenario: " + (", ".join(uncovered) if uncovered else "none")
        )
    lines.append("")
    legitimate = report.legitimate
    if legitimate:
        rate = report.friction_rate or 0.0
        names = ", ".join(r.scenario.id for r in report.frictions)
        lines.append(
            f"Friction: {len(report.frictions)} of {len(legitimate)} legitimate scenarios "
            "got inquire "
            f"or above ({rate:.1%})" + (f": {names}" if names else "")
        )
        after = report.frictions_after_answers
        after_rate = report.friction_after_answers_rate or 0.0
        after_names = ", ".join(r.scenario.id for r in after)
        lines.append(
            f"Friction after answers: {len(after)} of {len(legitimate)} legitimate scenarios "
            f"still at inquire or above at their last step ({after_rate:.1%})"
            + (f": {after_names}" if after_names else "")
        )
    else:
        lines.append("Friction: no legitimate scenarios")
    failed = report.failed
    below = report.below(min_coverage)
    summary = f"{len(report.results) - len(failed)} passed, {len(failed)} failed"
    if below:
        summary += "; coverage below minimum for " + ", ".join(c.name for c in below)
    lines.append(summary)
    return "\n".join(lines)


def report_json(report: RunReport, min_coverage: float) -> dict[str, Any]:
    return {
        "passed": not report.failed and not report.below(min_coverage),
        "scenarios": [
            {
                "id": r.scenario.id,
                "file": str(r.scenario.file),
                "line": r.scenario.location.line,
                "label": r.scenario.spec.label,
                "typology": r.scenario.spec.typology,
                "pack": r.pack_name,
                "passed": r.passed,
                "problems": r.problems,
                "steps": [
                    {
                        "step": o.step.index,
                        "event_id": o.decision.event_id,
                        "action": o.decision.action.value,
                        "obligations": [ob.value for ob in o.decision.obligations],
                        "hits": list(o.decision.rule_ids),
                    }
                    for o in r.steps
                ],
                "highest_action": r.highest_action.value,
                "friction": r.friction,
                "friction_after_answers": r.friction_after_answers,
            }
            for r in report.results
        ],
        "coverage": [
            {
                "pack": c.name,
                "version": c.version,
                "rules": len(c.rules),
                "percent": round(c.percent, 2),
                "hit_counts": dict(c.hit_counts),
                "uncovered": c.uncovered,
            }
            for c in report.coverage
        ],
        "min_coverage": min_coverage,
        "friction": {
            "legitimate": len(report.legitimate),
            "with_friction": [r.scenario.id for r in report.frictions],
            "rate": report.friction_rate,
            "after_answers": [r.scenario.id for r in report.frictions_after_answers],
            "after_answers_rate": report.friction_after_answers_rate,
        },
    }
