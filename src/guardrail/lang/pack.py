"""Load a rule pack (a folder of YAML files) into checked, typed rules.

Every problem in every file is collected and reported together as ``file:line:col: message``;
a pack with any error is refused whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guardrail.lang.catalog import LOCAL_DATE_KEY, Catalog, FieldType
from guardrail.lang.checker import Checker
from guardrail.lang.declarations import LexiconSpec, WatchlistSpec, WindowSpec
from guardrail.lang.errors import (
    Diagnostic,
    ExpressionError,
    Location,
    PackError,
    Severity,
    did_you_mean,
)
from guardrail.lang.ir import (
    All,
    AnyOf,
    Compare,
    Condition,
    Const,
    FieldRef,
    Op,
    RefKind,
    refs,
)
from guardrail.lang.source import Source, parse_yaml, parse_yaml_recovering
from guardrail.lang.spec import AnswerType, PackMeta, QuestionnaireSpec, RuleSpec, ScoreBand
from guardrail.lang.watchlist_file import WatchlistError, read_watchlist_file
from guardrail.model.decision import Action, Obligation, PackRef

PACK_FILE = "pack.yaml"
DATA_DIR = "data"  # watchlist sources; not rule files
SECTIONS = ("rules", "windows", "watchlists", "lexicons", "questionnaire")
MAX_EXTENDS_DEPTH = 8
KIND_KEY = "kind"
CLEARS_SUFFIX = "#clears"  # engine id of a rule's clearing condition; '#' is never in a rule id
# Rules with these tags, a report action or a report obligation can never be cleared.
UNCLEARABLE_TAGS = frozenset({"typology", "watchlist", "regulatory"})
REPORT_OBLIGATIONS = frozenset(
    {Obligation.LARGE_VALUE_REPORT, Obligation.SUSPICIOUS_TRANSACTION_REPORT}
)

Spec = TypeVar("Spec", bound=BaseModel)


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready for the engines: its spec, its checked condition and where it came from."""

    spec: RuleSpec
    condition: Condition  # the author's condition, in IR
    guarded: Condition  # applies_to and effective dates folded in: what the engines evaluate
    location: Location
    pack: str
    clears: Condition | None = None  # the author's clearing condition, in IR

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def evidence_refs(self) -> tuple[FieldRef, ...]:
        return tuple(refs(self.condition))

    @cached_property
    def clears_refs(self) -> tuple[FieldRef, ...]:
        return () if self.clears is None else tuple(refs(self.clears))

    def clearing_rule(self) -> CompiledRule | None:
        """The clearing condition as an ordinary rule the engines evaluate (id ``X#clears``),
        guarded by the same kinds and dates; None when the rule declares no ``clears``."""
        if self.clears is None:
            return None
        spec = self.spec.model_copy(
            update={"id": self.spec.id + CLEARS_SUFFIX, "clears": None, "score": 0}
        )
        return CompiledRule(
            spec=spec,
            condition=self.clears,
            guarded=_guard(self.spec, self.clears),
            location=self.location,
            pack=self.pack,
        )


@dataclass(frozen=True)
class Questionnaire:
    spec: QuestionnaireSpec
    answer_types: Mapping[str, AnswerType]  # question id -> answer type
    choices: Mapping[str, tuple[str, ...]]  # question id -> allowed values (choice questions)


@dataclass(frozen=True)
class Pack:
    """A loaded, checked pack (with its base packs merged in)."""

    meta: PackMeta
    root: Path
    content_hash: str
    rules: tuple[CompiledRule, ...]
    windows: Mapping[str, WindowSpec]
    watchlists: Mapping[str, WatchlistSpec]
    watchlist_paths: Mapping[str, Path]
    lexicons: Mapping[str, LexiconSpec]
    questionnaire: Questionnaire | None
    catalog: Catalog
    warnings: tuple[Diagnostic, ...] = ()
    chain: tuple[str, ...] = field(default=())  # pack names, base first
    score_bands: tuple[ScoreBand, ...] = ()

    @cached_property
    def engine_rules(self) -> tuple[CompiledRule, ...]:
        """What a backend compiles: every rule, then every rule's clearing condition."""
        clearing = (rule.clearing_rule() for rule in self.rules)
        return (*self.rules, *(rule for rule in clearing if rule is not None))

    def score_action(self, score: int) -> Action:
        """The action the pack's score bands give ``score`` (proceed below every band)."""
        reached = [band.action for band in self.score_bands if score >= band.min_score]
        return max(reached, default=Action.PROCEED)

    @cached_property
    def ref(self) -> PackRef:
        return PackRef(
            name=self.meta.name, version=self.meta.version, content_hash=self.content_hash
        )

    @cached_property
    def rules_by_id(self) -> Mapping[str, CompiledRule]:
        return {rule.id: rule for rule in self.rules}

    def rule(self, rule_id: str) -> CompiledRule:
        return self.rules_by_id[rule_id]


