"""What a pack asks of a columnar compiler, checked once: every feature its rules read, every
window, lexicon and watchlist test. Anything the columnar and Spark compilers cannot express
exactly is refused here, naming the rule and the construct, never approximated."""

from __future__ import annotations

from dataclasses import dataclass

from guardrail.context.enrich import BASE_KEYS, HISTORY_DERIVED, STATIC_DERIVED
from guardrail.errors import GuardrailError
from guardrail.lang.catalog import LOCAL_DATE_KEY, FieldType
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.lang.ir import All, AnyOf, Compare, Condition, Const, FieldRef, Op, RefKind
from guardrail.lang.pack import CompiledRule, Pack
from guardrail.replay.table import EVENT_COLUMNS

# Catalogue keys whose column has another name in the stream table.
RENAMED = {
    "amount": "amount.fen",
    "currency": "amount.currency",
    "new_daily_limit": "new_daily_limit.fen",
}
DERIVED_FROM_KIND = "direction"
TEXT_COLUMNS = {
    "purpose.text": "purpose.text",
    "notes": "notes",
    "answers.purpose_detail": "answers.purpose_detail",
}
ANY_TEXT = "any_text"  # purpose text, purpose detail and notes joined by newlines, as live

# The window vocabulary the compilers implement. A member added to the language later is
# refused until a compiler implements it.
SPANS = frozenset({Span.SAME_DAY, Span.HOURS, Span.DAYS, Span.SINCE_ACCOUNT_OPENED})
KEYS = frozenset({WindowKey.CUSTOMER, WindowKey.ACCOUNT, WindowKey.COUNTERPARTY})
AGGREGATES = frozenset({Aggregate.SUM, Aggregate.COUNT, Aggregate.COUNT_DISTINCT, Aggregate.MAX})
MEASURES = frozenset({Measure.AMOUNT, Measure.COUNTERPARTY, Measure.EVENT})
OPS = frozenset(Op)
_WINDOW_OPTIONS = frozenset(
    {"name", "aggregate", "measure", "span", "length", "key", "kinds", "direction", "channels"}
    | {"currency", "include_current", "description"}
)
TYPES = frozenset(
    {FieldType.BOOL, FieldType.INT, FieldType.MONEY, FieldType.ENUM, FieldType.STRING}
)


class CompileError(GuardrailError, ValueError):
    """The pack uses something a columnar engine cannot evaluate exactly; lists every use."""

    def __init__(self, engine: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"the {engine} replay engine cannot compile this pack exactly (use --engine "
            "reference):\n" + "\n".join(f"  {problem}" for problem in problems)
        )


@dataclass(frozen=True)
class ReplayPlan:
    """The checked needs of a pack: the engines compile from this and the rules' IR."""

    pack: Pack
    rules: tuple[CompiledRule, ...]
    refs: dict[str, FieldRef]  # every feature key the rules read
    windows: dict[str, WindowSpec]  # feature key "window.NAME" -> spec
    lexicon_refs: tuple[FieldRef, ...]
    watchlist_refs: tuple[FieldRef, ...]

    @property
    def history_keys(self) -> frozenset[str]:
        """Features that depend on executed history (recomputed as decisions settle)."""
        return frozenset(k for k in self.refs if k in HISTORY_DERIVED or k in self.windows)


def column_of(key: str) -> str:
    """The stream-table column holding the event field ``key``."""
    return RENAMED.get(key, key)


def compile_plan(pack: Pack, engine: str) -> ReplayPlan:
    """Check that ``engine`` can evaluate every rule of ``pack`` exactly; raise ``CompileError``
    listing each rule and construct it cannot."""
    problems: list[str] = []
    refs: dict[str, FieldRef] = {}
    # clearing conditions are rules of their own (id RULE#clears); scores and clearing are
    # settled from the hits by engine.decide.outcome, as live
    for rule in pack.engine_rules:
        for problem in _check_condition(rule.guarded, refs):
            problems.append(f"rule {rule.id}: {problem}")
    windows: dict[str, WindowSpec] = {}
    for key, ref in refs.items():
        if ref.kind is not RefKind.FIELD:
            continue
        if key.startswith("window."):
            spec = pack.windows.get(key.removeprefix("window."))
            if spec is None:
                problems.append(f"{key}: not declared by the pack")
                continue
            problems.extend(f"{key}: {p}" for p in _check_window(spec))
            windows[key] = spec
        elif not _computable(key):
            problems.append(f"field {key!r} has no column compilation")
    lexicons = tuple(r for r in refs.values() if r.kind is RefKind.LEXICON)
    for ref in lexicons:
        if ref.field not in TEXT_COLUMNS and ref.field != ANY_TEXT:
            problems.append(f"{ref.key}: lexicon test on unsupported text field {ref.field!r}")
    watchlists = tuple(r for r in refs.values() if r.kind is RefKind.WATCHLIST)
    for ref in watchlists:
        if ref.field not in BASE_KEYS or column_of(ref.field) not in EVENT_COLUMNS:
            problems.append(f"{ref.key}: watchlist test on unsupported field {ref.field!r}")
    if problems:
        raise CompileError(engine, sorted(dict.fromkeys(problems)))
    return ReplayPlan(pack, pack.engine_rules, refs, windows, lexicons, watchlists)


def _computable(key: str) -> bool:
    if key in (DERIVED_FROM_KIND, LOCAL_DATE_KEY):
        return True
    if key in STATIC_DERIVED or key in HISTORY_DERIVED:
        return True
    return key in BASE_KEYS and column_of(key) in EVENT_COLUMNS


def _check_condition(condition: Condition, refs: dict[str, FieldRef]) -> list[str]:
    if isinstance(condition, All | AnyOf):
        return [p for item in condition.items for p in _check_condition(item, refs)]
    if not isinstance(condition, Compare):
        return [f"unsupported condition node {type(condition).__name__}"]
    problems = []
    if condition.op not in OPS:
        problems.append(f"unsupported operator {condition.op!r}")
    operands: list[FieldRef | Const] = [condition.left, condition.right]
    for operand in operands:
        if isinstance(operand, FieldRef):
            if operand.kind not in (RefKind.FIELD, RefKind.LEXICON, RefKind.WATCHLIST):
                problems.append(f"unsupported reference kind {operand.kind!r} in {operand.key}")
            elif operand.kind is RefKind.FIELD and operand.type not in TYPES:
                problems.append(f"{operand.key}: type {operand.type.value} cannot be compared")
            refs.setdefault(operand.key, operand)
        elif isinstance(operand, Const):
            if not isinstance(operand.value, bool | int | str):
                problems.append(f"unsupported constant {operand.value!r}")
        else:
            problems.append(f"unsupported operand {type(operand).__name__}")
    return problems


def _check_window(spec: WindowSpec) -> list[str]:
    problems = []
    if spec.span not in SPANS:
        problems.append(f"span {spec.span.value!r} is not supported")
    if spec.key not in KEYS:
        problems.append(f"key {spec.key.value!r} is not supported")
    if spec.aggregate not in AGGREGATES:
        problems.append(f"aggregate {spec.aggregate.value!r} is not supported")
    if spec.measure not in MEASURES:
        problems.append(f"measure {spec.measure.value!r} is not supported")
    for name, info in type(spec).model_fields.items():
        if name not in _WINDOW_OPTIONS and getattr(spec, name) != info.default:
            problems.append(f"window option {name!r} is not supported")
    return problems
