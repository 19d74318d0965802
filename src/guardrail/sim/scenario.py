"""Scenario files: a story of one or more counter events and what the pack must decide.

A scenario file is YAML with either one ``scenario:`` mapping or a ``scenarios:`` list, plus
optional file-wide ``pack:`` and ``defaults:``. Every event is validated at load time, so a
mistake is reported as ``file:line:col: message`` before anything runs. See docs/scenarios.md.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from guardrail.errors import GuardrailError
from guardrail.guard import EventError, parse_event
from guardrail.lang.errors import Diagnostic, Location, did_you_mean
from guardrail.lang.source import Source, parse_yaml
from guardrail.model.decision import Action, Obligation
from guardrail.model.event import Event
from guardrail.model.stream import Label

YamlPath = tuple[str | int, ...]
ScenarioId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,79}$")]
RuleRef = Annotated[str, StringConstraints(min_length=1, max_length=80)]
TOP_LEVEL_KEYS = ("scenario", "scenarios", "pack", "defaults")
_LOOKS_LIKE_SCENARIO = re.compile(r"^scenarios?\s*:", re.MULTILINE)
_EVENT_ID_ROOM = 56  # Identifier max 64 minus room for "-h12" / "-s12"


class ScenarioError(GuardrailError):
    """One or more scenario files could not be loaded; every problem as file:line:col."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ExpectSpec(_Spec):
    """What the decision of one step must look like. Every field is optional."""

    action: Action | None = None
    action_at_least: Action | None = None
    action_at_most: Action | None = None
    hits: tuple[RuleRef, ...] = Field(default=(), description="rules that must hit")
    not_hits: tuple[RuleRef, ...] = Field(default=(), description="rules that must not hit")
    obligations: tuple[Obligation, ...] = Field(
        default=(), description="obligations that must be present"
    )
    not_obligations: tuple[Obligation, ...] = ()
    no_obligations: bool = False


class StepSpec(_Spec):
    """One screening. Without ``event`` it re-screens the previous step's request, patched."""

    title: str = ""
    event: dict[str, Any] | None = None
    answers: dict[str, Any] | None = None
    observations: dict[str, Any] | None = None
    notes: str | None = None
    patch: dict[str, Any] | None = Field(
        default=None,
        description="fields merged into the previous step's event, e.g. documents shown or the "
        "family confirming (lists replace, mappings merge)",
    )
    executed: bool = Field(
        default=False, description="record the event as executed after screening"
    )
    expect: ExpectSpec | None = None