@dataclass
class _Layer:
    """One pack folder's raw, parsed content, before merging."""

    meta: PackMeta
    root: Path
    files: list[tuple[str, bytes]]
    rules: list[tuple[RuleSpec, Source, tuple[str | int, ...]]] = field(default_factory=list)
    windows: list[tuple[WindowSpec, Location]] = field(default_factory=list)
    watchlists: list[tuple[WatchlistSpec, Location]] = field(default_factory=list)
    lexicons: list[tuple[LexiconSpec, Location]] = field(default_factory=list)
    questionnaire: tuple[QuestionnaireSpec, Source] | None = None


class _Collector:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, location: Location, message: str) -> None:
        self.items.append(Diagnostic(location, message))

    def warn(self, location: Location, message: str) -> None:
        self.items.append(Diagnostic(location, message, Severity.WARNING))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]


def load_pack(path: str | Path) -> Pack:
    """Load and check the pack at ``path``; raises ``PackError`` listing every problem."""
    root = Path(path)
    found = _Collector()
    layers = _load_chain(root, found, seen=[])
    if not layers:
        raise PackError(found.errors or [Diagnostic(Location(str(root), 1, 1), "no pack loaded")])
    pack = _merge(layers, found)  # checks rules even after other errors, to report them all
    if found.errors or pack is None:
        raise PackError(found.errors)
    return pack


def lint_pack(path: str | Path) -> list[Diagnostic]:
    """Every error and warning for the pack at ``path`` (empty when clean)."""
    try:
        pack = load_pack(path)
    except PackError as error:
        return list(error.diagnostics)
    return list(pack.warnings)


# -- reading folders -------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _load_chain(root: Path, found: _Collector, seen: list[Path]) -> list[_Layer]:
    meta_path = root / PACK_FILE
    if not root.is_dir():
        found.error(Location(_display(root), 1, 1), "pack folder not found")
        return []
    if not meta_path.is_file():
        found.error(Location(_display(meta_path), 1, 1), f"a pack folder needs a {PACK_FILE}")
        return []
    resolved = root.resolve()
    if resolved in seen:
        found.error(Location(_display(meta_path), 1, 1), "'extends' forms a cycle")
        return []
    if len(seen) >= MAX_EXTENDS_DEPTH:
        found.error(
            Location(_display(meta_path), 1, 1),
            f"more than {MAX_EXTENDS_DEPTH} levels of 'extends'",
        )
        return []
    meta_source = _read(meta_path, found)
    if meta_source is None:
        return []
    data = meta_source.data
    if not isinstance(data, dict) or "pack" not in data:
        found.error(meta_source.location(()), f"{PACK_FILE} must have a top-level 'pack:' mapping")
        return []
    extra = sorted(set(data) - {"pack"})
    for key in extra:
        found.error(
            meta_source.location((key, "__key__")), f"unknown top-level key {key!r} in {PACK_FILE}"
        )
    meta = _validate(PackMeta, data["pack"], meta_source, ("pack",), found)
    if meta is None:
        return []
    base: list[_Layer] = []
    if meta.extends:
        base = _load_chain((root / meta.extends), found, [*seen, resolved])
        if not base:
            found.error(
                meta_source.location(("pack", "extends")), f"cannot load base pack {meta.extends!r}"
            )
            return []
    layer = _Layer(meta=meta, root=root, files=[(PACK_FILE, meta_path.read_bytes())])
    for file in _rule_files(root):
        layer.files.append((file.relative_to(root).as_posix(), file.read_bytes()))
        for source in _read_recovering(file, found):
            _collect_sections(layer, source, found)
    return [*base, layer]


