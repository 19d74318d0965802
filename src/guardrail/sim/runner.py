"""Run scenarios against rule packs: pass/fail per scenario, rule coverage, friction.

Each scenario gets a fresh ``Guard`` (fresh history): its ``history`` events are recorded as
executed, then each step's event is screened, checked against the step's ``expect``, and
recorded when the step says ``executed: true``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from guardrail.guard import Guard
from guardrail.lang.errors import did_you_mean
from guardrail.lang.loader import load_pack
from guardrail.lang.pack import PACK_FILE, Pack
from guardrail.model.decision import Action, Decision
from guardrail.sim.scenario import ExpectSpec, Scenario, Step

DEFAULT_PACK = Path("rules") / "cn-baseline"
FRICTION_FLOOR = Action.INQUIRE  # a legitimate customer questioned or worse counts as friction


@dataclass(frozen=True)
class StepOutcome:
    step: Step
    decision: Decision
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    pack_path: Path
    pack_name: str
    steps: tuple[StepOutcome, ...]
    error: str | None = None  # the scenario could not run (pack failed to load, ...)

    @property
    def problems(self) -> list[str]:
        found = [
            f"{o.step.location}: step {o.step.index}: {p}" for o in self.steps for p in o.problems
        ]
        if self.error:
            found.insert(0, f"{self.scenario.location}: {self.error}")
        return found

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def highest_action(self) -> Action:
        return max((o.decision.action for o in self.steps), default=Action.PROCEED)

    @property
    def final_action(self) -> Action | None:
        return self.steps[-1].decision.action if self.steps else None

    @property
    def hit_rules(self) -> frozenset[str]:
        return frozenset(rule for o in self.steps for rule in o.decision.rule_ids)

    @property
    def friction(self) -> bool:
        """A legitimate customer who was questioned or worse at any step."""
        return self.scenario.legitimate and self.highest_action >= FRICTION_FLOOR

    @property
    def friction_after_answers(self) -> bool:
        """A legitimate customer still at inquire or worse once every step (the answers, the
        documents shown, the family's confirmation) has been taken into account."""
        final = self.final_action
        return self.scenario.legitimate and final is not None and final >= FRICTION_FLOOR


@dataclass(frozen=True)
class PackCoverage:
    """Which of a pack's rules some scenario hit. For the pack under test every rule counts;
    for a pack a scenario names itself (an overlay), only the rules that pack adds."""

    name: str
    version: str
    path: Path
    rules: tuple[str, ...]
    hit_counts: Mapping[str, int]  # rule id -> number of scenarios that hit it

    @property
    def uncovered(self) -> list[str]:
        return [rule for rule in self.rules if not self.hit_counts.get(rule)]

    @property
    def percent(self) -> float:
        if not self.rules:
            return 100.0
        return 100.0 * (len(self.rules) - len(self.uncovered)) / len(self.rules)


@dataclass(frozen=True)
class RunReport:
    results: tuple[ScenarioResult, ...]
    coverage: tuple[PackCoverage, ...]

    @property
    def failed(self) -> list[ScenarioResult]:
        return [r for r in self.results if not r.passed]

    @property
    def legitimate(self) -> list[ScenarioResult]:
        return [r for r in self.results if r.scenario.legitimate]

    @property
    def frictions(self) -> list[ScenarioResult]:
        return [r for r in self.results if r.friction]

    @property
    def friction_rate(self) -> float | None:
        legitimate = self.legitimate
        return None if not legitimate else len(self.frictions) / len(legitimate)

    @property
    def frictions_after_answers(self) -> list[ScenarioResult]:
        return [r for r in self.results if r.friction_after_answers]

    @property
    def friction_after_answers_rate(self) -> float | None:
        legitimate = self.legitimate
        return None if not legitimate else len(self.frictions_after_answers) / len(legitimate)

    def below(self, min_coverage: float) -> list[PackCoverage]:
        return [c for c in self.coverage if c.percent + 1e-9 < min_coverage]


def resolve_pack(name: str | Path, scenario_file: Path | None, bases: Sequence[Path] = ()) -> Path:
    """Find pack folder ``name``: absolute, or relative to one of ``bases`` (e.g. the working
    directory or pytest's rootdir), or to a folder above the scenario file."""
    path = Path(name)
    if path.is_absolute():
        return path
    candidates = list(bases)
    if scenario_file is not None:
        candidates.extend(scenario_file.resolve().parents)
    for base in candidates:
        if (base / path / PACK_FILE).is_file():
            return base / path
    return path


class Runner:
    """Runs scenarios; loads each pack once. ``default_pack`` is used by scenarios naming none."""

    def __init__(
        self, default_pack: str | Path, *, bases: Sequence[Path] = (), backend: str = "reference"
    ) -> None:
        self.bases = tuple(bases) or (Path.cwd(),)
        self.default_pack = resolve_pack(default_pack, None, self.bases)
        self.backend = backend
        self._packs: dict[Path, Pack] = {}
        self._pack_errors: dict[Path, str] = {}

    def pack(self, path: Path) -> Pack:
        """The pack at ``path``, loaded once (raises ``PackError``)."""
        key = path.resolve()
        if key not in self._packs:
            self._packs[key] = load_pack(path)
        return self._packs[key]

    def pack_path_for(self, scenario: Scenario) -> Path:
        if scenario.pack is None:
            return self.default_pack
        return resolve_pack(scenario.pack, scenario.file, self.bases)

    def run(self, scenario: Scenario) -> ScenarioResult:
        path = self.pack_path_for(scenario)
        try:
            pack = self.pack(path)
        except Exception as error:  # a broken pack fails the scenario, with the reason
            return ScenarioResult(
                scenario, path, str(path), (), error=f"cannot load pack {path}:\n{error}"
            )
        guard = Guard(pack, backend=self.backend)
        for event in scenario.history:
            guard.record_executed(event)
        outcomes = []
        for step in scenario.steps:
            decision = guard.screen(step.event)
            problems = []
            if step.expect is not None:
                problems.extend(unknown_rules(step.expect, pack))
                problems.extend(check(step.expect, decision))
            problems.extend(
                f"screening failed in {f.stage}: {f.error_type}: {f.message}"
                for f in decision.failures
            )
            outcomes.append(StepOutcome(step, decision, tuple(problems)))
            if step.executed:
                guard.record_executed(step.event)
        return ScenarioResult(scenario, path, pack.meta.name, tuple(outcomes))

    def run_all(self, scenarios: Iterable[Scenario]) -> RunReport:
        results = tuple(self.run(s) for s in scenarios)
        return RunReport(results, self.coverage(results))

    def coverage(self, results: Sequence[ScenarioResult]) -> tuple[PackCoverage, ...]:
        """Coverage of the default pack (all its rules) and of each other pack used (its own)."""
        used: dict[Path, list[ScenarioResult]] = {self.default_pack.resolve(): []}
        for result in results:
            if result.error is None:
                used.setdefault(result.pack_path.resolve(), []).append(result)
        report = []
        for key, runs in used.items():
            try:
                pack = self.pack(key)
            except Exception:
                continue
            own = (
                pack.rules
                if key == self.default_pack.resolve()
                else [rule for rule in pack.rules if rule.pack == pack.meta.name]
            )
            counts: dict[str, int] = {}
            for result in runs:
                for rule in result.hit_rules:
                    counts[rule] = counts.get(rule, 0) + 1
            ids = tuple(rule.id for rule in own)
            report.append(
                PackCoverage(
                    name=pack.meta.name,
                    version=pack.meta.version,
                    path=key,
                    rules=ids,
                    hit_counts={rule: counts.get(rule, 0) for rule in ids},
                )
            )
        return tuple(report)


def unknown_rules(expect: ExpectSpec, pack: Pack) -> list[str]:
    """Rule ids in ``expect`` that the pack does not have: a typo in ``not_hits`` would
    otherwise pass silently."""
    known = {rule.id for rule in pack.rules}
    return [
        f"{where} names unknown rule {rule!r}" + did_you_mean(rule, known)
        for where, rules in (("hits", expect.hits), ("not_hits", expect.not_hits))
        for rule in rules
        if rule not in known
    ]


def check(expect: ExpectSpec, decision: Decision) -> list[str]:
    """Every way ``decision`` falls short of ``expect`` (empty when it meets it)."""
    problems: list[str] = []
    action = decision.action
    hits = set(decision.rule_ids)
    shown = f"(hits: {', '.join(decision.rule_ids) or 'none'})"
    if expect.action is not None and action is not expect.action:
        problems.append(f"expected action {expect.action.value}, got {action.value} {shown}")
    if expect.action_at_least is not None and action < expect.action_at_least:
        problems.append(
            f"expected action at least {expect.action_at_least.value}, got {action.value} {shown}"
        )
    if expect.action_at_most is not None and action > expect.action_at_most:
        problems.append(
            f"expected action at most {expect.action_at_most.value}, got {action.value} {shown}"
        )
    missing = [rule for rule in expect.hits if rule not in hits]
    if missing:
        problems.append(f"expected rule(s) to hit: {', '.join(missing)} {shown}")
    unwanted = [rule for rule in expect.not_hits if rule in hits]
    if unwanted:
        problems.append(f"rule(s) hit but must not: {', '.join(unwanted)}")
    obligations = set(decision.obligations)
    absent = [o.value for o in expect.obligations if o not in obligations]
    if absent:
        got = ", ".join(o.value for o in decision.obligations) or "none"
        problems.append(f"expected obligation(s): {', '.join(absent)} (got: {got})")
    present = [o.value for o in expect.not_obligations if o in obligations]
    if present:
        problems.append(f"obligation(s) present but must not be: {', '.join(present)}")
    if expect.no_obligations and decision.obligations:
        problems.append(
            "expected no obligations, got: " + ", ".join(o.value for o in decision.obligations)
        )
    return problems
