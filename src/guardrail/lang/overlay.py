"""Merge a pack's layers (base first, overlays after) into one checked ``Pack``.

An overlay rule with ``overrides: true`` replaces the base rule of the same id only inside
its own scope: from its ``effective_from`` (to its ``effective_to``) and, when the overlay
pack names a ``region:``, only for events at branches in that region. Outside that scope the
base version still applies. Both versions are compiled, with disjoint guarded conditions, so
exactly one of them can fire for an event.

The region of an event is its branch's region (``branch.region``): the counter where the
request is made, not the customer's home region. A pack scoped to ``CN-GD`` covers branches
in ``CN-GD`` and in every region inside it (``CN-GD-SZ``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from guardrail.lang.catalog import LOCAL_DATE_KEY, Catalog, FieldType, region_key
from guardrail.lang.checker import Checker
from guardrail.lang.declarations import LexiconSpec, WatchlistSpec, WindowSpec
from guardrail.lang.durable_limits import durable_problems
from guardrail.lang.errors import Collector, ExpressionError, Location, did_you_mean
from guardrail.lang.identity import content_version, pack_content_hash, read_watchlist_data
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, FieldRef, Op, RefKind, refs
from guardrail.lang.loader import BrokenRule, Layer, RulePath, display_path
from guardrail.lang.pack import (
    KIND_KEY,
    REPORT_OBLIGATIONS,
    UNCLEARABLE_TAGS,
    CompiledRule,
    Pack,
    Questionnaire,
    yyyymmdd,
)
from guardrail.lang.source import Source
from guardrail.lang.spec import AnswerType, QuestionnaireSpec, RuleSpec
from guardrail.lang.watchlist_file import WatchlistError, read_watchlist_file
from guardrail.model.decision import Action

REGION_CODE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,3}$")
_DATE_REF = FieldRef(LOCAL_DATE_KEY, FieldType.INT)


@dataclass(frozen=True)
class _Version:
    """One definition of a rule id, in one layer."""

    spec: RuleSpec
    pack: str
    region: str | None
    source: Source
    path: RulePath

    @property
    def location(self) -> Location:
        return self.source.location(self.path)

    def scope(self) -> list[Condition]:
        """Where this version applies, as tests on date and region (empty: everywhere)."""
        tests: list[Condition] = []
        if self.spec.effective_from is not None:
            tests.append(_date_test(Op.GE, self.spec.effective_from))
        if self.spec.effective_to is not None:
            tests.append(_date_test(Op.LE, self.spec.effective_to))
        if self.region is not None:
            tests.append(_region_test(Op.EQ, self.region))
        return tests

    def outside(self) -> Condition | None:
        """The negation of ``scope``: None when the scope is everything."""
        tests: list[Condition] = []
        if self.spec.effective_from is not None:
            tests.append(_date_test(Op.LT, self.spec.effective_from))
        if self.spec.effective_to is not None:
            tests.append(_date_test(Op.GT, self.spec.effective_to))
        if self.region is not None:
            tests.append(_region_test(Op.NE, self.region))
        if not tests:
            return None
        return tests[0] if len(tests) == 1 else AnyOf(tuple(tests))


def merge_layers(layers: Sequence[Layer], found: Collector) -> Pack | None:
    """The pack made of ``layers`` (base first), or None when ``found`` has errors."""
    windows: dict[str, WindowSpec] = {}
    watchlists: dict[str, WatchlistSpec] = {}
    watchlist_paths: dict[str, Path] = {}
    lexicons: dict[str, LexiconSpec] = {}
    questionnaire: tuple[QuestionnaireSpec, Source] | None = None
    for layer in layers:
        _check_region(layer, found)
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
    versions = _collect_versions(layers, question_ids, checker, found)
    _warn_about_dates(versions, found)
    rules = _compile(versions, checker, found)
    if found.errors:
        return None
    top = layers[-1]
    declared = (layer.meta.score_bands for layer in reversed(layers) if layer.meta.score_bands)
    bands = next(declared, ())
    watchlist_data = read_watchlist_data(watchlist_paths)
    return Pack(
        meta=top.meta,
        root=top.root,
        content_hash=pack_content_hash(
            [(layer.meta.name, layer.files) for layer in layers], watchlist_data
        ),
        rules=tuple(rules),
        windows=windows,
        watchlists=watchlists,
        watchlist_paths=watchlist_paths,
        lexicons=lexicons,
        questionnaire=compiled_questionnaire,
        catalog=catalog,
        warnings=tuple(found.warnings),
        chain=tuple(layer.meta.name for layer in layers),
        watchlist_digests={name: content_version(raw) for name, raw in watchlist_data.items()},
        score_bands=bands,
    )


def _check_region(layer: Layer, found: Collector) -> None:
    region = layer.meta.region
    if region is not None and not REGION_CODE.match(region):
        found.error(
            Location(str(layer.root / "pack.yaml"), 1, 1),
            f"region {region!r} is not a region code like CN-ZJ or CN-GD-SZ",
        )


def _collect_versions(
    layers: Sequence[Layer], question_ids: set[str], checker: Checker, found: Collector
) -> dict[str, list[_Version]]:
    """Every version of every rule id, base first; duplicates and unknown questions reported,
    and the conditions of rules that failed their schema still checked."""
    versions: dict[str, list[_Version]] = {}
    first_seen: dict[str, tuple[Location, str]] = {}  # broken rules too, for duplicates
    for layer in layers:
        region = layer.meta.region
        if region is not None and not REGION_CODE.match(region):
            region = None  # reported by _check_region
        for item, source, path in layer.rules:
            rule_id = item.rule_id if isinstance(item, BrokenRule) else item.id
            overrides = item.overrides
            if rule_id is not None:
                earlier = first_seen.get(rule_id)
                if earlier is not None and not (overrides and earlier[1] != layer.meta.name):
                    found.error(
                        source.location((*path, "id")),
                        f"duplicate rule id {rule_id!r} (first at {earlier[0]})",
                    )
                    continue
                if earlier is None and overrides:
                    found.error(
                        source.location((*path, "overrides")),
                        f"rule {rule_id!r} overrides no base rule",
                    )
                first_seen[rule_id] = (source.location(path), layer.meta.name)
            if isinstance(item, BrokenRule):
                if item.condition is not None:
                    _check_condition(item.condition, checker, source, path, found)
                continue
            for question in item.ask:
                if question not in question_ids:
                    found.error(
                        source.location((*path, "ask")),
                        f"unknown question {question!r}" + did_you_mean(question, question_ids),
                    )
            versions.setdefault(item.id, []).append(
                _Version(item, layer.meta.name, region, source, path)
            )
    return versions


def _check_condition(
    text: str, checker: Checker, source: Source, path: RulePath, found: Collector
) -> Condition | None:
    try:
        return checker.check(text)
    except ExpressionError as error:
        found.error(source.text_location((*path, "condition"), error.offset), error.message)
        return None


def _compile(
    versions: dict[str, list[_Version]], checker: Checker, found: Collector
) -> list[CompiledRule]:
    rules: list[CompiledRule] = []
    for rule_id, defined in versions.items():
        for index, version in enumerate(defined):
            condition = _check_condition(
                version.spec.condition, checker, version.source, version.path, found
            )
            if condition is None or not version.spec.enabled:
                continue
            clear_ok, clears = _check_clears(version, condition, checker, found)
            if not clear_ok:
                continue
            later = [v.outside() for v in defined[index + 1 :]]
            if any(outside is None for outside in later):
                replaced_by = defined[-1]
                found.warn(
                    version.location,
                    f"rule {rule_id!r} of pack {version.pack!r} never applies: pack "
                    f"{replaced_by.pack!r} replaces it everywhere and at all times",
                )
                continue
            exclusions = [outside for outside in later if outside is not None]
            key = rule_id if index == len(defined) - 1 else f"{rule_id}@{version.pack}"
            scope = _scope(version, exclusions)
            items = condition.items if isinstance(condition, All) else (condition,)
            guarded = All((*scope, *items)) if scope else condition
            limits = durable_problems(guarded)
            if clears is not None:  # built as a rule of its own, in the same scope
                clear_items = clears.items if isinstance(clears, All) else (clears,)
                limits += durable_problems(All((*scope, *clear_items)) if scope else clears)
            for problem in limits:
                found.error(version.location, f"rule {rule_id!r}: {problem}")
            if limits:
                continue
            rules.append(
                CompiledRule(
                    spec=version.spec,
                    condition=condition,
                    guarded=guarded,
                    location=version.location,
                    pack=version.pack,
                    key=key,
                    region=version.region,
                    clears=clears,
                    scope=scope,
                )
            )
    return rules


def _check_watchlist_file(
    listed: WatchlistSpec, data_path: Path, root: Path, location: Location, found: Collector
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
        _, _, values = read_watchlist_file(data_path)
    except WatchlistError as error:
        # The message reads "<path>:<line>: <problem>"; report it at that file and line.
        line_text, _, problem = str(error).removeprefix(f"{data_path}:").partition(": ")
        line = int(line_text) if line_text.isdigit() else 0
        found.error(Location(display_path(data_path), max(line, 1), 1), f"{name}: {problem}")
        return
    if not values:
        found.warn(location, f"{name}: {listed.path} has no entries; no value will match")


def _check_clears(
    version: _Version, condition: Condition, checker: Checker, found: Collector
) -> tuple[bool, Condition | None]:
    """(False, None) after reporting an error, else (True, the checked clearing condition or
    None when the rule declares none)."""
    spec = version.spec
    if spec.clears is None:
        return True, None
    refusal = _why_unclearable(spec, condition)
    if refusal:
        found.error(
            version.source.location((*version.path, "clears")),
            f"rule {spec.id!r} cannot declare 'clears': {refusal}; typology, "
            "watchlist and report-level rules can never be cleared",
        )
        return False, None
    try:
        return True, checker.check(spec.clears)
    except ExpressionError as error:
        found.error(
            version.source.text_location((*version.path, "clears"), error.offset), error.message
        )
        return False, None


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


def _scope(version: _Version, exclusions: list[Condition]) -> tuple[Condition, ...]:
    """The rule's event kinds, dates, region and the scopes of later versions: the tests the
    engines run before the rule's own condition."""
    parts: list[Condition] = []
    spec = version.spec
    if spec.applies_to:
        kind_ref = FieldRef(KIND_KEY, FieldType.ENUM)
        tests: tuple[Condition, ...] = tuple(
            Compare(Op.EQ, kind_ref, Const(kind.value, FieldType.ENUM))
            for kind in dict.fromkeys(spec.applies_to)
        )
        parts.append(tests[0] if len(tests) == 1 else AnyOf(tests))
    parts.extend(version.scope())
    parts.extend(exclusions)
    return tuple(parts)