def _rule_files(root: Path) -> list[Path]:
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.suffix in (".yaml", ".yml")
        and p.name != PACK_FILE
        and DATA_DIR not in p.relative_to(root).parts[:-1]
    ]
    return files


def _read_text(path: Path, found: _Collector) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        found.error(Location(_display(path), 1, 1), f"not UTF-8 text: {error.reason}")
    except OSError as error:
        found.error(Location(_display(path), 1, 1), f"cannot read file: {error.strerror}")
    return None


def _read(path: Path, found: _Collector) -> Source | None:
    text = _read_text(path, found)
    if text is None:
        return None
    source, problems = parse_yaml(_display(path), text)
    found.items.extend(problems)
    return source


def _read_recovering(path: Path, found: _Collector) -> list[Source]:
    text = _read_text(path, found)
    if text is None:
        return []
    sources, problems = parse_yaml_recovering(_display(path), text)
    found.items.extend(problems)
    return sources


def _collect_sections(layer: _Layer, source: Source, found: _Collector) -> None:
    data = source.data
    if data is None:
        found.warn(source.location(()), "empty file")
        return
    if not isinstance(data, dict):
        found.error(
            source.location(()),
            f"top level must be a mapping with keys among: {', '.join(SECTIONS)}",
        )
        return
    for key, value in data.items():
        if key not in SECTIONS:
            found.error(
                source.location((key, "__key__")),
                f"unknown section {key!r}"
                + did_you_mean(key, SECTIONS)
                + f" (allowed: {', '.join(SECTIONS)})",
            )
            continue
        if key == "questionnaire":
            spec = _validate(QuestionnaireSpec, value, source, (key,), found)
            if spec is not None:
                if layer.questionnaire is not None:
                    found.error(
                        source.location((key, "__key__")), "a pack has at most one questionnaire"
                    )
                layer.questionnaire = (spec, source)
            continue
        if not isinstance(value, list):
            found.error(source.location((key,)), f"'{key}' must be a list")
            continue
        for index, item in enumerate(value):
            path = (key, index)
            if key == "rules":
                rule = _validate(RuleSpec, item, source, path, found)
                if rule is not None:
                    layer.rules.append((rule, source, path))
            elif key == "windows":
                window = _validate(WindowSpec, item, source, path, found)
                if window is not None:
                    layer.windows.append((window, source.location(path)))
            elif key == "watchlists":
                watchlist = _validate(WatchlistSpec, item, source, path, found)
                if watchlist is not None:
                    layer.watchlists.append((watchlist, source.location(path)))
            else:
                lexicon = _validate(LexiconSpec, item, source, path, found)
                if lexicon is not None:
                    layer.lexicons.append((lexicon, source.location(path)))


def _validate(
    model: type[Spec], data: Any, source: Source, path: tuple[str | int, ...], found: _Collector
) -> Spec | None:
    # JSON mode: strict about types, yet enum names, dates and lists arrive as YAML writes them.
    try:
        return model.model_validate_json(
            json.dumps(data, default=_json_default, ensure_ascii=False)
        )
    except ValidationError as error:
        for problem in error.errors():
            loc = tuple(problem["loc"])
            where = (*path, *loc)
            if problem["type"] == "extra_forbidden":
                name = str(loc[-1])
                fields = list(model.model_fields)
                found.error(
                    source.location((*where, "__key__")),
                    f"unknown field {name!r}" + did_you_mean(name, fields),
                )
                continue
            label = ".".join(str(part) for part in loc) or model.__name__
            if problem["type"] == "missing":
                found.error(source.location(path), f"missing required field {label!r}")
            else:
                found.error(source.location(where), f"{label}: {problem['msg']}")
        return None


def _json_default(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"unsupported YAML value of type {type(value).__name__}")


# -- merging and checking --------------------------------------------------------------------