class ScenarioSpec(_Spec):
    id: ScenarioId
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    source: str = ""
    label: Label
    typology: str | None = None
    pack: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    defaults: dict[str, Any] = Field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()
    steps: tuple[StepSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Step:
    index: int  # 1-based
    title: str
    event: Event
    executed: bool
    expect: ExpectSpec | None
    location: Location


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: every event validated and located in its file."""

    spec: ScenarioSpec
    file: Path
    location: Location
    pack: str | None  # as written (scenario's own, else the file's), unresolved
    history: tuple[Event, ...]
    steps: tuple[Step, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def legitimate(self) -> bool:
        return self.spec.label == "legitimate"


def looks_like_scenario_file(path: Path) -> bool:
    """A YAML file with a top-level ``scenario:`` or ``scenarios:`` key."""
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return _LOOKS_LIKE_SCENARIO.search(text) is not None


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files among ``paths`` (files, or folders searched recursively), sorted, unique.

    A file named explicitly is taken even if it does not look like a scenario file, so that
    a typo in its top-level key is reported rather than silently skipped.
    """
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if looks_like_scenario_file(candidate):
                    found.setdefault(candidate, None)
        else:
            found.setdefault(path, None)
    return list(found)


def load_scenarios(paths: Iterable[str | Path]) -> list[Scenario]:
    """Load every scenario in ``paths``; raises ``ScenarioError`` listing all problems."""
    scenarios: list[Scenario] = []
    problems: list[Diagnostic] = []
    seen: dict[str, Location] = {}
    for path in scenario_files(paths):
        try:
            loaded = load_file(path)
        except ScenarioError as error:
            problems.extend(error.diagnostics)
            continue
        for scenario in loaded:
            first = seen.get(scenario.id)
            if first is not None:
                problems.append(
                    Diagnostic(
                        scenario.location,
                        f"duplicate scenario id {scenario.id!r} (first at {first})",
                    )
                )
                continue
            seen[scenario.id] = scenario.location
            scenarios.append(scenario)
    if problems:
        raise ScenarioError(problems)
    return scenarios


def load_file(path: str | Path) -> list[Scenario]:
    """Load one scenario file; raises ``ScenarioError`` with every problem in it."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(
            [Diagnostic(Location(shown, 1, 1), f"not UTF-8 text: {error.reason}")]
        ) from None
    except OSError as error:
        raise ScenarioError(
            [Diagnostic(Location(shown, 1, 1), f"cannot read file: {error.strerror}")]
        ) from None
    source, problems = parse_yaml(shown, text)
    if source is None:
        raise ScenarioError(problems)
    return _Loader(path, source).load()


class _Loader:
    def __init__(self, path: Path, source: Source) -> None:
        self.path = path
        self.source = source
        self.problems: list[Diagnostic] = []

    def error(self, where: YamlPath, message: str) -> None:
        self.problems.append(Diagnostic(self.source.location(where), message))

    def load(self) -> list[Scenario]:
        data = self.source.data
        if not isinstance(data, dict) or not ({"scenario", "scenarios"} & set(data)):
            self.error(
                (), "a scenario file needs a top-level 'scenario:' mapping or 'scenarios:' list"
            )
            raise ScenarioError(self.problems)
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.error(
                    (key, "__key__"),
                    f"unknown top-level key {key!r}"
                    + did_you_mean(key, TOP_LEVEL_KEYS)
                    + f" (allowed: {', '.join(TOP_LEVEL_KEYS)})",
                )
        if "scenario" in data and "scenarios" in data:
            self.error(("scenarios", "__key__"), "use either 'scenario:' or 'scenarios:', not both")
        file_pack = data.get("pack")
        if file_pack is not None and not isinstance(file_pack, str):
            self.error(("pack",), "'pack' must be a path to a pack folder")
            file_pack = None
        file_defaults = data.get("defaults", {})
        if not isinstance(file_defaults, dict):
            self.error(("defaults",), "'defaults' must be a mapping of event fields")
            file_defaults = {}
        items: list[tuple[YamlPath, Any]] = []
        if "scenario" in data:
            items.append((("scenario",), data["scenario"]))
        elif isinstance(data.get("scenarios"), list):
            items.extend((("scenarios", i), item) for i, item in enumerate(data["scenarios"]))
        else:
            self.error(("scenarios",), "'scenarios' must be a list of scenarios")
        scenarios = []
        for where, item in items:
            scenario = self._scenario(where, item, file_pack, file_defaults)
            if scenario is not None:
                scenarios.append(scenario)
        if self.problems:
            raise ScenarioError(self.problems)
        return scenarios

    def _scenario(
        self, where: YamlPath, item: Any, file_pack: str | None, file_defaults: dict[str, Any]
    ) -> Scenario | None:
        spec = self._validate(where, item)
        if spec is None:
            return None
        if not any(step.expect is not None for step in spec.steps):
            self.error(
                (*where, "steps"),
                f"scenario {spec.id!r} checks nothing: give at least one step an 'expect'",
            )
        defaults = _deep_merge(file_defaults, spec.defaults)
        default_paths = [(*where, "defaults"), ("defaults",)]
        stem = spec.id[:_EVENT_ID_ROOM]
        history: list[Event] = []
        for index, raw in enumerate(spec.history):
            path = (*where, "history", index)
            data = _deep_merge(defaults, raw)
            data.setdefault("event_id", f"{stem}-h{index + 1}")
            event = self._event(data, path, default_paths)
            if event is not None:
                history.append(event)
        steps: list[Step] = []
        previous: dict[str, Any] | None = None
        for index, step in enumerate(spec.steps):
            path = (*where, "steps", index)
            if step.event is not None:
                data = _deep_merge(defaults, step.event)
                data.setdefault("event_id", f"{stem}-s{index + 1}")
                event_path: YamlPath = (*path, "event")
            elif previous is not None:
                data = copy.deepcopy(previous)
                event_path = path
            else:
                self.error(path, "the first step needs an 'event'")
                return None
            if step.answers is not None:
                data["answers"] = _deep_merge(data.get("answers") or {}, step.answers)
            if step.observations is not None:
                data["observations"] = _deep_merge(
                    data.get("observations") or {}, step.observations
                )
            if step.notes is not None:
                data["notes"] = step.notes
            if step.patch is not None:
                data = _deep_merge(data, step.patch)
            previous = data
            event = self._event(
                data, event_path, [*((path,) if step.event is None else ()), *default_paths]
            )
            if event is not None:
                steps.append(
                    Step(
                        index=index + 1,
                        title=step.title,
                        event=event,
                        executed=step.executed,
                        expect=step.expect,
                        location=self.source.location(path),
                    )
                )
        return Scenario(
            spec=spec,
            file=self.path,
            location=self.source.location(where),
            pack=spec.pack or file_pack,
            history=tuple(history),
            steps=tuple(steps),
        )

    def _validate(self, where: YamlPath, item: Any) -> ScenarioSpec | None:
        try:
            return ScenarioSpec.model_validate_json(
                json.dumps(item, default=_json_default, ensure_ascii=False)
            )
        except (TypeError, ValueError) as error:
            if not isinstance(error, ValidationError):
                self.error(where, f"cannot read scenario: {error}")
                return None
            for problem in error.errors(include_url=False):
                loc = tuple(problem["loc"])
                label = ".".join(str(part) for part in loc) or "scenario"
                if problem["type"] == "extra_forbidden":
                    self.error(
                        (*where, *loc, "__key__"), f"unknown field {label!r}" + _suggest(loc)
                    )
                elif problem["type"] == "missing":
                    self.error((*where, *loc[:-1]), f"missing required field {label!r}")
                else:
                    self.error((*where, *loc), f"{label}: {problem['msg']}")
            return None

    def _event(
        self, data: dict[str, Any], path: YamlPath, fallbacks: list[YamlPath]
    ) -> Event | None:
        _amount_shorthand(data)
        try:
            return parse_event(
                json.loads(json.dumps(data, default=_json_default, ensure_ascii=False))
            )
        except EventError as error:
            for field_path, message in error.problems:
                parts: YamlPath = tuple(int(p) if p.isdigit() else p for p in field_path.split("."))
                where = self._best(parts, path, fallbacks)
                self.error(where, f"event {field_path}: {message}")
            return None
        except (TypeError, ValueError) as error:
            self.error(path, f"event: {error}")
            return None

    def _best(self, parts: YamlPath, path: YamlPath, fallbacks: list[YamlPath]) -> YamlPath:
        """The most precise place a field of the merged event was written."""
        if parts == ("(event)",):
            return path
        known = self.source.locations
        bases = (path, *fallbacks)
        for base in bases:
            if (*base, *parts) in known:
                return (*base, *parts)
        for cut in range(len(parts) - 1, 0, -1):
            for base in bases:
                if (*base, *parts[:cut]) in known:
                    return (*base, *parts[:cut])
        return path


def _suggest(loc: tuple[Any, ...]) -> str:
    name = str(loc[-1])
    models: dict[str, type[BaseModel]] = {"expect": ExpectSpec, "steps": StepSpec}
    model: type[BaseModel] = ScenarioSpec
    for part in loc[:-1]:
        if isinstance(part, str) and part in models:
            model = models[part]
    return did_you_mean(name, list(model.model_fields))


def _amount_shorthand(data: dict[str, Any]) -> None:
    """``amount: 50000`` means ``amount: {value: 50000}`` (likewise new_daily_limit)."""
    for key in ("amount", "new_daily_limit"):
        value = data.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool):
            data[key] = {"value": value}


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _json_default(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"unsupported YAML value of type {type(value).__name__}")