def _date_test(op: Op, day: dt.date) -> Compare:
    return Compare(op, _DATE_REF, Const(yyyymmdd(day), FieldType.INT))


def _region_test(op: Op, region: str) -> Compare:
    depth = region.count("-") + 1
    return Compare(
        op, FieldRef(region_key(depth), FieldType.STRING), Const(region, FieldType.STRING)
    )


def _warn_about_dates(versions: dict[str, list[_Version]], found: Collector) -> None:
    """Gaps (no version applies) and overlaps (two versions claim the same days) between a
    base rule's dates and the overlay version that replaces it."""
    for rule_id, defined in versions.items():
        for before, after in itertools.pairwise(defined):
            ends, starts = before.spec.effective_to, after.spec.effective_from
            if ends is None or starts is None:
                continue
            if (starts - ends).days > 1:
                found.warn(
                    after.location,
                    f"rule {rule_id!r}: no version applies from {ends + dt.timedelta(days=1)} "
                    f"to {starts - dt.timedelta(days=1)} (pack {before.pack!r} ends on {ends}, "
                    f"pack {after.pack!r} starts on {starts})",
                )
            elif starts <= ends:
                found.warn(
                    after.location,
                    f"rule {rule_id!r}: the dates of pack {before.pack!r} (to {ends}) overlap "
                    f"those of pack {after.pack!r} (from {starts}); the overriding version "
                    f"wins from {starts}",
                )


_Decl = TypeVar("_Decl", WindowSpec, LexiconSpec)


def _declare(
    target: dict[str, _Decl], items: Iterable[tuple[_Decl, Location]], what: str, found: Collector
) -> None:
    for spec, location in items:
        if spec.name in target:
            found.error(location, f"{what} {spec.name!r} is declared twice")
            continue
        target[spec.name] = spec


def _check_questionnaire(
    declared: tuple[QuestionnaireSpec, Source] | None, catalog: Catalog, found: Collector
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
            for value in (c for c in allowed if c not in info.values):
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