def _merge(layers: list[_Layer], found: _Collector) -> Pack | None:
    windows: dict[str, WindowSpec] = {}
    watchlists: dict[str, WatchlistSpec] = {}
    watchlist_paths: dict[str, Path] = {}
    lexicons: dict[str, LexiconSpec] = {}
    questionnaire: tuple[QuestionnaireSpec, Source] | None = None
    for layer in layers:
        _declare(windows, layer.windows, "window", found)
        _declare(lexicons, layer.lexicons, "lexicon", found)
        for listed, location in layer.watchlists:
            if listed.name in watchlists:
                found.error(location, f"watchlist {listed.name!r} is declared twice")
                continue
            data_path = layer.root / listed.path
            _check_watchlist_file(listed, data_path, layer.root, location, found)
            watchlists[listed.name] = listed
            watchlist_paths[listed.name] = data_path
        if layer.questionnaire is not None:
            questionnaire = layer.questionnaire
    catalog = Catalog.for_pack(windows)
    checker = Checker(catalog, lexicons, watchlists)
    compiled_questionnaire = _check_questionnaire(questionnaire, catalog, found)
    question_ids = (
        {q.id for q in compiled_questionnaire.spec.questions} if compiled_questionnaire else set()
    )

    rules: dict[str, CompiledRule] = {}
    for layer in layers:
        for spec, source, path in layer.rules:
            location = source.location(path)
            if spec.id in rules:
                if spec.overrides and rules[spec.id].pack != layer.meta.name:
                    del rules[spec.id]
                else:
                    first = rules[spec.id].location
                    found.error(
                        source.location((*path, "id")),
                        f"duplicate rule id {spec.id!r} (first at {first})",
                    )
                    continue
            elif spec.overrides:
                found.error(
                    source.location((*path, "overrides")),
                    f"rule {spec.id!r} overrides no base rule",
                )
            for question in spec.ask:
                if question not in question_ids:
                    found.error(
                        source.location((*path, "ask")),
                        f"unknown question {question!r}" + did_you_mean(question, question_ids),
                    )
            if not spec.enabled:
                continue
            try:
                condition = checker.check(spec.condition)
            except ExpressionError as error:
                found.error(source.text_location((*path, "condition"), error.offset), error.message)
                continue
            clears: Condition | None = None
            if spec.clears is not None:
                refusal = _why_unclearable(spec, condition)
                if refusal:
                    found.error(
                        source.location((*path, "clears")),
                        f"rule {spec.id!r} cannot declare 'clears': {refusal}; typology, "
                        "watchlist and report-level rules can never be cleared",
                    )
                    continue
                try:
                    clears = checker.check(spec.clears)
                except ExpressionError as error:
                    found.error(
                        source.text_location((*path, "clears"), error.offset), error.message
                    )
                    continue
            rules[spec.id] = CompiledRule(
                spec=spec,
                condition=condition,
                guarded=_guard(spec, condition),
                location=location,
                pack=layer.meta.name,
                clears=clears,
            )
    top = layers[-1]
    declared = (layer.meta.score_bands for layer in reversed(layers) if layer.meta.score_bands)
    bands = next(declared, ())
    if found.errors:
        return None
    return Pack(
        meta=top.meta,
        root=top.root,
        content_hash=_content_hash(layers),
        rules=tuple(rules.values()),
        windows=windows,
        watchlists=watchlists,
        watchlist_paths=watchlist_paths,
        lexicons=lexicons,
        questionnaire=compiled_questionnaire,
        catalog=catalog,
        warnings=tuple(found.warnings),
        chain=tuple(layer.meta.name for layer in layers),
        score_bands=bands,
    )


def _why_unclearable(spec: RuleSpec, condition: Condition) -> str:
    """Why ``spec`` may never be cleared, or "" when it may."""
    tags = sorted(UNCLEARABLE_TAGS.intersection(spec.tags))
    if tags:
        return f"it is tagged {', '.join(tags)}"
    if spec.action >= Action.REPORT:
        return "its action is report"
    reports = sorted(o.value for o in REPORT_OBLIGATIONS.intersection(spec.obligations))
    if reports:
        return f"it carries the obligation {', '.join(reports)}"
    if any(ref.kind is RefKind.WATCHLIST for ref in refs(condition)):
        return "it reads a watchlist"
    return ""


_Decl = TypeVar("_Decl", WindowSpec, LexiconSpec)


