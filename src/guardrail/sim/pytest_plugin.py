"""pytest plugin: every scenario in a scenario file is a test item.

A YAML file is collected when it has a top-level ``scenario:`` or ``scenarios:`` key. Each
scenario runs against the pack it names, else ``--guardrail-pack``, else the ini option
``guardrail_pack``, else ``rules/cn-baseline`` under the rootdir. After the run the terminal
summary shows rule coverage and the friction rate of the scenarios that ran.

Registered through the ``pytest11`` entry point; ``scenarios/conftest.py`` loads it when the
entry point is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail.sim.runner import DEFAULT_PACK, Runner, ScenarioResult
from guardrail.sim.scenario import Scenario, ScenarioError, load_file, looks_like_scenario_file

_RUNNER = pytest.StashKey[Runner]()
_RESULTS = pytest.StashKey[list[ScenarioResult]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("guardrail", "guardrail scenario files")
    group.addoption(
        "--guardrail-pack",
        default=None,
        metavar="DIR",
        help="pack for scenarios naming none (default: ini guardrail_pack, rules/cn-baseline)",
    )
    parser.addini(
        "guardrail_pack", "rule pack for scenarios that name none", default=str(DEFAULT_PACK)
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = []
    config.addinivalue_line(
        "markers", "guardrail_scenario: a scenario from a guardrail scenario file"
    )


def _runner(config: pytest.Config) -> Runner:
    runner = config.stash.get(_RUNNER, None)
    if runner is None:
        option = config.getoption("--guardrail-pack")
        pack = option if option else str(config.getini("guardrail_pack"))
        runner = Runner(pack, bases=(Path.cwd(), config.rootpath))
        config.stash[_RUNNER] = runner
    return runner


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix in (".yaml", ".yml") and looks_like_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        try:
            scenarios = load_file(self.path)
        except ScenarioError as error:
            raise self.CollectError(f"invalid scenario file:\n{error}") from None
        for scenario in scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.id, scenario=scenario)


class ScenarioFailure(Exception):
    """A scenario's decisions did not match its expectations."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.add_marker(pytest.mark.guardrail_scenario)
        self.user_properties.append(("label", scenario.spec.label))

    def runtest(self) -> None:
        result = _runner(self.config).run(self.scenario)
        self.config.stash[_RESULTS].append(result)
        if not result.passed:
            raise ScenarioFailure("\n".join(result.problems))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return (
                f"scenario {self.scenario.id} ({self.scenario.spec.title}) failed:\n{excinfo.value}"
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.location.line - 1, f"scenario {self.scenario.id}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    runner = config.stash[_RUNNER]
    write = terminalreporter.write_line
    terminalreporter.section("guardrail scenarios")
    for coverage in runner.coverage(results):
        covered = len(coverage.rules) - len(coverage.uncovered)
        write(
            f"rule coverage {coverage.name} {coverage.version}: {covered}/{len(coverage.rules)} "
            f"({coverage.percent:.1f}%); hit by no scenario: "
            + (", ".join(coverage.uncovered) or "none")
        )
    legitimate = [r for r in results if r.scenario.legitimate]
    frictions = [r for r in legitimate if r.friction]
    if legitimate:
        write(
            f"friction: {len(frictions)} of {len(legitimate)} legitimate scenarios "
            "got inquire or above "
            f"({len(frictions) / len(legitimate):.1%})"
        )