def _check_watchlist_file(
    listed: WatchlistSpec, data_path: Path, root: Path, location: Location, found: _Collector
) -> None:
    """The file must lie inside the pack folder and read as a watchlist with entries."""
    name = f"watchlist {listed.name!r}"
    if not data_path.resolve().is_relative_to(root.resolve()):
        found.error(location, f"{name}: path {listed.path!r} points outside the pack folder")
        return
    if not data_path.is_file():
        found.error(location, f"{name}: file not found: {listed.path}")
        return
    try:
        _, values = read_watchlist_file(data_path)
    except WatchlistError as error:
        # The message reads "<path>:<line>: <problem>"; report it at that file and line.
        line_text, _, problem = str(error).removeprefix(f"{data_path}:").partition(": ")
        line = int(line_text) if line_text.isdigit() else 0
        found.error(Location(_display(data_path), max(line, 1), 1), f"{name}: {problem}")
        return
    if not values:
        found.warn(location, f"{name}: {listed.path} has no entries; no value will match")


def _declare(
    target: dict[str, _Decl], items: Iterable[tuple[_Decl, Location]], what: str, found: _Collector
) -> None:
    for spec, location in items:
        if spec.name in target:
            found.error(location, f"{what} {spec.name!r} is declared twice")
            continue
        target[spec.name] = spec


def _check_questionnaire(
    declared: tuple[QuestionnaireSpec, Source] | None, catalog: Catalog, found: _Collector
) -> Questionnaire | None:
    if declared is None:
        return None
    spec, source = declared
    types: dict[str, AnswerType] = {}
    choices: dict[str, tuple[str, ...]] = {}
    for index, question in enumerate(spec.questions):
        info = catalog.get(question.answer)
        where = source.location(("questionnaire", "questions", index, "answer"))
        if info is None:
            hint = did_you_mean(question.answer, catalog.names())
            found.error(where, f"unknown answer field {question.answer!r}{hint}")
            continue
        answer_type = _answer_type(info.type)
        if answer_type is None:
            found.error(where, f"{question.answer} cannot be asked as a question")
            continue
        types[question.id] = answer_type
        if answer_type is AnswerType.CHOICE:
            allowed = question.choices or info.values
            unknown = [c for c in allowed if c not in info.values]
            for value in unknown:
                found.error(
                    source.location(("questionnaire", "questions", index, "choices")),
                    f"{value!r} is not a value of {question.answer}"
                    + did_you_mean(value, info.values),
                )
            choices[question.id] = tuple(allowed)
        elif question.choices:
            found.error(
                source.location(("questionnaire", "questions", index, "choices")),
                f"only choice questions take 'choices'; {question.answer} is {answer_type.value}",
            )
    return Questionnaire(spec=spec, answer_types=types, choices=choices)


def _answer_type(kind: FieldType) -> AnswerType | None:
    return {
        FieldType.BOOL: AnswerType.YES_NO,
        FieldType.ENUM: AnswerType.CHOICE,
        FieldType.TEXT: AnswerType.FREE_TEXT,
        FieldType.INT: AnswerType.NUMBER,
    }.get(kind)


def _guard(spec: RuleSpec, condition: Condition) -> Condition:
    """Fold the rule's event kinds and effective dates into the condition the engines see."""
    parts: list[Condition] = []
    if spec.applies_to:
        kind_ref = FieldRef(KIND_KEY, FieldType.ENUM)
        tests: tuple[Condition, ...] = tuple(
            Compare(Op.EQ, kind_ref, Const(kind.value, FieldType.ENUM))
            for kind in dict.fromkeys(spec.applies_to)
        )
        parts.append(tests[0] if len(tests) == 1 else AnyOf(tests))
    date_ref = FieldRef(LOCAL_DATE_KEY, FieldType.INT)
    if spec.effective_from is not None:
        parts.append(Compare(Op.GE, date_ref, Const(_yyyymmdd(spec.effective_from), FieldType.INT)))
    if spec.effective_to is not None:
        parts.append(Compare(Op.LE, date_ref, Const(_yyyymmdd(spec.effective_to), FieldType.INT)))
    if not parts:
        return condition
    items = [*parts, *(condition.items if isinstance(condition, All) else (condition,))]
    return All(tuple(items))


def _yyyymmdd(day: Any) -> int:
    return int(day.strftime("%Y%m%d"))


def _content_hash(layers: Sequence[_Layer]) -> str:
    digest = hashlib.sha256()
    for layer in layers:
        digest.update(f"pack:{layer.meta.name}\0".encode())
        for name, content in sorted(layer.files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()
